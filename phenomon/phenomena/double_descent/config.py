"""Double descent's hyperparameters: the typed config (one width, or the whole sweep), its toggles and presets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from phenomon.config import check_memory
from phenomon.registry import Toggle


def _rf_widths(n: int = 1000) -> tuple[int, ...]:
    """15 log-spaced feature counts from n/10 to 10n, n among them (Belkin et al.'s random-features sweep)."""
    return tuple(round(n * 10 ** (-1 + 2 * k / 14)) for k in range(15))


@dataclass(frozen=True)
class DoubleDescentConfig:
    model: Literal["mlp", "random_features"] = "mlp"
    data: Literal["mnist1d", "teacher"] = "mnist1d"
    width: int = 0  # hidden units (mlp) or random features; 0 = the whole sweep over `widths`
    widths: tuple[int, ...] = (8, 12, 16, 24, 32, 40, 48, 56, 64, 96, 128, 256, 384)
    depth: int = 2  # hidden layers (mlp)
    train_size: int = 4000
    train_pool: int = 4000  # generated samples before validation and test: train sizes up to it share one test set
    val_size: int = 2000  # clean; for early stopping only
    test_size: int = 10000  # clean; large, so the curve is smooth
    label_noise: float = 0.2  # exactly this fraction of train labels changed to a wrong class
    data_seed: int = 42
    teacher_dim: int = 40  # data=teacher
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0  # mlp (SGD)
    ridge: float = 0.0  # random_features (the head's ℓ2 penalty; 0 = minimum-norm least squares)
    batch_size: int = 100
    epochs: int = 500
    eval_every: int = 10  # epochs
    early_stopping: bool = False  # report the evaluation with the lowest validation error instead of the last
    seeds: tuple[int, ...] = (0, 1, 2)  # the sweep's seeds (`phenomon run` with width 0)
    seed: int = 0

    @property
    def steps_per_epoch(self) -> int:
        return 1 if self.model == "random_features" else max(1, self.train_size // self.batch_size)

    @property
    def max_steps(self) -> int:
        return 1 if self.model == "random_features" else self.epochs * self.steps_per_epoch

    def validate(self) -> None:
        if self.width < 0:
            raise ValueError(f"width must be a positive integer (0: the whole sweep), got {self.width}")
        if any(w < 1 for w in self.widths):
            raise ValueError(f"widths must be positive integers, got {','.join(map(str, self.widths))}")
        if len(set(self.widths)) < 2:
            raise ValueError(f"a sweep needs at least 2 distinct widths, got {','.join(map(str, self.widths))}")
        if not 0.0 <= self.label_noise < 1.0:
            raise ValueError(f"label_noise must be in [0, 1), got {self.label_noise}")
        for k in ("train_size", "train_pool", "test_size", "depth", "batch_size", "epochs", "eval_every",
                  "teacher_dim"):
            if getattr(self, k) < 1:
                raise ValueError(f"{k} must be a positive integer, got {getattr(self, k)}")
        if self.train_size > self.train_pool:
            raise ValueError(f"train_size ({self.train_size}) is larger than the data: the train pool holds "
                             f"{self.train_pool} samples (raise train_pool to generate more)")
        if self.val_size < 0:
            raise ValueError(f"val_size must be >= 0, got {self.val_size}")
        if self.early_stopping and self.val_size == 0:
            raise ValueError("early_stopping needs a validation split (val_size > 0)")
        if self.model == "mlp" and self.batch_size > self.train_size:
            raise ValueError(f"batch_size ({self.batch_size}) exceeds train_size ({self.train_size})")
        if not self.lr > 0 or self.weight_decay < 0 or self.ridge < 0 or not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"need lr > 0, weight_decay >= 0, ridge >= 0, momentum in [0, 1); got {self.lr}, "
                             f"{self.weight_decay}, {self.ridge}, {self.momentum}")
        width = max((self.width, *self.widths))
        dim = 40 if self.data == "mnist1d" else self.teacher_dim  # MNIST-1D inputs have 40 points
        params = dim * width + (self.depth - 1) * width ** 2 + 10 * width if self.model == "mlp" else \
            width * (dim + 10)  # random features: the features of every sample are in the data term
        samples = self.train_pool + self.val_size + self.test_size
        check_memory(params, 4 * samples * (dim + width + 1), f"width {width} with {samples:,} samples")


TOGGLES = (
    Toggle("weight_decay", "w", {"weight_decay": 5e-3},
           "SGD weight decay 0 → 5e-3: the peak disappears, the curve flattens and no width interpolates "
           "(Nakkiran et al. 2020: optimal ℓ2 regularisation mitigates double descent)"),
    Toggle("label_noise", "N", {"label_noise": 0.0},
           "label noise 0.2 → 0: the MLP's peak shrinks to a shoulder (Nakkiran et al. 2019: noise makes it "
           "visible); the random-features peak at N = n stays, higher relative to its sides"),
    Toggle("early_stopping", "e", {"early_stopping": True},
           "report the best-validation epoch: the peak flattens (Nakkiran et al. 2019; the position paper's "
           "'proper regularisation')"),
    Toggle("train_size", "T", {"train_size": 2000},
           "train size 4,000 → 2,000: the peak moves to a narrower width (parameters ≈ samples; 48 → 32 "
           "here), the shift behind 'more data can hurt' (Nakkiran et al. 2019)"),
    Toggle("ridge", "R", {"ridge": 0.1},
           "random_features/teacher presets: ridge 0 → 0.1 removes the peak at N = n (the closed-form analogue "
           "of weight decay; 1e-4 suffices without label noise); no effect on the MLP"),
)

PRESETS = {
    "quick": {"widths": (12, 24, 48, 64, 128, 256), "seeds": (0,)},
    "random_features": {"model": "random_features", "train_size": 1000, "widths": _rf_widths(1000)},
    "teacher": {"model": "random_features", "data": "teacher", "train_size": 100, "train_pool": 100,
                "val_size": 0, "test_size": 10000, "teacher_dim": 20,
                "widths": (20, 40, 60, 80, 100, 125, 200, 400, 1000), "seeds": (0,)},
}
