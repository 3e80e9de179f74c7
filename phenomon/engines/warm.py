"""Warm local runs: a fork server that has imported torch, Lightning and phenomon once, and forks one detached
`phenomon run` per launch, so a run pays no interpreter start or imports (~5 s of CPU each on 2 cores).

The server (`phenomon.engines.forkserver`) is a process started on the first launch and shared by every launch
of the calling process; it talks over a Unix socket pair (one message a datagram, file descriptors passed alongside):

    caller -> server   {"argv": [...], "cwd": ..., "env": {...}}  + the run's log file
    server -> caller   {"ready": pid} once, then per launch {"pid": P} + a pidfd of the run, or {"error": why}
    server -> caller   {"exit": P, "code": C, "cpu_s": S} when the server reaped run P

A run is the server's child, not the caller's, so its exit code comes over the socket; the pidfd is how the caller
signals it (no pid reuse) and how it sees it end if the server is gone. The child starts its own session (it
outlives the caller, like a cold launch), writes to the same per-run log, and runs `phenomon.cli.main(argv)`: the
same code path as the command. Linux only; PHENOMON_WARM=0 turns it off. Anything that keeps the server from starting
or forking is a cold launch instead, never an error.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time

SERVER_MODULE = "phenomon.engines.forkserver"
READY_TIMEOUT_S = 180.0  # the server's imports take ~5 s on an idle 2-core machine, minutes under heavy load
FORK_TIMEOUT_S = 300.0
MSG = 1 << 20


def enabled() -> bool:
    """Warm launches unless PHENOMON_WARM=0 (or off/no/false), and only where a pidfd can be had (Linux)."""
    off = os.environ.get("PHENOMON_WARM", "1").strip().lower() in ("0", "off", "no", "false")
    return not off and sys.platform.startswith("linux") and hasattr(os, "pidfd_open")


def eligible(spec) -> bool:
    """CPU runs on machines without an NVIDIA GPU. CUDA is not fork-safe once initialised, and Lightning asks the
    driver about GPUs even for a CPU run: on a GPU machine every run starts cold (warm there is untested)."""
    cuda_here = os.path.exists("/dev/nvidiactl") or os.path.exists("/dev/nvidia0")
    return spec.accelerator in ("auto", "cpu") and not cuda_here


class Unavailable(Exception):
    """The warm server cannot take this launch: the caller starts it cold."""


class Server:
    """The caller's end: starts the server, asks it for runs, collects exit codes for the handles."""

    def __init__(self):
        self.lock = threading.RLock()
        self.exits: dict[int, int] = {}
        self.alive = False  # the socket is open: exit reports still come
        self.refused: str | None = None  # why it takes no more launches (its runs are still watched)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", SERVER_MODULE, str(theirs.fileno())],
                                         pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)  # Ctrl-C in the terminal is the sweep's to handle
        finally:
            theirs.close()
        self.sock = ours
        msg, _ = self._recv(READY_TIMEOUT_S)
        if msg is None or "ready" not in msg:
            self.close()
            raise Unavailable((msg or {}).get("error", "the warm server did not start"))
        self.alive = True

    def launch(self, argv: list[str], log_fd: int) -> "WarmHandle":
        with self.lock:
            if not self.alive or self.refused:
                raise Unavailable(self.refused or "the warm server has gone")
            req = {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), **_inherited()}
            try:
                socket.send_fds(self.sock, [json.dumps(req).encode()], [log_fd])
            except OSError as e:
                self.alive = False
                raise Unavailable(str(e)) from None
            while True:  # exit reports of earlier runs may come first
                msg, fds = self._recv(FORK_TIMEOUT_S)
                if msg is None:
                    if self.alive:  # hung: it must not fork this run late, beside the cold one started instead
                        self.proc.kill()
                        self.alive = False
                    raise Unavailable("the warm server did not answer")
                if "pid" in msg and fds:
                    return WarmHandle(self, int(msg["pid"]), fds[0])
                if "error" in msg:
                    self.refused = msg["error"]  # and every later launch too (see serve)
                    raise Unavailable(msg["error"])

    def pump(self, timeout: float = 0.0) -> None:
        """Take in the exit reports that have arrived (waiting up to `timeout` for one)."""
        with self.lock:
            while self.alive and self._recv(timeout)[0] is not None:
                timeout = 0.0

    def _recv(self, timeout: float):
        """One message (exit reports are filed on the way), or (None, []) on timeout or a closed socket."""
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return None, []
        try:
            data, fds, _, _ = socket.recv_fds(self.sock, MSG, 4)
        except OSError:
            data, fds = b"", []
        if not data:  # the server has ended: handles fall back to their pidfds
            self.alive = False
            self.proc.poll()
            return None, []
        msg = json.loads(data)
        if "exit" in msg:
            self.exits[int(msg["exit"])] = (int(msg["code"]), msg.get("cpu_s"))
        return msg, fds

    def close(self) -> None:
        """End the server (its runs go on, in their own sessions)."""
        self.alive = False
        self.sock.close()  # its end reads EOF and it returns
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


