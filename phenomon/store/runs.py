"""Runs as a reader sees them: manifests, liveness (a run whose process is gone is dead), listing and lookup.

Liveness on another host is judged by the observer's own clock: a heartbeat *seen to move forward* is alive, one
that has not moved for DEAD_AFTER_S seconds of this process's monotonic time is dead. Only on a first look (nothing
observed yet) does a reader compare the writer's timestamp with its own clock, the fallback that needs agreeing clocks.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from phenomon.store.manifest import manifest_path, proc_start, read_manifest, slug, valid_pid
from phenomon.store.segments import StoreError, atomic_write_json, default_root

DEAD_AFTER_S = 60.0  # a heartbeat older than this on another host means the run is gone
SKEW_S = 60.0  # a heartbeat further than this in the future: the clocks disagree, liveness is unknown
LAUNCHES_DIR = ".launches"  # <root>/.launches/<launch id>: the run directory an engine's launch became


class HeartbeatObserver:
    """What this process has seen of each run's heartbeat: (value, monotonic time it was first seen at that value,
    whether it was ever seen to move forward). Bounded by the running runs observed; ended runs are forgotten."""

    def __init__(self, clock=time.monotonic) -> None:
        self._seen: dict[str, tuple[float, float, bool]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def observe(self, key: str, value: float, now: float | None = None) -> tuple[float, bool]:
        """(seconds of this process's time since the value last changed, whether it was ever seen to advance)."""
        now = self._clock() if now is None else now
        with self._lock:
            old = self._seen.get(key)
            if old is None or value < old[0]:  # a first look, or a rewritten (older) heartbeat: start again
                self._seen[key] = (value, now, False)
                return 0.0, False
            if value > old[0]:
                self._seen[key] = (value, now, True)
                return 0.0, True
            return now - old[1], old[2]

    def forget(self, key: str) -> None:
        with self._lock:
            self._seen.pop(key, None)


OBSERVER = HeartbeatObserver()


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


def _span(age: float) -> str:
    """A coarse duration (10 s steps, then minutes, then hours): a table showing it changes rarely, not every second
    (a monitor re-renders its whole runs table on any change; issue 12)."""
    if age < 120:
        return f"{int(age // 10) * 10} s"
    return f"{int(age // 60)} min" if age < 7200 else f"{int(age // 3600)} h"


def _ago(age: float) -> str:
    return f"{_span(age)} ago"


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


def _liveness(m: dict, hb_age: float | None, still_s: float | None = None,
              advanced: bool = False) -> tuple[str, str | None]:
    """(state, note) of a run whose manifest says running. `still_s`: how long (this process's clock) the heartbeat
    has been seen unchanged; `advanced`: it was seen to move forward. Those decide once known; the writer's
    timestamp against our clock (`hb_age`) is the fallback of a first look."""
    if m.get("host") == socket.gethostname() and valid_pid(m.get("pid")) and not same_process(m):
        return "dead", None
    if still_s is not None and still_s > DEAD_AFTER_S:
        return "dead", f"heartbeat unchanged for {_span(still_s)} (observed here); last written on {m.get('host')}"
    if advanced:
        return "running", None
    if hb_age is not None and hb_age < -SKEW_S:
        return "skew", f"clock skew: heartbeat {_span(-hb_age)} in the future"
    if hb_age is None or hb_age > DEAD_AFTER_S:
        return "dead", None
    return "running", None


def run_info(run_dir: Path, observer: HeartbeatObserver | None = None, cache: dict | None = None) -> RunInfo:
    """The run in `run_dir` as read now. Liveness uses `observer` (the process-wide one by default); a `cache` kept
    between calls (a poller's) spares re-reading manifests that were not replaced."""
    run_dir = run_dir if isinstance(run_dir, Path) else Path(run_dir)
    observer = OBSERVER if observer is None else observer
    m = read_manifest(run_dir, cache)
    hb_age, hb = None, None
    state, note = m.get("status", "running"), None
    try:
        if state == "running":  # an ended run's liveness is settled: its heartbeat is not read (pollers list often)
            with open(os.path.join(run_dir, "heartbeat"), encoding="utf-8") as fh:
                hb = float(fh.read(64))
            if math.isfinite(hb):
                hb_age = time.time() - hb
            else:
                hb = None
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    key = str(run_dir)
    if state == "running":
        still, advanced = observer.observe(key, hb) if hb is not None else (None, False)
        state, note = _liveness(m, hb_age, still, advanced)
        if advanced:
            hb_age = still  # seconds since it was last seen to move, on our clock
    else:
        observer.forget(key)
    if hb_age is not None:
        hb_age = max(0.0, hb_age)
    return RunInfo(id=m["id"], dir=run_dir, manifest=m, state=state, heartbeat_age=hb_age, note=note)


# ------------------------------------------------------------------------------------------ launches


def record_launch(root: Path, launch_id: str, run_dir: Path) -> None:
    """Note which run directory the launch `launch_id` created, so its launcher reads that run alone."""
    d = Path(root) / LAUNCHES_DIR
    d.mkdir(exist_ok=True)
    (d / launch_id).write_text(Path(run_dir).name)


def launched_run(root: Path, launch_id: str) -> RunInfo | None:
    """The run the launch `launch_id` created, once it exists; its manifest must carry that launch id (a pid does
    not identify a run: engines reuse worker processes, and pids recycle)."""
    try:
        name = (Path(root) / LAUNCHES_DIR / launch_id).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not name or "/" in name or name.startswith("."):
        return None
    try:
        info = run_info(Path(root) / name)
    except StoreError:
        return None
    return info if info.manifest.get("launch") == launch_id else None


def forget_launch(root: Path, launch_id: str) -> None:
    (Path(root) / LAUNCHES_DIR / launch_id).unlink(missing_ok=True)


def mark_ended(info: RunInfo, status: str, error: str) -> bool:
    """Record how a run ended when its own process could not (a crashed or force-cancelled engine worker): only a
    manifest that still says running is changed. True when it was."""
    try:
        m = read_manifest(info.dir)
    except StoreError:
        return False
    if m.get("status") != "running":
        return False
    m.update(status=status, error=error, ended=time.time())
    atomic_write_json(info.dir / "run.json", m)
    return True


def list_runs(root: Path | None = None, *, errors: list[str] | None = None, cache: dict | None = None
              ) -> list[RunInfo]:
    """Every run under `root`, oldest first. Unreadable directories are reported in `errors` and skipped. A `cache`
    kept between calls (a poller's) spares re-reading manifests that were not replaced; it keeps only the runs listed
    now (a removed or unreadable run's manifest leaves it)."""
    root = Path(root) if root is not None else default_root()
    if not root.exists():
        return []
    if not root.is_dir():
        raise StoreError(f"runs directory {root} is not a directory")
    out = []
    with os.scandir(root) as it:  # names and types in one call (pollers list several times a second)
        names = sorted(e.name for e in it if not e.name.startswith(".") and e.is_dir())
    for name in names:
        try:
            out.append(run_info(root / name, cache=cache))
        except StoreError as e:
            if errors is not None:
                errors.append(str(e))
    if cache is not None:
        listed = {manifest_path(r.dir) for r in out}
        for p in [p for p in cache if p not in listed]:
            del cache[p]
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
