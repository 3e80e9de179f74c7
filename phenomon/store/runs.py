"""Runs as a reader sees them: manifests, liveness (a run whose process is gone is dead), listing and lookup."""

from __future__ import annotations

import math
import os
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path

from phenomon.store.manifest import proc_start, read_manifest, slug, valid_pid
from phenomon.store.segments import StoreError, default_root

DEAD_AFTER_S = 60.0  # a heartbeat older than this on another host means the run is gone
SKEW_S = 60.0  # a heartbeat further than this in the future: the clocks disagree, liveness is unknown


@dataclass(frozen=True)
class RunInfo:
    """A manifest as read, with the liveness the reader worked out (`state` may be 'dead')."""

    id: str
    dir: Path
    manifest: dict
    state: str  # running | finished | failed | killed | dead | skew (a heartbeat from the future)
    heartbeat_age: float | None
    note: str | None = None  # why the state is what it is, where the manifest does not say

    @property
    def phenomenon(self) -> str:
        return self.manifest.get("phenomenon", "?")

    @property
    def group(self) -> str:
        return self.manifest.get("group") or self.id

    def dead_reason(self) -> str:
        if self.note:
            return self.note
        m = self.manifest
        age = "unknown" if self.heartbeat_age is None else _ago(self.heartbeat_age)
        return f"pid {m.get('pid')} on {m.get('host')} is gone; last heartbeat {age}"


def _ago(age: float) -> str:
    """A coarse age (10 s steps, then minutes, then hours): a table showing it changes rarely, not every second
    (a monitor re-renders its whole runs table on any change; issue 12)."""
    if age < 120:
        return f"{int(age // 10) * 10} s ago"
    return f"{int(age // 60)} min ago" if age < 7200 else f"{int(age // 3600)} h ago"


def _pid_alive(pid: int) -> bool:
    if not valid_pid(pid):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def same_process(m: dict) -> bool:
    """The manifest's pid on this host is alive and is the process that wrote it (its start time matches:
    a pid reused by another process after the run died is not the run)."""
    pid = m.get("pid")
    if m.get("host") != socket.gethostname() or not _pid_alive(pid):
        return False
    want = m.get("pid_start")
    return want is None or proc_start(pid) in (want, None)


def _liveness(m: dict, hb_age: float | None) -> tuple[str, str | None]:
    """(state, note) of a run whose manifest says running."""
    if hb_age is not None and hb_age < -SKEW_S:
        return "skew", f"clock skew: heartbeat {-hb_age:.0f} s in the future"
    if m.get("host") == socket.gethostname() and valid_pid(m.get("pid")) and not same_process(m):
        return "dead", None
    if hb_age is None or hb_age > DEAD_AFTER_S:
        return "dead", None
    return "running", None


def run_info(run_dir: Path, cache: dict | None = None) -> RunInfo:
    run_dir = Path(run_dir)
    m = read_manifest(run_dir, cache)
    hb_age = None
    state, note = m.get("status", "running"), None
    try:
        if state == "running":  # an ended run's liveness is settled: its heartbeat is not read (pollers list often)
            hb = float((run_dir / "heartbeat").read_text()[:64])
            if math.isfinite(hb):
                hb_age = time.time() - hb
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    if state == "running":
        state, note = _liveness(m, hb_age)
    if hb_age is not None:
        hb_age = max(0.0, hb_age)
    return RunInfo(id=m["id"], dir=run_dir, manifest=m, state=state, heartbeat_age=hb_age, note=note)


def list_runs(root: Path | None = None, *, errors: list[str] | None = None, cache: dict | None = None
              ) -> list[RunInfo]:
    """Every run under `root`, oldest first. Unreadable directories are reported in `errors` and skipped. A `cache`
    kept between calls (a poller's) spares re-reading manifests that were not replaced."""
    root = Path(root) if root is not None else default_root()
    if not root.exists():
        return []
    if not root.is_dir():
        raise StoreError(f"runs directory {root} is not a directory")
    out = []
    for d in sorted(root.iterdir()):
        if not d.is_dir() or d.name.startswith("."):
            continue
        try:
            out.append(run_info(d, cache))
        except StoreError as e:
            if errors is not None:
                errors.append(str(e))
    # a copied run directory holds the same id: each copy is its own run, named `<id>@<directory>`
    ids = [r.id for r in out]
    out = [replace(r, id=f"{r.id}@{slug(r.dir.name)}") if ids.count(r.id) > 1 and r.dir.name != r.id else r for r in out]
    out.sort(key=lambda r: (r.manifest.get("started") or 0, r.id))
    return out


def find_run(root: Path | None, ref: str) -> RunInfo:
    """A run by id, unique id prefix, or path."""
    p = Path(ref)
    if (p / "run.json").exists():
        return run_info(p)
    runs = list_runs(root)
    exact = [r for r in runs if r.id == ref]
    if exact:
        return exact[0]
    pref = [r for r in runs if r.id.startswith(ref)]
    if len(pref) == 1:
        return pref[0]
    if not pref:
        raise StoreError(f"no run {ref!r} in {root or default_root()}")
    raise StoreError(f"{ref!r} is ambiguous: {', '.join(r.id for r in pref[:6])}")
