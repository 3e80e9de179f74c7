"""Callbacks for pruning rounds: time the training steps, and capture the weights to rewind to at step k."""

from __future__ import annotations

import statistics
import time

import pytorch_lightning as L
import torch


class StepTimer(L.Callback):
    """Wall time of each training step (forward, backward, optimiser step; not data or evaluation), in ms.

    The median is the number to compare between a dense and a sparse round: unstructured masks buy no speed.
    """

    def __init__(self, skip: int = 5):
        if skip < 0:
            raise ValueError(f"skip must be >= 0, got {skip}")
        self.skip = skip  # warm-up steps left out
        self.ms: list[float] = []
        self._t = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize()
        self._t = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize()
        self.ms.append(1e3 * (time.perf_counter() - self._t))

    def median_ms(self) -> float:
        kept = self.ms[self.skip:] or self.ms
        return statistics.median(kept) if kept else float("nan")

    def state_dict(self):
        return {"ms": list(self.ms)}

    def load_state_dict(self, state):
        self.ms = list(state.get("ms", []))


class Snapshot(L.Callback):
    """Copies the network's parameters once `step` optimiser steps have been taken (step 0: before training).

    Rewinding to step k (Frankle et al. 2020) resets the survivors to these values instead of the initial ones.
    """

    def __init__(self, step: int):
        if step < 0:
            raise ValueError(f"snapshot step must be >= 0, got {step}")
        self.step = step
        self.state: dict[str, torch.Tensor] | None = None

    def _take(self, pl_module) -> None:
        self.state = {k: v.detach().cpu().clone() for k, v in pl_module.net.named_parameters()}

    def on_train_start(self, trainer, pl_module):
        if self.step == 0:
            self._take(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.state is None and trainer.global_step == self.step:
            self._take(pl_module)
