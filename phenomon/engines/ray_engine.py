"""The ray engine: each run a Ray Core task that calls `phenomon run` in the worker's main thread (not Ray Tune: the
store and the grids are phenomon's). Workers are reused, so torch and Lightning are imported once per worker, not
once per run. A task is one run; it is never retried (a retry would be a second run under the same launch).

How a run ends, whoever records it: the runner itself (finished, failed with its error, killed by a stop file or by
`ray.cancel`'s KeyboardInterrupt); or, when the worker died and could not, the driver (`failed` with Ray's error, or
`killed` for a forced cancel), which changes a manifest only while it still says running.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from phenomon import store
from phenomon.config import UsageError
from phenomon.engines import RAY_INSTALL

TAIL = 4000  # characters of a task's own output kept for the driver


def _import_ray():
    try:
        import ray
    except ImportError:
        raise UsageError(f"the ray engine needs Ray, which is not installed here: {RAY_INSTALL}") from None
    return ray


def _init_ray(ray, **kwargs) -> None:
    """`ray.init`, from a thread that outlives the session. A local Ray's daemons are started with a parent-death
    signal, which Linux sends when the *thread* that started them exits: started from the monitor's short-lived
    launch worker, Ray died a moment later ("Failed to connect to GCS"). Off the main thread, a daemon thread that
    never ends starts it."""
    import threading

    if threading.current_thread() is threading.main_thread():
        ray.init(**kwargs)
        return
    done, box = threading.Event(), {}

    def keeper() -> None:
        try:
            ray.init(**kwargs)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            box["error"] = e
        done.set()
        if "error" not in box:
            threading.Event().wait()  # stay alive as long as the process: Ray's daemons live while this thread does

    threading.Thread(target=keeper, name="phenomon-ray", daemon=True).start()
    done.wait()
    if "error" in box:
        raise box["error"]


def run_in_worker(argv: list[str]) -> dict:
    """The task: `phenomon ARGV` in this process (a warm worker keeps its imports), output captured."""
    from phenomon.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    try:  # a warm worker shares its GPU with the next run: hand back the cached blocks
        import torch

        if torch.cuda.is_initialized():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - housekeeping only
        pass
    return {"code": code, "stdout": out.getvalue()[-TAIL:], "stderr": err.getvalue()[-TAIL:],
            "pid": os.getpid()}


class RayEngine:
    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_run: float = 1.0, gpus_per_run: float = 0.0,
                 target: Callable[[list[str]], Any] | None = None, init_kwargs: dict | None = None):
        """`target(argv)` is what a task runs (`run_in_worker`; tests pass a failing one). `init_kwargs` go to
        `ray.init` when this engine starts Ray itself."""
        self.ray = _import_ray()
        self.address = address
        self.cpus_per_run, self.gpus_per_run = cpus_per_run, gpus_per_run
        self._target = target or run_in_worker
        self._init_kwargs = init_kwargs or {}
        self._remote = None
        self.startup_s: float | None = None

    def start(self) -> None:
        """Connect to the cluster (or start a local Ray) once, on the first launch."""
        ray = self.ray
        if self._remote is not None:
            return
        t0 = time.perf_counter()
        if not ray.is_initialized():
            try:
                _init_ray(ray, address=self.address, include_dashboard=False, log_to_driver=False,
                          ignore_reinit_error=True, **self._init_kwargs)
            except ConnectionError as e:
                where = self.address or os.environ.get("RAY_ADDRESS")
                raise UsageError(f"no Ray cluster at {where}: {str(e).splitlines()[0][:160]} "
                                 "(start one with `ray start --head`, or leave --address out for a local Ray)") from None
            except Exception as e:  # noqa: BLE001 - e.g. a local Ray timing out at start-up on an overloaded machine
                raise UsageError(f"could not start Ray: {(str(e).splitlines() or [e.__class__.__name__])[0][:200]}"
                                 ) from None
        self.startup_s = time.perf_counter() - t0
        opts: dict[str, Any] = {"num_cpus": self.cpus_per_run, "max_retries": 0}
        if self.gpus_per_run:
            opts["num_gpus"] = self.gpus_per_run
            opts["max_calls"] = 0  # Ray's default for GPU tasks is a fresh worker per task: keep them warm
        self._remote = ray.remote(**opts)(self._target)

    def launch(self, spec, log_dir: Path):
        self.start()
        if spec.root is not None:  # a worker's working directory is not ours: the shared root, absolute
            spec = replace(spec, root=Path(spec.root).resolve())
        argv = spec.argv()[3:]  # `phenomon run ...` without `python -m phenomon`
        ref = self._remote.options(name=f"phenomon {spec.phenomenon} {spec.launch_id}").remote(argv)
        return RayHandle(self.ray, ref, spec)

    def default_parallel(self) -> int | None:
        return None  # the cluster's resources decide how many run at once

    def describe(self) -> str:
        return f"Ray at {self.address or os.environ.get('RAY_ADDRESS') or 'a local Ray'}"


class RayHandle:
    """A submitted run, with the `subprocess.Popen` calls the sweep and the monitor make."""

    def __init__(self, ray, ref, spec):
        self._ray, self.ref, self.spec = ray, ref, spec
        self.returncode: int | None = None
        self.output: str = ""
        self.error: str | None = None  # why the task itself failed (Ray's words), None when it returned
        self._cancelled = False

    @property
    def pid(self) -> str:
        return f"ray task {self.ref.task_id().hex()[:12]}"

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        ready, _ = self._ray.wait([self.ref], timeout=0)
        if ready:
            self._settle()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        ready, _ = self._ray.wait([self.ref], timeout=timeout)
        if not ready:
            raise subprocess.TimeoutExpired(self.pid, timeout)
        self._settle()
        return self.returncode

    def terminate(self) -> None:
        """A KeyboardInterrupt in the task (the run flushes and marks itself killed); a queued task never starts."""
        self._cancelled = True
        self._ray.cancel(self.ref, force=False)

    def send_signal(self, sig) -> None:  # noqa: ARG002 - every stop is the same request here
        self.terminate()

    def kill(self) -> None:
        self._cancelled = True
        self._ray.cancel(self.ref, force=True)

    def _settle(self) -> None:
        ex = self._ray.exceptions
        try:
            res = self._ray.get(self.ref)
        except ex.TaskCancelledError:
            self.returncode, self.error = 130, "cancelled"
            self._record("killed", "stopped by request (ray.cancel)")
        except ex.RayTaskError as e:  # the task raised outside the runner's own handling
            cause = getattr(e, "cause", None)
            self.error = f"{cause.__class__.__name__}: {cause}" if cause is not None else str(e).splitlines()[0]
            self.returncode = 130 if self._cancelled else 1
            self._record("killed" if self._cancelled else "failed", self.error[:2000])
        except ex.RayError as e:  # the worker or its node died: the run could not record its own end
            self.error = f"{e.__class__.__name__}: {str(e).strip().splitlines()[0][:300] if str(e).strip() else ''}"
            self.returncode = 130 if self._cancelled else 1
            why = "stopped by request (ray.cancel, forced)" if self._cancelled else \
                f"the Ray worker running it died ({self.error})"
            self._record("killed" if self._cancelled else "failed", why)
        else:
            self.returncode = int(res.get("code", 1)) if isinstance(res, dict) else 0
            self.output = (res.get("stdout", "") + res.get("stderr", "")) if isinstance(res, dict) else ""
            if self.returncode != 0:
                self._record("failed", f"the task ended with exit code {self.returncode}")

    def _record(self, status: str, error: str) -> None:
        if self.spec.root is None or not self.spec.launch_id:
            return
        info = store.launched_run(Path(self.spec.root), self.spec.launch_id)
        if info is not None:
            store.mark_ended(info, status, error)
