"""Edge of stability's hyperparameters: the typed config, its toggles (each with the literature's expectation) and
presets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from phenomon.config import check_memory
from phenomon.registry import Toggle


@dataclass(frozen=True)
class EdgeOfStabilityConfig:
    loss: Literal["mse", "ce"] = "mse"
    activation: Literal["tanh", "relu"] = "tanh"
    train_size: int = 1000  # MNIST-1D samples; the whole set is one batch (full-batch gradient descent)
    test_size: int = 1000
    data_seed: int = 42
    width: int = 200
    depth: int = 2
    lr: float = 0.1  # the base step size; η = lr · lr_scale (2/η = 20: gradient descent's stability threshold)
    lr_scale: float = 1.0  # the η toggles halve or double it, whatever the preset's lr
    batch_size: int = 0  # 0: full batch (gradient descent); N: SGD on shuffled minibatches of N
    warmup: float = 0.0  # fraction of max_steps over which η rises linearly to its value (0: constant η)
    max_steps: int = 6000
    sharpness_every: int = 20  # steps between sharpness measurements
    power_iters: int = 5  # power iterations per measurement, warm-started from the last eigenvector
    probe_size: int = 0  # samples the sharpness is measured on (fixed); 0: the whole train set (the full-batch loss)
    eval_every: int = 100  # steps between train/test evaluations
    seed: int = 0

    def validate(self) -> None:
        for k in ("lr", "lr_scale"):
            if not getattr(self, k) > 0:
                raise ValueError(f"{k} must be positive (the step size η = lr · lr_scale), got {getattr(self, k)}")
        for k in ("train_size", "test_size", "width", "depth", "max_steps", "sharpness_every", "power_iters",
                  "eval_every"):
            if getattr(self, k) < 1:
                raise ValueError(f"{k} must be a positive integer, got {getattr(self, k)}")
        for k in ("batch_size", "probe_size"):
            if getattr(self, k) < 0:
                raise ValueError(f"{k} must be >= 0, got {getattr(self, k)}")
        if self.batch_size > self.train_size:
            raise ValueError(f"batch_size ({self.batch_size}) exceeds train_size ({self.train_size}); "
                             f"0 means full batch")
        if self.probe_size > self.train_size:
            raise ValueError(f"probe_size ({self.probe_size}) exceeds train_size ({self.train_size}); "
                             f"0 means the whole train set")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"warmup must be a fraction of max_steps in [0, 1), got {self.warmup}")
        params = 40 * self.width + (self.depth - 1) * self.width ** 2 + 10 * self.width
        # double backward keeps a few copies of the probe's activations
        check_memory(params, 4 * (self.train_size + self.test_size) * (40 + 8 * self.width * self.depth),
                     f"width {self.width} on {self.train_size:,} samples")

    @property
    def eta(self) -> float:
        return self.lr * self.lr_scale

    @property
    def warmup_steps(self) -> int:
        return round(self.warmup * self.max_steps)

    @property
    def full_batch(self) -> bool:
        return self.batch_size in (0, self.train_size)


TOGGLES = (
    Toggle("lr_half", "j", {"lr_scale": 0.5},
           "η halved (0.1 → 0.05): the plateau moves up to the new 2/η = 40, reached later (sharpening takes longer) "
           "(Cohen et al. 2021, Fig. 1)"),
    Toggle("lr_double", "d", {"lr_scale": 2.0},
           "η doubled (0.1 → 0.2): the plateau moves down to 2/η = 10, reached sooner (Cohen et al. 2021)"),
    Toggle("sgd", "b", {"batch_size": 10},
           "full batch → SGD with batch 10: sharpness settles below 2/η, lower for smaller batches (Cohen et al. "
           "2021 §6; Jastrzębski et al. 2020: SGD's sharpness is set by η/B)"),
    Toggle("warmup", "u", {"warmup": 0.2},
           "η warmed up linearly over the first 20% of steps: the late plateau is the same 2/η (the threshold of the η in force; "
           "Cohen et al. 2021 App.; Gilmer et al. 2022: warm-up lets sharpness adapt instead of catapulting)"),
    Toggle("cross_entropy", "e", {"loss": "ce"},
           "MSE → cross-entropy: sharpness still rises towards 2/η, but cross-entropy's curvature falls as the "
           "margins grow, so it may stop short of or fall below 2/η late in training (Cohen et al. 2021 §3)"),
)

PRESETS = {
    # under 2 minutes on 2 cores: fewer samples, narrower, a larger η (2/η = 10) is reached within a few hundred steps
    "quick": {"train_size": 500, "test_size": 500, "width": 100, "lr": 0.2, "max_steps": 1500,
              "sharpness_every": 25, "eval_every": 50},
}
