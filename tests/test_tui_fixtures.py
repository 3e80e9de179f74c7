"""Prepared runs directories for the TUI tests: frames written by the store's writer, no training."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from phenomon import registry, store
from phenomon.config import to_dict


def gone_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def make_run(root: Path, *, toggles=(), seed: int = 0, status: str = "finished", steps: int = 400,
             grok_at: float | None = 150.0, error: str | None = None, sets: dict | None = None,
             every: int = 10) -> Path:
    """One grokking run with sigmoid-shaped curves; status running (alive), finished, failed, killed or dead."""
    ph = registry.get("grokking")
    cfg = dataclasses.replace(ph.resolve(None, [], list(toggles)), seed=seed, **{"max_steps": steps, **(sets or {})})
    d = to_dict(cfg)
    h = store.config_id(d)
    rid = f"grokking-{h}"
    m = store.new_manifest(rid, "grokking", config=d, config_hash=h, toggles=ph.toggles_on(cfg),
                           diff={}, group=ph.group_of(cfg), seed=seed,
                           progress={"step": 0, "max_steps": cfg.max_steps})
    if status == "dead":
        m["pid"] = gone_pid()
    w = store.RunWriter(root / rid, m, background=False)
    s = np.arange(every, steps + 1, every, dtype=float)
    test = 1 / (1 + np.exp(-(s - grok_at) / 20)) if grok_at else np.full_like(s, 0.01)
    train = np.minimum(1.0, s / 60)
    for i, step in enumerate(s):
        w.log({"train/acc": train[i], "test/acc": test[i], "train/loss": 1 - train[i] + 0.01,
               "test/loss": 3 * (1 - test[i]) + 0.1 * (seed + 1), "weight_norm": 40 - step / 20}, int(step))
    w.flush()
    w.update(progress={"step": steps, "max_steps": cfg.max_steps})
    if status in ("finished", "failed", "killed"):
        w.close(status, error, verdict="grokked: test ≥95% at step 210" if status == "finished" else None)
    return w.dir


def make_scored_run(root: Path, rid: str, *, toggles=(), seed: int = 0, jump_at: int = 600, wd_on: bool = True,
                    close: bool = True) -> store.RunWriter:
    """A grokking run with planted signals: fourier_sparsity leads test accuracy by 300 steps, prime_count is a
    monotone function of the norm (adds nothing beyond it), sharpness and effective_rank/embed are noise."""
    rng = np.random.default_rng(seed)
    steps = np.arange(0, 1510, 10)
    sig = lambda c, w: 1 / (1 + np.exp(-(steps - c) / w))  # noqa: E731
    test = sig(jump_at, 40) if wd_on else 0.01 * rng.random(len(steps))
    # the norm falls with the jump but wanders (not monotone in steps): the leader adds something beyond it
    wander = 10 * np.sin(steps / 80) + 2 * rng.standard_normal(len(steps))
    norm = (100 - 30 * sig(jump_at, 60) if wd_on else 100 + 0.02 * steps) + wander
    cols = {"test/acc": test, "signal/weight_norm": norm,
            "signal/fourier_sparsity": sig(jump_at - 300, 30) + 0.05 * rng.standard_normal(len(steps)),
            "signal/prime_count": (norm / 10) ** 3, "signal/sharpness": rng.standard_normal(len(steps)),
            "signal/effective_rank/embed": rng.standard_normal(len(steps))}
    w = store.RunWriter(root / rid, store.new_manifest(rid, "grokking", toggles=list(toggles), seed=seed,
                                                       group="grokking-g"), background=False)
    for i, s in enumerate(steps):
        w.log({k: float(v[i]) for k, v in cols.items()}, step=int(s))
    w.flush()
    if close:
        w.close("finished")
    return w
