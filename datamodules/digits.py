"""scikit-learn's bundled 8×8 handwritten digits (1,797 images, no download) as full-batch tensors in memory.

A fixed test set (the same for every run and train size) and a train set drawn from the rest by the run's seed,
so a train-size sweep compares like with like.
"""

from __future__ import annotations

import pytorch_lightning as L
import torch
from torch.utils.data import DataLoader

from phenomon.datamodules.modular import _Repeat

NUM_CLASSES = 10
TOTAL = 1797


def load() -> tuple[torch.Tensor, torch.Tensor]:
    """All images as (1797, 64) float32 in [0, 1] and their labels (1797,) int64."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return torch.tensor(d.data / 16.0, dtype=torch.float32), torch.tensor(d.target, dtype=torch.int64)


class DigitsDataModule(L.LightningDataModule):
    """`train_size` images for training (drawn with `seed` from the pool), `test_size` fixed test images
    (drawn once with `data_seed`); full batch, or shuffled minibatches of `batch_size`."""

    def __init__(self, train_size: int = 1000, test_size: int = 597, seed: int = 0, data_seed: int = 42,
                 batch_size: int | None = None):
        super().__init__()
        if not 1 <= test_size < TOTAL:
            raise ValueError(f"test_size must be in 1 … {TOTAL - 1}, got {test_size}")
        pool = TOTAL - test_size
        if not 1 <= train_size <= pool:
            raise ValueError(f"train_size must be in 1 … {pool} (the digits left after {test_size} test images), "
                             f"got {train_size}")
        if batch_size is not None and not 1 <= batch_size <= train_size:
            raise ValueError(f"batch_size must be in 1 … train_size ({train_size}), got {batch_size}")
        x, y = load()
        perm = torch.randperm(TOTAL, generator=torch.Generator().manual_seed(data_seed))
        te, rest = perm[:test_size], perm[test_size:]
        tr = rest[torch.randperm(pool, generator=torch.Generator().manual_seed(seed))[:train_size]]
        self.train, self.test = (x[tr], y[tr]), (x[te], y[te])
        self.batch_size, self.seed = batch_size, seed

    @property
    def num_classes(self) -> int:
        return NUM_CLASSES

    def train_dataloader(self):
        if self.batch_size is None:  # full batch: the dynamics depend on the data alone, not on a shuffle
            return DataLoader(_Repeat(self.train), batch_size=None)
        g = torch.Generator().manual_seed(self.seed)
        ds = torch.utils.data.TensorDataset(*self.train)
        return DataLoader(ds, batch_size=self.batch_size, shuffle=True, generator=g, drop_last=True)

    def val_dataloader(self):
        return [DataLoader([self.train], batch_size=None), DataLoader([self.test], batch_size=None)]
