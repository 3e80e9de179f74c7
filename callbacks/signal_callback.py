"""One callback that runs a list of explanation signals on a schedule and streams their values as metric rows."""

from __future__ import annotations

import time
import warnings

import pytorch_lightning as L
import torch

from phenomon.callbacks import signals as S
from phenomon.callbacks.nulls import RandomWalk, null_row


class SignalCallback(L.Callback):
    """Runs each signal every N optimiser steps (by its cost class unless `every` says otherwise), at step 0 too.

    Values go to every logger of the trainer as `signal/<name>[/<part>]`, once per optimiser step (with gradient
    accumulation a step spans several batches), so any Lightning logger receives them; the time
    spent is logged as `time/signals_ms` and summed per signal in `costs` (written to the run manifest at the end).
    A signal that fails or does not apply is dropped for the run with one warning; training never stops for it.

    The nulls (`null/step`, `null/random_walk`) are written whenever the cheap signals are due, whichever signals
    are chosen. The walk is seeded by `seed`; pass `walk` to continue one walk over several fits (pruning rounds).
    Its state, and the last step it was logged at, survive a checkpoint resume through `state_dict`.
    """

    def __init__(self, names=S.DEFAULT, phenomenon: str = "*", every: dict[str, int] | None = None,
                 probe_size: int = 512, seed: int = 0, walk: RandomWalk | None = None):
        unknown = [n for n in names if n not in S.SIGNALS]
        if unknown:
            raise ValueError(f"unknown signal(s) {', '.join(unknown)}; valid: {', '.join(sorted(S.SIGNALS))}")
        self.signals = [S.SIGNALS[n] for n in names if S.SIGNALS[n].applies_to(phenomenon)]
        self.every = {**S.COSTS, **(every or {})}
        bad = [k for k, v in self.every.items() if not isinstance(v, int) or v < 1]
        if bad:
            raise ValueError(f"signal schedule must be positive integers, got {bad}")
        if probe_size < 1:
            raise ValueError(f"probe_size must be positive, got {probe_size}")
        self.probe_size, self.seed = probe_size, seed
        self.walk = walk if walk is not None else RandomWalk(seed)
        self.null_step: int | None = None  # the last step the nulls were logged at (a resume must not re-draw it)
        self.logged_step: int | None = None  # the last step anything was logged at: once per optimiser step
        self.probe: S.Probe | None = None
        self.costs: dict[str, dict[str, float]] = {}
        self.dropped: dict[str, str] = {}

    def _make_probe(self, trainer) -> S.Probe | None:
        data = getattr(trainer.datamodule, "train", None)
        if not (isinstance(data, tuple) and len(data) == 2):
            batch = next(iter(trainer.train_dataloader)) if trainer.train_dataloader is not None else None
            if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
                return None
            data = tuple(batch)
        return make_probe(data, self.seed, self.probe_size)

    def on_train_start(self, trainer, pl_module):
        self.probe = self._make_probe(trainer)
        if self.probe is not None:
            dev = pl_module.device
            self.probe = S.Probe(self.probe.x.to(dev), self.probe.y.to(dev))
        self._run(trainer, pl_module, trainer.global_step, force=True)  # 0, or the step a resume restored

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._run(trainer, pl_module, trainer.global_step)

    def _run(self, trainer, pl_module, step: int, force: bool = False) -> None:
        if not trainer.loggers or (step == self.logged_step and not force):
            return
        due = [s for s in self.signals if s.name not in self.dropped and (force or step % self.every[s.cost] == 0)]
        nulls = force or step % self.every["cheap"] == 0
        if not (due or nulls):
            return
        self.logged_step = step
        row: dict[str, float] = {}
        if nulls:
            row.update(null_row(step, self.walk, advance=step != self.null_step))
            self.null_step = step
        if not due:
            _log(trainer, row, step)
            return
        t_all = time.perf_counter()
        for sig in due:
            if sig.needs_probe and self.probe is None:
                self._drop(sig.name, "needs a probe batch and the data module offers none")
                continue
            t0 = time.perf_counter()
            try:
                vals = sig.compute(pl_module, self.probe if sig.needs_probe else None)
            except S.SignalUnavailable as e:
                self._drop(sig.name, str(e))
                continue
            except Exception as e:  # noqa: BLE001 - a broken signal must never kill training
                self._drop(sig.name, f"{e.__class__.__name__}: {e}")
                continue
            dt = time.perf_counter() - t0
            c = self.costs.setdefault(sig.name, {"calls": 0, "total_s": 0.0})
            c["calls"] += 1
            c["total_s"] += dt
            row.update(row_names(sig.name, vals))
        row["time/signals_ms"] = (time.perf_counter() - t_all) * 1e3
        _log(trainer, row, step)

    def _drop(self, name: str, why: str) -> None:
        self.dropped[name] = why
        warnings.warn(f"phenomon: signal {name!r} skipped for this run: {why}", UserWarning, stacklevel=2)

    def on_train_end(self, trainer, pl_module):
        costs = {k: {**v, "mean_ms": 1e3 * v["total_s"] / max(1, v["calls"])} for k, v in self.costs.items()}
        for logger in trainer.loggers:
            writer = getattr(logger, "experiment", None) if hasattr(logger, "steps_taken") else None
            if hasattr(writer, "update"):  # a run store's writer (rank zero only has one)
                writer.update(signal_costs=costs, signals_dropped=self.dropped)

    def state_dict(self):
        return {"costs": self.costs, "dropped": self.dropped, "walk": self.walk.state_dict(),
                "null_step": self.null_step}

    def load_state_dict(self, state):
        self.costs, self.dropped = dict(state.get("costs", {})), dict(state.get("dropped", {}))
        if "walk" in state:
            self.walk.load_state_dict(state["walk"])
        self.null_step = state.get("null_step")


def _log(trainer, row: dict[str, float], step: int) -> None:
    for logger in trainer.loggers:
        logger.log_metrics(row, step=step)


def make_probe(data: tuple, seed: int, size: int = 512) -> S.Probe:
    """The signals' probe: a seeded random subset of at most `size` examples of the (x, y) train split."""
    x, y = data
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(y), generator=g, device="cpu")[:size].to(y.device)  # a CPU generator draws on the CPU
    return S.Probe(x[idx], y[idx])


def row_names(name: str, vals: dict[str, float]) -> dict[str, float]:
    """A signal's {part: value} as rows: `signal/<name>`, `signal/<name>/<part>`, `signal/<name>@<tensor>`."""
    sep = lambda part: "" if not part or part.startswith("@") else "/"  # noqa: E731
    return {f"signal/{name}{sep(part)}{part}": float(v) for part, v in vals.items()}
