"""Run several configurations in parallel on an engine and watch them through the store.

The demo, sweeps (one run per width) and multi-seed runs all go through here: at most `max_parallel` children at
once (the core count by default for local processes; the cluster's resources for Ray), each the same `phenomon run`
command a user would type, local output in `<root>/.logs/`. Each child carries a launch id that its run records in
its manifest; progress is read back from the store for the sweep's own runs only (by launch id, never by pid, and
never by listing the whole runs root), the way the TUI reads it.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from phenomon import store
from phenomon.launcher import RunSpec


def _launch_id() -> str:
    from phenomon.engines import new_launch_id

    return new_launch_id()


@dataclass
class Child:
    label: str
    spec: RunSpec
    proc: object = None  # the engine's handle once started (a warm handle or subprocess.Popen for local)
    info: store.RunInfo | None = None
    launch_id: str = field(default_factory=_launch_id)
    cost: float = 0.0  # relative cost: queued children start costliest first (ties in the given order)

    def refresh(self, root: Path) -> None:
        """Read this child's run again (its launch record first, then its directory alone)."""
        if self.info is not None and self.info.state in ("finished", "failed", "killed"):
            return  # ended for good: nothing more to read
        try:
            self.info = store.run_info(self.info.dir) if self.info is not None else \
                store.launched_run(root, self.launch_id)
        except store.StoreError:
            pass

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
                 out: TextIO | None = None, engine=None) -> list[Child]:
    """Start children on `engine` (local processes by default; at most `max_parallel` at once), draw their
    progress, return when all have ended."""
    from phenomon.engines import LocalEngine

    out = out or sys.stdout
    engine = engine or LocalEngine()
    max_parallel = max_parallel or engine.default_parallel() or len(children)
    tty = out.isatty()
    drawn, last_plain = 0, 0.0
    queue = sorted(children, key=lambda c: -c.cost)  # stable: with no costs, the given order; drawn in that order
    prev = _stop_children_on_signals()
    try:
        while True:
            running = [c for c in children if c.proc is not None and c.proc.poll() is None]
            for c in queue:
                if c.proc is None and len(running) < max_parallel:
                    c.spec = replace(c.spec, launch_id=c.launch_id, engine=engine.name)
                    c.proc = engine.launch(c.spec, root / ".logs")
                    running.append(c)
            for c in children:
                if c.proc is not None:
                    c.refresh(root)
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
                if c.info is not None:  # the stop file too: it reaches a run on any host, whatever the engine
                    try:
                        store.request_stop(c.info.dir)
                    except OSError:
                        pass
        for c in children:
            if c.proc is not None:
                c.proc.wait(timeout=60)
        raise
    finally:
        for sig, handler in prev.items():
            signal.signal(sig, handler)
    for c in children:
        c.refresh(root)
        if c.info is not None:
            store.forget_launch(root, c.launch_id)
    return children


def report(children: list[Child], root: Path, width: int = 24) -> bool:
    """One line per child: its verdict, its error, or that it never started. True when every run finished."""
    ok = True
    for c in children:
        if c.info is None:
            said = (getattr(c.proc, "error", None) or getattr(c.proc, "output", "") or "").strip()
            where = f": {said.splitlines()[-1][:200]}" if said else f" (see {root / '.logs'})"
            print(f"  {c.label}: did not start{where}")
            ok = False
            continue
        m = c.info.manifest
        ok &= c.info.state == "finished"
        print(f"  {c.label:<{width}} {c.info.id}: {m.get('verdict') or m.get('error')}")
    return ok
