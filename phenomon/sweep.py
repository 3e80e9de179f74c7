"""Run several configurations as parallel headless processes and watch them through the store.

The demo, sweeps (one run per width) and multi-seed runs all go through here: at most `max_parallel` children at
once (the core count by default), each the same `phenomon run` command a user would type, its output in
`<root>/.logs/`. Progress is read back from the run store, the way the TUI reads it.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from phenomon import store
from phenomon.launcher import RunSpec, launch


@dataclass
class Child:
    label: str
    spec: RunSpec
    proc: object = None  # subprocess.Popen once started
    info: store.RunInfo | None = None

    def line(self) -> str:
        if self.proc is None:
            return f"  {self.label:<24} queued"
        if self.info is None:
            return f"  {self.label:<24} {'starting…' if self.proc.poll() is None else 'did not start'}"
        m = self.info.manifest
        pr = m.get("progress") or {}
        s = m.get("summary") or {}
        shown = store.headline(s, _headline(self.spec.phenomenon) or [k for k in s if "/" in k][:4])
        return f"  {self.label:<24} {self.info.state:<8} step {pr.get('step', 0):>6}/{pr.get('max_steps')}  {shown}"


def _headline(phenomenon: str) -> tuple[str, ...]:
    from phenomon import registry
    from phenomon.config import UsageError

    try:
        return registry.get(phenomenon).headline
    except UsageError:
        return ()


def default_parallel() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def _interrupt(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt


def _stop_children_on_signals() -> dict:
    """SIGTERM or SIGHUP to the parent (an experiment, a sweep, the demo) stops its children as Ctrl-C does: a
    child runs in its own session, so without this it would outlive a parent stopped by a job system or a closed
    terminal. Returns the handlers to put back."""
    import threading

    prev = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            prev[sig] = signal.signal(sig, _interrupt)
    return prev


def run_parallel(children: list[Child], root: Path, max_parallel: int | None = None, poll_s: float = 0.5,
                 out: TextIO | None = None) -> list[Child]:
    """Start children (at most `max_parallel` at once), draw their progress, return when all have ended."""
    out = out or sys.stdout
    max_parallel = max_parallel or default_parallel()
    tty = out.isatty()
    drawn, last_plain = 0, 0.0
    prev = _stop_children_on_signals()
    try:
        while True:
            running = [c for c in children if c.proc is not None and c.proc.poll() is None]
            for c in children:
                if c.proc is None and len(running) < max_parallel:
                    c.proc = launch(c.spec, root / ".logs")
                    running.append(c)
            by_pid = {r.manifest.get("pid"): r for r in store.list_runs(root)}
            for c in children:
                if c.proc is not None:
                    c.info = by_pid.get(c.proc.pid, c.info)
            done = all(c.proc is not None and c.proc.poll() is not None for c in children)
            lines = [c.line() for c in children]
            if tty:
                if drawn:
                    out.write(f"\033[{drawn}F")
                out.write("".join(line + "\033[K\n" for line in lines))
                out.flush()
                drawn = len(lines)
            elif done or time.time() - last_plain >= 10:
                out.write("\n".join(lines) + "\n")
                out.flush()
                last_plain = time.time()
            if done:
                break
            time.sleep(poll_s)
    except KeyboardInterrupt:
        for c in children:
            if c.proc is not None and c.proc.poll() is None:
                c.proc.send_signal(signal.SIGTERM)
        for c in children:
            if c.proc is not None:
                c.proc.wait(timeout=60)
        raise
    finally:
        for sig, handler in prev.items():
            signal.signal(sig, handler)
    by_pid = {r.manifest.get("pid"): r for r in store.list_runs(root)}
    for c in children:
        c.info = by_pid.get(c.proc.pid, c.info)
    return children


def report(children: list[Child], root: Path, width: int = 24) -> bool:
    """One line per child: its verdict, its error, or that it never started. True when every run finished."""
    ok = True
    for c in children:
        if c.info is None:
            print(f"  {c.label}: did not start (see {root / '.logs'})")
            ok = False
            continue
        m = c.info.manifest
        ok &= c.info.state == "finished"
        print(f"  {c.label:<{width}} {c.info.id}: {m.get('verdict') or m.get('error')}")
    return ok
