"""Runs as a reader sees them: manifests, liveness (a run whose process is gone is dead), listing and lookup."""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from phenomon.store.segments import StoreError, default_root

DEAD_AFTER_S = 60.0  # a heartbeat older than this on another host means the run is gone


@dataclass(frozen=True)
class RunInfo:
    """A manifest as read, with the liveness the reader worked out (`state` may be 'dead')."""

    id: str
    dir: Path
    manifest: dict
    state: str  # running | finished | failed | killed | dead
    heartbeat_age: float | None

    @property
    def phenomenon(self) -> str:
        return self.manifest.get("phenomenon", "?")

    @property
    def group(self) -> str:
        return self.manifest.get("group") or self.id

    def dead_reason(self) -> str:
        m = self.manifest
        age = "unknown" if self.heartbeat_age is None else f"{self.heartbeat_age:.0f} s ago"
        return f"pid {m.get('pid')} on {m.get('host')} is gone; last heartbeat {age}"


def _pid_alive(pid: int) -> bool:
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


def read_manifest(run_dir: Path) -> dict:
    p = Path(run_dir) / "run.json"
    try:
        m = json.loads(p.read_text())
    except FileNotFoundError:
        raise StoreError(f"{run_dir}: no run.json (not a run directory)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StoreError(f"{run_dir}: corrupt run.json ({e.__class__.__name__}: {e})") from None
    if not isinstance(m, dict) or "id" not in m:
        raise StoreError(f"{run_dir}: run.json is not a phenomon manifest")
    return m


def run_info(run_dir: Path) -> RunInfo:
    run_dir = Path(run_dir)
    m = read_manifest(run_dir)
    hb_age = None
    try:
        hb_age = max(0.0, time.time() - float((run_dir / "heartbeat").read_text()))
    except (OSError, ValueError):
        pass
    state = m.get("status", "running")
    if state == "running":
        same_host = m.get("host") == socket.gethostname()
        if same_host and isinstance(m.get("pid"), int) and not _pid_alive(m["pid"]):
            state = "dead"
        elif hb_age is None or hb_age > DEAD_AFTER_S:
            state = "dead"
    return RunInfo(id=m["id"], dir=run_dir, manifest=m, state=state, heartbeat_age=hb_age)


def list_runs(root: Path | None = None, *, errors: list[str] | None = None) -> list[RunInfo]:
    """Every run under `root`, oldest first. Unreadable directories are reported in `errors` and skipped."""
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
            out.append(run_info(d))
        except StoreError as e:
            if errors is not None:
                errors.append(str(e))
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
