"""Emergence's hyperparameters: the typed config (one width, or the whole sweep), its toggles and presets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from phenomon.config import check_memory
from phenomon.registry import Toggle

MAX_K = 9  # as datamodules.addition.MAX_K (this module stays torch-free: the monitor resolves configs)


@dataclass(frozen=True)
class EmergenceConfig:
    k: int = 5  # answer tokens: a + b mod 10^k, digit by digit
    width: int = 0  # hidden units; 0 = the whole sweep over `widths`
    widths: tuple[int, ...] = (4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
    depth: int = 2
    metric: Literal["exact_match", "token_acc", "edit_distance", "answer_ll"] = "exact_match"  # → final/score
    train_size: int = 20000
    test_size: int = 4000
    data_seed: int = 42
    lr: float = 3e-3
    weight_decay: float = 0.0
    batch_size: int = 256
    max_steps: int = 2000
    eval_every: int = 200
    seeds: tuple[int, ...] = (0, 1, 2)  # the sweep's seeds (`phenomon run` with width 0)
    seed: int = 0

    def validate(self) -> None:
        if not 1 <= self.k <= MAX_K:
            raise ValueError(f"k (answer tokens) must be an integer in 1…{MAX_K}, got {self.k}")
        if self.width < 0:
            raise ValueError(f"width must be a positive integer (0: the whole sweep), got {self.width}")
        if any(w < 1 for w in self.widths):
            raise ValueError(f"widths must be positive integers, got {','.join(map(str, self.widths))}")
        if len(set(self.widths)) < 3:
            raise ValueError(f"a sweep needs at least 3 distinct widths, got {','.join(map(str, self.widths))}")
        for key in ("depth", "train_size", "test_size", "batch_size", "max_steps", "eval_every"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be a positive integer, got {getattr(self, key)}")
        pairs = 10 ** (2 * self.k)
        if self.test_size >= pairs:
            raise ValueError(f"test_size {self.test_size:,} leaves no pair to train on: k={self.k} has {pairs:,} "
                             f"pairs (a, b)")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ValueError(f"need lr > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}")
        width = max((self.width, *self.widths))
        d = 10 * self.k
        params = 2 * d * width + (self.depth - 1) * width ** 2 + width * d
        n = min(self.train_size, pairs) + self.test_size
        check_memory(params, n * (3 * self.k * 8 + 4 * d), f"width {width} with {n:,} pairs")


TOGGLES = (
    Toggle("metric", "m", {"metric": "token_acc"},
           "score the same models per token instead of all-or-nothing: the sudden rise becomes a gradual one "
           "(Schaeffer, Miranda & Koyejo 2023: emergence is in the metric, not the model)"),
    Toggle("log_likelihood", "L", {"metric": "answer_ll"},
           "score the answer's log-likelihood: improves smoothly and steadily with size (Schaeffer et al. 2023; "
           "the cross-entropy scaling laws of Kaplan et al. 2020)"),
    Toggle("k", "d", {"k": 2},
           "answers of 2 digits instead of 5: exact match ≈ token accuracy^k rises earlier and less abruptly "
           "(Schaeffer et al. 2023: longer answers sharpen the apparent jump)"),
)

PRESETS = {
    "quick": {"widths": (4, 8, 16, 32, 64, 128), "seeds": (0,)},
}
