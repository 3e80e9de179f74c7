"""Lottery tickets' hyperparameters: the typed config, its toggles (the variants and controls) and presets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from phenomon.phenomena.lottery_ticket.masks import load_masks
from phenomon.config import check_memory
from phenomon.registry import Toggle

D_IN, D_OUT = 40, 10  # MNIST-1D


@dataclass(frozen=True)
class LotteryConfig:
    hidden: tuple[int, ...] = (300, 100)
    init: Literal["default", "glorot", "kaiming"] = "default"
    train_size: int = 4000
    test_size: int = 1000
    data_seed: int = 42
    batch_size: int = 100
    epochs: int = 20  # per round
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0
    prune_rate: float = 0.2  # of the remaining weights, per round
    prune_rate_output: float = 0.1
    scope: Literal["layer", "global"] = "layer"
    target_remaining: float = 0.02  # prune until at most this fraction of weights remains
    max_rounds: int = 25
    prune_by: Literal["magnitude", "one_shot", "init", "random", "snip", "grasp", "synflow"] = "magnitude"
    reinit: bool = False
    rewind_step: int = 0
    masks_from: str = ""  # a saved masks file: train it once (this seed's init, or reinit), no pruning
    eval_every: int = 40
    seed: int = 0

    @property
    def steps_per_round(self) -> int:
        return self.epochs * max(1, self.train_size // self.batch_size)

    def shapes(self) -> dict[str, tuple[int, int]]:
        sizes = [D_IN, *self.hidden, D_OUT]
        return {f"layers.{i}.weight": (b, a) for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))}

    def rounds(self) -> int:
        """Pruning rounds after the dense one: the first that leaves at most `target_remaining` of the weights."""
        from phenomon.models.schedule import remaining_after

        if self.masks_from:
            return 1
        for r in range(1, self.max_rounds + 1):
            if remaining_after(self.shapes(), self.prune_rate, self.prune_rate_output, self.scope, r) \
                    <= self.target_remaining + 1e-12:
                return r
        best = remaining_after(self.shapes(), self.prune_rate, self.prune_rate_output, self.scope, self.max_rounds)
        raise ValueError(f"target_remaining={self.target_remaining} is unreachable: {self.max_rounds} rounds at "
                         f"prune_rate {self.prune_rate} leave {best:.2%} (raise max_rounds or prune_rate)")

    def validate(self) -> None:
        for k in ("prune_rate", "prune_rate_output"):
            if not 0.0 < getattr(self, k) < 1.0:
                raise ValueError(f"{k} must be in (0, 1), got {getattr(self, k)}")
        if not 0.0 < self.target_remaining < 1.0:
            raise ValueError(f"target_remaining must be in (0, 1), got {self.target_remaining}")
        for k in ("train_size", "test_size", "batch_size", "epochs", "max_rounds", "eval_every"):
            if getattr(self, k) < 1:
                raise ValueError(f"{k} must be a positive integer, got {getattr(self, k)}")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden must be positive layer widths, got {self.hidden}")
        if self.batch_size > self.train_size:
            raise ValueError(f"batch_size ({self.batch_size}) exceeds train_size ({self.train_size})")
        if not self.lr > 0 or self.weight_decay < 0 or not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"need lr > 0, weight_decay >= 0, momentum in [0, 1); got {self.lr}, "
                             f"{self.weight_decay}, {self.momentum}")
        if not 0 <= self.rewind_step < self.steps_per_round:
            raise ValueError(f"rewind_step must be in [0, {self.steps_per_round}) (steps per round: epochs × "
                             f"train_size // batch_size), got {self.rewind_step}")
        params = sum(a * b for a, b in self.shapes().values())
        check_memory(params * 2, 4 * 41 * (self.train_size + self.test_size), f"hidden {self.hidden}")  # + masks
        self.rounds()
        if self.masks_from:
            load_masks(self.masks_from, self.shapes())


TOGGLES = (
    Toggle("reinit", "R", {"reinit": True},
           "same masks, fresh random weights: falls below dense as sparsity grows (Frankle & Carbin 2019); "
           "the control that makes a ticket a ticket"),
    Toggle("random_prune", "P", {"prune_by": "random"},
           "random masks of the same per-layer sparsity: falls below dense well before the ticket does"),
    Toggle("prune_at_init", "i", {"prune_by": "init"},
           "masks from magnitudes before training: no better than random (Frankle et al. 2021): tickets are "
           "found only after training"),
    Toggle("one_shot", "o", {"prune_by": "one_shot"},
           "each level pruned in one step from the dense net: near IMP at moderate sparsity, worse when very "
           "sparse (Frankle & Carbin 2019, Fig. 4)"),
    Toggle("rewind", "K", {"rewind_step": 80},
           "rewind to step 80 instead of init: matches rewind-to-init here; it matters for deep nets that are "
           "unstable at init (Frankle et al. 2020)"),
)

PRESETS = {
    "lenet_300_100": {"hidden": (300, 100), "init": "glorot", "lr": 1.2e-3, "batch_size": 60, "epochs": 30,
                      "eval_every": 66},
    "tiny": {"hidden": (32, 16), "train_size": 500, "test_size": 500, "epochs": 8, "batch_size": 50,
             "target_remaining": 0.6, "eval_every": 5},
}
