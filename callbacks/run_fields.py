"""What a Lightning run records in its manifest: hyperparameters as JSON, its status from `finalize`, checkpoints, steps.

Pure functions of what Lightning hands a logger, kept apart from `RunStoreLogger` so that each is tested alone.
"""

from __future__ import annotations

import dataclasses
import math
import traceback
from argparse import Namespace
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def max_steps(trainer: Any) -> int | None:
    """The steps this fit will take: `max_steps`, else Lightning's estimate (epochs × batches), else unknown."""
    if trainer.max_steps and trainer.max_steps > 0:
        return int(trainer.max_steps)
    if getattr(trainer.state, "fn", None) != "fit":
        return None
    try:
        est = trainer.estimated_stepping_batches
    except Exception:  # noqa: BLE001 - an estimate Lightning cannot make is an unknown maximum, not a failure
        return None
    return int(est) if isinstance(est, (int, float)) and math.isfinite(est) and est > 0 else None


def outcome(status: str, exc: BaseException | None) -> tuple[str, str | None, str | None]:
    """(run status, error, traceback) for Lightning's `finalize(status)` with the exception being handled, if any."""
    if status == "success":
        return "finished", None, None
    if status == "finished":  # only Lightning's SLURM requeue handler says this: the job continues later
        return "killed", "requeued by SLURM: continues when the job restarts with the same version=", None
    if isinstance(exc, KeyboardInterrupt):
        return "killed", "interrupted (KeyboardInterrupt)", None
    if exc is not None and type(exc).__name__ == "SIGTERMException":
        return "killed", "stopped by SIGTERM", None
    if exc is None:
        return "failed", f"Lightning finalized the run as {status!r}", None
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if len(tb) > 4000:  # the innermost frames say most: keep them, and the header
        tb = tb.splitlines(keepends=True)[0] + "  ...\n" + tb[-4000:]
    return "failed", f"{exc.__class__.__name__}: {exc}", tb


def checkpoint_paths(run_dir: Path, cb: Any) -> dict[str, Any]:
    """Where a ModelCheckpoint put its files: relative to the run when inside it (the runs root may move)."""

    def rel(p: Any) -> str | None:
        if not p:
            return None
        p = Path(p).resolve()
        try:
            return str(p.relative_to(Path(run_dir).resolve()))
        except ValueError:
            return str(p)

    best = getattr(cb, "best_k_models", {}) or {}
    return {"dir": rel(getattr(cb, "dirpath", None)), "best": rel(getattr(cb, "best_model_path", None)),
            "last": rel(getattr(cb, "last_model_path", None)), "monitor": getattr(cb, "monitor", None),
            "top_k": {rel(p): _num(v) for p, v in best.items()}}


def _num(v: Any) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def jsonable(v: Any, depth: int = 0) -> Any:
    """Hyperparameters as strict JSON, structure kept: nested dicts and lists stay; anything else becomes text."""
    if depth > 20:
        return str(v)
    if isinstance(v, Namespace):
        v = vars(v)
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        v = dataclasses.asdict(v)
    if isinstance(v, Mapping):
        return {str(k): jsonable(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [jsonable(x, depth + 1) for x in v]
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if hasattr(v, "item") and getattr(v, "ndim", None) == 0:  # a numpy or torch scalar
        return jsonable(v.item(), depth + 1)
    return str(v)
