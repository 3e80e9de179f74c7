"""A Gaussian teacher task: inputs x ~ N(0, I_d), labels argmax(x W) of a random linear teacher (seeded, tiny, exact).

The synthetic partner of MNIST-1D for double descent: with random features and a minimum-norm least-squares head,
the test error peaks where the feature count equals the train size, a threshold known in closed form. Same splits,
label noise and batches as `MNIST1DDataModule` (it only swaps the generator).
"""

from __future__ import annotations

import torch

from phenomon.datamodules.mnist1d import MNIST1DDataModule


def teacher_data(n: int, dim: int, num_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` samples (x: (n, dim) float32, y: (n,) int64); the first k of a larger draw are the same k samples."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(dim, num_classes, generator=g)  # the teacher, drawn first: it does not depend on n
    x = torch.randn(n, dim, generator=g)
    return x, (x @ w).argmax(1)


class TeacherDataModule(MNIST1DDataModule):
    """`MNIST1DDataModule`'s splits over Gaussian-teacher data (`dim` inputs, `num_classes` classes)."""

    def __init__(self, *args, dim: int = 40, num_classes: int = 10, **kw):
        if dim < 1 or num_classes < 2:
            raise ValueError(f"need dim >= 1 and num_classes >= 2, got {dim}, {num_classes}")
        self.dim, self.num_classes = dim, num_classes
        kw.setdefault("standardize", False)  # already unit Gaussian
        super().__init__(*args, **kw)

    def _generate(self, n: int, data_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        return teacher_data(n, self.dim, self.num_classes, data_seed)
