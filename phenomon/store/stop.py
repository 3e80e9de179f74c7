"""Stopping a run: a `stop` file in its directory that the writer polls; a signal only to a process proven to own it.

A manifest is data anyone can write, so its pid is never trusted alone: the fallback SIGTERM goes only to a local pid
(> 1) whose start time equals the one recorded and which holds the run's `.owner` file (containing the manifest's
token) open. A crafted manifest pointing at a stranger's pid fails those checks and the stranger is left alone.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

from phenomon.store.manifest import proc_start, valid_pid
from phenomon.store.runs import RunInfo
from phenomon.store.segments import atomic_write_bytes
from phenomon.store.writer import OWNER_FILE, STOP_FILE


def request_stop(run_dir: Path) -> None:
    """Ask the run in `run_dir` to stop: its writer's thread sees the file within a second (OSError if unwritable)."""
    atomic_write_bytes(Path(run_dir) / STOP_FILE, f"{time.time():.3f} {socket.gethostname()} {os.getpid()}\n".encode())


def owner_proof(info: RunInfo) -> str | None:
    """None when the manifest's pid is provably this run's process here; else why it may not be signalled."""
    m = info.manifest
    pid, token = m.get("pid"), m.get("token")
    if m.get("host") != socket.gethostname():
        return f"it runs on {m.get('host')}"
    if not valid_pid(pid):
        return f"pid {pid!r} is not a pid that may be signalled"
    if not isinstance(token, str) or m.get("pid_start") is None:
        return "its manifest records no start time and token"
    if proc_start(pid) != m.get("pid_start"):
        return f"pid {pid} is not the process that started the run"
    owner = (info.dir / OWNER_FILE)
    try:
        if owner.read_text() != token:
            return "its owner file does not hold the manifest's token"
        target = os.path.realpath(owner)
        fd_dir = f"/proc/{pid}/fd"
        if not any(os.path.realpath(os.path.join(fd_dir, fd)) == target for fd in os.listdir(fd_dir)):
            return f"pid {pid} does not hold the run open"
    except OSError as e:
        return f"cannot check pid {pid} ({e.strerror or e})"
    return None


def signal_fallback(info: RunInfo) -> str:
    """SIGTERM to the run's process, only when `owner_proof` holds; a line saying what happened."""
    why = owner_proof(info)
    if why is not None:
        return f"{info.id}: not signalled: {why}"
    pid = info.manifest["pid"]
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return f"{info.id}: its process is gone"
    except PermissionError:
        return f"{info.id}: not allowed to signal pid {pid}"
    return f"sent SIGTERM to {info.id} (pid {pid}); it will flush and mark itself killed"


def stop_run(info: RunInfo) -> str:
    """Stop a running run: the stop file; a verified signal only when the file cannot be written. One line."""
    if info.state not in ("running", "skew"):
        return f"{info.id} is {info.state}, nothing to stop"
    try:
        request_stop(info.dir)
    except OSError as e:
        return f"cannot write {info.dir / STOP_FILE} ({e.strerror or e}); " + signal_fallback(info)
    return f"asked {info.id} to stop ({STOP_FILE} file); it will flush and mark itself killed"
