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


SCORED_NAMES = {"signal/cause": "signal/fourier_sparsity", "signal/proxy": "signal/prime_count",
                "signal/noise": "signal/sharpness", "signal/noise2": "signal/effective_rank/embed",
                "signal/timer": None}


def make_scored_run(root: Path, rid: str, *, toggles=(), seed: int = 0, wd_on: bool = True,
                    close: bool = True) -> store.RunWriter:
    """A grokking run with planted signals (tests/test_scorecard.py): fourier_sparsity's changes drive test
    accuracy's 20 points later, prime_count is a copy of the norm (adds nothing beyond it), sharpness and
    effective_rank/embed are noise; both nulls are logged."""
    from tests.test_scorecard import _write

    root.mkdir(parents=True, exist_ok=True)
    return _write(root, rid, list(toggles), seed, grok=wd_on, names=SCORED_NAMES, close=close)
