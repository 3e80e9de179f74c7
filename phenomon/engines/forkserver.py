"""The warm server's side (`python -m phenomon.engines.forkserver FD`): import what a run imports, then fork one
detached `phenomon run` per request and report each exit. The caller's side and the protocol: `phenomon.engines.warm`.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys

MSG = 1 << 20


def _preload() -> int:
    """Import what a run imports; returns the thread count a clean fork base has."""
    import torch

    # no torch op may open an OpenMP pool here: forked children of a process whose pool exists deadlock. One thread
    # makes any op run at import serial; each run sets its own count (--threads) before it trains.
    torch.set_num_threads(1)
    import importlib
    import pkgutil

    import pytorch_lightning  # noqa: F401
    import torchmetrics  # noqa: F401

    import phenomon
    from phenomon import registry, runner

    runner.quiet_lightning()
    for m in pkgutil.walk_packages(phenomon.__path__, "phenomon."):
        if m.name.startswith(("phenomon.tui", "phenomon.engines")) or m.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(m.name)
        except Exception:  # noqa: BLE001 - an optional module that cannot import here is imported by no run either
            pass
    for name in registry.names():
        registry.get(name)
    import gc

    gc.collect()
    # the imports' objects out of the collector's sight: a run's collections neither walk them nor write to their
    # pages (each write copies a page the server shares with every run)
    gc.freeze()
    return _threads()


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _child(req: dict, log_fd: int, sock: socket.socket, watched: dict) -> None:
    """In the forked child: detach, take the run's log and the caller's environment, run the command, exit."""
    code = 1
    try:
        os.setsid()
        sock.close()
        for fd in watched:
            os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(null)
        os.close(log_fd)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _inherit(req)
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        sys.argv = [sys.argv[0], *req["argv"]]
        import numpy

        numpy.random.seed()  # as a fresh process: entropy, not the server's state (runs seed their own anyway)
        from phenomon.cli import main

        code = main(list(req["argv"]))
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:  # noqa: BLE001 - reported in the run's log, as an uncaught error in a cold run is
        import traceback

        traceback.print_exc()
    finally:
        try:
            import atexit

            sys.stdout.flush()
            sys.stderr.flush()
            atexit._run_exitfuncs()
        finally:
            os._exit(code if isinstance(code, int) else 1)


def _inherit(req: dict) -> None:
    """The caller's umask and resource limits, as a cold child would have them (a limit above the server's own
    hard limit cannot be had: the nearest is kept)."""
    import resource

    if req.get("umask") is not None:
        os.umask(req["umask"])
    for name, (soft, hard) in (req.get("limits") or {}).items():
        try:
            resource.setrlimit(getattr(resource, name), (soft, hard))
        except (ValueError, OSError, AttributeError):
            pass


def serve(fd: int) -> None:
    """The server's loop: fork a run per request, report each exit; end when the caller's end closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=fd)
    try:
        clean = _preload()
    except BaseException as e:  # noqa: BLE001 - the caller launches cold and says nothing
        sock.send(json.dumps({"error": f"warm server: {e.__class__.__name__}: {e}"}).encode())
        return
    sock.send(json.dumps({"ready": os.getpid()}).encode())
    watched: dict[int, int] = {}  # pidfd -> pid of each run not yet reaped
    while True:
        r, _, _ = select.select([sock, *watched], [], [])
        for pidfd in [f for f in r if f in watched]:
            pid = watched.pop(pidfd)
            _, status, use = os.wait4(pid, 0)
            os.close(pidfd)
            try:
                sock.send(json.dumps({"exit": pid, "code": os.waitstatus_to_exitcode(status),
                                      "cpu_s": use.ru_utime + use.ru_stime}).encode())
            except OSError:
                pass
        if sock not in r:
            continue
        data, fds, _, _ = socket.recv_fds(sock, MSG, 4)
        if not data:
            return  # the caller has gone; runs keep going in their own sessions
        req, log_fd = json.loads(data), fds[0]
        if _threads() > clean:  # a library started threads here since the imports: a fork could deadlock
            sock.send(json.dumps({"error": f"warm server has {_threads()} threads, not {clean}"}).encode())
            os.close(log_fd)
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(req, log_fd, sock, watched)
        os.close(log_fd)
        pidfd = os.pidfd_open(pid)  # our own child, not yet reaped: it is this run, whatever pids do meanwhile
        watched[pidfd] = pid
        try:
            socket.send_fds(sock, [json.dumps({"pid": pid}).encode()], [pidfd])
        except OSError:
            return  # the caller has gone meanwhile: the run goes on without us


if __name__ == "__main__":
    serve(int(sys.argv[1]))
