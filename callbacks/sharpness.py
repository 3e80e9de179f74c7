"""Sharpness tracking for the edge of stability: the top Hessian eigenvalue of the training loss, often and cheaply.

`top_eigenvalue` is power iteration on Hessian-vector products (double backward) of a loss on a fixed probe;
`SharpnessTracker` runs it every N optimiser steps, warm-started from the previous eigenvector (the top eigenvector
moves slowly between measurements, so a few iterations suffice where a cold start needs tens), and logs the
sharpness beside the stability threshold 2/η of the step size in force.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import pytorch_lightning as L
import torch


def _dot(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
    return sum((x * y).sum() for x, y in zip(a, b))


def top_eigenvalue(loss: Callable[[], torch.Tensor], params: Sequence[torch.Tensor],
                   v0: Sequence[torch.Tensor] | None = None, iters: int = 20, tol: float = 1e-3,
                   seed: int = 0) -> tuple[float, list[torch.Tensor], int]:
    """(λ, v, iterations used): the Hessian eigenvalue of largest magnitude of `loss()` w.r.t. `params` and its unit
    eigenvector, by power iteration from `v0` (random when None). Stops early once λ changes by less than `tol`
    (relative) between iterations. The training loss of a network near a minimum has its largest-magnitude
    eigenvalue at the top of the spectrum, which is the sharpness."""
    if iters < 1:
        raise ValueError(f"iters must be positive, got {iters}")
    params = list(params)
    with torch.enable_grad():
        grads = torch.autograd.grad(loss(), params, create_graph=True)
        if v0 is None:
            g = torch.Generator().manual_seed(seed)
            v0 = [torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device) for p in params]
        v = [x.detach() for x in v0]
        lam, used = float("nan"), 0
        for used in range(1, iters + 1):
            norm = torch.sqrt(_dot(v, v)).clamp_min(1e-30)
            v = [x / norm for x in v]
            hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=used < iters)
            new = float(_dot(hv, v))  # Rayleigh quotient vᵀHv of the unit vector v
            v = [h.detach() for h in hv]
            done = lam == lam and abs(new - lam) <= tol * max(abs(new), 1e-12)
            lam = new
            if done:
                break
    norm = torch.sqrt(_dot(v, v)).clamp_min(1e-30)
    return lam, [x / norm for x in v], used


class SharpnessTracker(L.Callback):
    """Every `every` optimiser steps (and at step 0): `eos/sharpness` (top Hessian eigenvalue of the module's
    `loss_fn` on the probe), `eos/threshold` (2/η for the step size η in force), `eos/sharpness_ratio` (λη/2: 1 is
    the edge) and `time/sharpness_ms`; at every step `train/step_loss`, the loss the step descended (for full-batch
    gradient descent, the training loss itself). The first measurement runs up to `first_iters` iterations from a
    random vector; later ones at most `iters`, warm-started. `cost` (written to the run manifest at the end as
    `sharpness_cost`) holds the measurements' total time and their share of the fit's wall time."""

    def __init__(self, probe: tuple[torch.Tensor, torch.Tensor], every: int = 20, iters: int = 5,
                 first_iters: int = 30, tol: float = 1e-3, seed: int = 0):
        for k, v in (("every", every), ("iters", iters), ("first_iters", first_iters)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{k} must be a positive integer, got {v!r}")
        self.probe, self.every, self.iters, self.first_iters, self.tol, self.seed = \
            probe, every, iters, first_iters, tol, seed
        self.v: list[torch.Tensor] | None = None
        self.cost = {"calls": 0, "total_s": 0.0, "iters": 0, "fit_s": 0.0}
        self._t0 = 0.0

    def on_train_start(self, trainer, pl_module):
        self._t0 = time.perf_counter()
        self.probe = tuple(t.to(pl_module.device) for t in self.probe)
        self._measure(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        row = {"train/step_loss": float(loss)} if loss is not None else {}
        if trainer.global_step % self.every == 0:
            row.update(self._values(trainer, pl_module))
        _log(trainer, row)

    def _measure(self, trainer, pl_module) -> None:
        _log(trainer, self._values(trainer, pl_module))

    def _values(self, trainer, pl_module) -> dict[str, float]:
        t0 = time.perf_counter()
        x, y = self.probe
        params = [p for p in pl_module.parameters() if p.requires_grad]
        lam, self.v, used = top_eigenvalue(lambda: pl_module.loss_fn(pl_module(x), y), params, self.v,
                                           self.first_iters if self.v is None else self.iters, self.tol, self.seed)
        dt = time.perf_counter() - t0
        self.cost["calls"] += 1
        self.cost["total_s"] += dt
        self.cost["iters"] += used
        eta = pl_module.lr_now(trainer.global_step)
        out = {"eos/sharpness": lam, "time/sharpness_ms": 1e3 * dt}
        if eta > 0:  # warm-up starts at η = 0: no threshold (2/0 is undefined, not infinite)
            out.update({"eos/threshold": 2.0 / eta, "eos/sharpness_ratio": lam * eta / 2.0})
        return out

    def on_train_end(self, trainer, pl_module):
        self.cost["fit_s"] = time.perf_counter() - self._t0
        self.cost["share"] = self.cost["total_s"] / self.cost["fit_s"] if self.cost["fit_s"] > 0 else None
        for logger in trainer.loggers:
            writer = getattr(logger, "experiment", None) if hasattr(logger, "steps_taken") else None
            if hasattr(writer, "update"):  # a run store's writer (rank zero only has one)
                writer.update(sharpness_cost=dict(self.cost))


def _log(trainer, row: dict[str, float]) -> None:
    if row:
        for logger in trainer.loggers:
            logger.log_metrics(row, step=trainer.global_step)
