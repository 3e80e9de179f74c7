"""The headless demo: grokking's baseline and its no-weight-decay ablation, run in parallel, watched from the store."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from phenomon import registry, store
from phenomon.launcher import RunSpec, launch
from phenomon.runner import prepare_root


def _line(info: store.RunInfo | None, label: str) -> str:
    if info is None:
        return f"  {label:<22} starting…"
    m = info.manifest
    pr = m.get("progress") or {}
    s = m.get("summary") or {}
    acc = "  ".join(f"{k} {s[k]:.3f}" for k in ("train/acc", "test/acc") if k in s)
    return f"  {label:<22} {info.state:<8} step {pr.get('step', 0):>5}/{pr.get('max_steps')}  {acc}"


def run_demo(root: Path, max_steps: int | None = None, accelerator: str = "auto", poll_s: float = 0.5) -> int:
    ph = registry.get("grokking")
    root = prepare_root(root)
    specs = {"baseline": RunSpec("grokking", max_steps=max_steps, accelerator=accelerator, root=root),
             "no weight decay": RunSpec("grokking", toggles=("weight_decay",), max_steps=max_steps,
                                        accelerator=accelerator, root=root)}
    print(f"phenomon demo: {ph.summary}")
    for t in ph.toggles:
        if t.name == "weight_decay":
            print(f"  ablation: {t.expect}")
    procs = {label: launch(spec, root / ".logs") for label, spec in specs.items()}
    tty = sys.stdout.isatty()
    last_plain, drawn = 0.0, 0
    try:
        while True:
            by_pid = {r.manifest.get("pid"): r for r in store.list_runs(root)}
            infos = {label: by_pid.get(p.pid) for label, p in procs.items()}
            done = all(p.poll() is not None for p in procs.values())
            lines = [_line(infos[label], label) for label in procs]
            if tty:
                if drawn:
                    sys.stdout.write(f"\033[{drawn}F")
                sys.stdout.write("".join(line + "\033[K\n" for line in lines))
                sys.stdout.flush()
                drawn = len(lines)
            elif done or time.time() - last_plain >= 10:
                print("\n".join(lines), flush=True)
                last_plain = time.time()
            if done:
                break
            time.sleep(poll_s)
    except KeyboardInterrupt:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            p.wait(timeout=30)
        print("\nphenomon demo: stopped both runs (their rows so far are kept)")
        return 130
    by_pid = {r.manifest.get("pid"): r for r in store.list_runs(root)}
    ok = True
    for label, p in procs.items():
        info = by_pid.get(p.pid)
        if info is None:
            print(f"  {label}: the run did not start (see {root / '.logs'})")
            ok = False
            continue
        m = info.manifest
        ok &= info.state == "finished"
        print(f"  {label:<16} {info.id}: {m.get('verdict') or m.get('error')}")
    print(f"runs are in {root}; `phenomon ls --runs {root}` lists them, `phenomon show RUN` explains one")
    return 0 if ok else 1
