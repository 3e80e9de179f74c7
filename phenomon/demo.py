"""The headless demo: grokking's baseline and its no-weight-decay ablation, run in parallel, watched from the store."""

from __future__ import annotations

from pathlib import Path

from phenomon import registry
from phenomon.config import check_accelerator
from phenomon.launcher import RunSpec
from phenomon.runner import prepare_root
from phenomon.sweep import Child, report, run_parallel


def run_demo(root: Path, max_steps: int | None = None, accelerator: str = "auto") -> int:
    ph = registry.get("grokking")
    accelerator = check_accelerator(accelerator)  # before anything is created or started
    root = prepare_root(root)
    print(f"phenomon demo — grokking: {ph.summary}")
    print(f"  ablation: {ph.toggle('weight_decay').expect}")
    children = [
        Child("baseline", RunSpec("grokking", max_steps=max_steps, accelerator=accelerator, root=root)),
        Child("no weight decay", RunSpec("grokking", toggles=("weight_decay",), max_steps=max_steps,
                                         accelerator=accelerator, root=root)),
    ]
    try:
        run_parallel(children, root, max_parallel=2)
    except KeyboardInterrupt:
        print("\nphenomon demo: stopped both runs (their rows so far are kept)")
        return 130
    ok = report(children, root, width=16)
    print(f"runs are in {root}; `phenomon ls --runs {root}` lists them, `phenomon show RUN` explains one")
    return 0 if ok else 1