LIMITS = ("RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_NOFILE")


def _inherited() -> dict:
    """What a cold child would inherit from us besides the environment: the umask (read, not set: setting it to
    read it would race our other threads) and resource limits."""
    import resource

    umask = None
    try:
        with open("/proc/self/status") as fh:
            umask = next((int(x.split()[1], 8) for x in fh if x.startswith("Umask:")), None)
    except OSError:
        pass
    return {"umask": umask, "limits": {n: resource.getrlimit(getattr(resource, n)) for n in LIMITS}}


class WarmHandle:
    """A warm run, with the `subprocess.Popen` calls the sweep and the monitor make."""

    def __init__(self, server: Server, pid: int, pidfd: int):
        self.server, self.pid, self.pidfd = server, pid, pidfd
        self.returncode: int | None = None
        self.cpu_s: float | None = None  # the run's CPU seconds (user + system), once it has ended

    def poll(self) -> int | None:
        if self.returncode is None:
            self.server.pump()
            self._settle()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = 0.5 if end is None else min(0.5, end - time.monotonic())
            if left <= 0:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout)
            if self.server.alive:
                self.server.pump(left)
            else:
                select.select([self.pidfd], [], [], left)
        return self.returncode

    def _settle(self) -> None:
        code, self.cpu_s = self.server.exits.pop(self.pid, (None, None))
        if code is None and not self.server.alive and select.select([self.pidfd], [], [], 0)[0]:
            code = 1  # ended while no server watched it: the exit code is lost, the run's manifest says how it ended
        if code is not None:
            self.returncode = code
            os.close(self.pidfd)

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            try:
                signal.pidfd_send_signal(self.pidfd, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        """SIGTERM: the run flushes and marks itself killed."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def shutdown() -> None:
    """Close this process's server, if any; the next launch starts a new one."""
    with _LOCK:
        for s in _SERVER:
            s.close()
        _SERVER.clear()
        _FAILED.clear()


_SERVER: list[Server] = []
_LOCK = threading.Lock()
_FAILED: list[str] = []  # why the server could not start: this process launches cold from then on


def server() -> Server:
    """This process's warm server, started on first use (and again if it has gone)."""
    with _LOCK:
        if _FAILED:
            raise Unavailable(_FAILED[0])
        if _SERVER and _SERVER[0].refused:
            _FAILED.append(_SERVER[0].refused)
            raise Unavailable(_SERVER[0].refused)
        if _SERVER and _SERVER[0].alive:
            return _SERVER[0]
        _SERVER.clear()  # gone (killed?): a new one; the old one's runs are watched through their pidfds
        try:
            _SERVER.append(Server())
        except (Unavailable, OSError) as e:
            _FAILED.append(str(e))
            raise Unavailable(str(e)) from None
        return _SERVER[0]
