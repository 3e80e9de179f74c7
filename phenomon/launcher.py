"""Start runs as separate headless processes: the same `phenomon run` command a user would type (forked warm from a
server that has done the imports, or started cold)."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from phenomon import store


@dataclass(frozen=True)
class RunSpec:
    """Everything `phenomon run` takes, as data."""

    phenomenon: str
    sets: tuple[str, ...] = ()
    toggles: tuple[str, ...] = ()
    preset: str | None = None
    seed: int | None = None
    max_steps: int | None = None
    accelerator: str = "auto"
    threads: int = 1
    root: Path | None = None
    extra: tuple[str, ...] = field(default_factory=tuple)
    launch_id: str | None = None  # written into the run's manifest: how the launcher finds its run (not a pid)
    engine: str | None = None  # recorded in the manifest (local, ray)

    def argv(self) -> list[str]:
        a = [sys.executable, "-m", "phenomon", "run", self.phenomenon]
        if self.preset:
            a += ["--preset", self.preset]
        for s in self.sets:
            a += ["--set", s]
        for t in self.toggles:
            a += ["--toggle", t]
        if self.seed is not None:
            a += ["--seed", str(self.seed)]
        if self.max_steps is not None:
            a += ["--max-steps", str(self.max_steps)]
        a += ["--accelerator", self.accelerator, "--threads", str(self.threads)]
        if self.root is not None:
            a += ["--runs", str(self.root)]
        if self.launch_id:
            a += ["--launch-id", self.launch_id]
        if self.engine:
            a += ["--launched-by", self.engine]
        return a + list(self.extra)


def launch(spec: RunSpec, log_dir: Path, warm: bool | None = None):
    """Start a detached run (its own session: it outlives the caller) with output to a log file.

    Warm (the default where it can be, see `phenomon.engines.warm`): forked from a server that has imported torch,
    Lightning and phenomon already; otherwise, or with PHENOMON_WARM=0, a fresh `python -m phenomon run` process.
    Either way the handle has Popen's `poll`, `wait`, `terminate`, `kill`, `send_signal` and `pid`.
    """
    from phenomon.engines import warm as W

    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    tag = store.slug("-".join([spec.phenomenon, *spec.toggles]) or spec.phenomenon)
    log = _new_log(log_dir, f"{time.strftime('%Y%m%d-%H%M%S')}-{tag}")
    try:
        if (W.enabled() if warm is None else warm) and W.eligible(spec):
            try:
                return W.server().launch(spec.argv()[3:], log.fileno())
            except W.Unavailable:
                pass  # a cold start instead, into the same log
        return subprocess.Popen(spec.argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    finally:
        log.close()


def _new_log(log_dir: Path, base: str):
    """A new log file, created exclusively: runs started in the same second never share one."""
    for n in range(1, 10000):
        try:
            return open(log_dir / (f"{base}.log" if n == 1 else f"{base}.{n}.log"), "xb")
        except FileExistsError:
            continue
    raise OSError(f"too many logs named {base} in {log_dir}")
