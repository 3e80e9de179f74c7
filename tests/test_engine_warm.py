"""Warm local runs (forked from a server that has done the imports): the same rows and verdicts as cold runs, a stop
that ends a run killed, a run killed -9 seen to end and dead, a failure recorded, the cold fallback, and a GPU asked
for where there is none refused before anything starts."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from phenomon import store
from phenomon.engines import LocalEngine, warm
from phenomon.launcher import RunSpec, launch
from phenomon.sweep import Child, run_parallel

from .conftest import phenomon

pytestmark = pytest.mark.skipif(not (sys.platform.startswith("linux") and hasattr(os, "pidfd_open")),
                                reason="warm runs need Linux pidfds")
GROK = ("p=23", "eval_every=10", "hidden=16", "d_embed=8")
DD = ("epochs=20", "train_size=400")  # tiny double-descent runs: a second or two each


def _sweep(root, monkeypatch, mode: str) -> list[Child]:
    monkeypatch.setenv("PHENOMON_WARM", mode)
    children = [Child(f"width {w} seed {s}", RunSpec("double_descent", sets=(*DD, f"width={w}"), seed=s, root=root,
                                                      accelerator="cpu"))
                for w in (8, 24) for s in (0, 1)]
    run_parallel(children, root, max_parallel=2, out=io.StringIO(), poll_s=0.1, engine=LocalEngine())
    return children


def _rows(info: store.RunInfo) -> pl.DataFrame:
    f = store.wide(store.read_metrics(info.dir, problems=[]))
    timing = [c for c in f.columns if "time" in c or c in ("wall", "elapsed")]  # the clock is not the run's result
    return f.drop(timing).sort("step")


def test_a_warm_sweep_gives_the_rows_and_verdicts_of_a_cold_one(tmp_path, monkeypatch):
    warm_runs = _sweep(tmp_path / "warm", monkeypatch, "1")
    cold_runs = _sweep(tmp_path / "cold", monkeypatch, "0")
    assert {type(c.proc).__name__ for c in warm_runs} == {"WarmHandle"}
    assert all(c.proc.cpu_s > 0 for c in warm_runs)  # the server reports each run's CPU seconds with its exit
    assert {type(c.proc).__name__ for c in cold_runs} == {"Popen"}
    for w, c in zip(warm_runs, cold_runs):
        assert (w.info.state, c.info.state) == ("finished", "finished"), (w.info.manifest.get("error"),
                                                                          c.info.manifest.get("error"))
        assert w.info.manifest["verdict"] == c.info.manifest["verdict"]
        assert w.info.manifest["config_hash"] == c.info.manifest["config_hash"]
        assert (w.info.manifest["launch"], w.info.manifest["engine"]) == (w.launch_id, "local")
        assert_frame_equal(_rows(w.info), _rows(c.info), check_column_order=False)  # the order rows met columns
    logs = sorted((tmp_path / "warm" / ".logs").glob("*.log"))
    assert len(logs) == 4 and all("finished" in p.read_text() for p in logs), "each run's output is in its own log"


def _start_long(root, monkeypatch, launch_id: str):
    """A grokking run that would go on for hours, warm, once its rows reach the store."""
    monkeypatch.setenv("PHENOMON_WARM", "1")
    spec = RunSpec("grokking", sets=GROK, max_steps=1_000_000, root=root, launch_id=launch_id, engine="local",
                   accelerator="cpu", extra=("--signals", "none"))
    h = launch(spec, root / ".logs")
    assert isinstance(h, warm.WarmHandle)
    deadline = time.time() + 120
    while time.time() < deadline:
        info = store.launched_run(root, launch_id)
        if info is not None and info.manifest.get("rows", 0) >= 2:
            assert h.poll() is None and info.state == "running"
            return h, info
        assert h.poll() is None, f"the run ended early: {list((root / '.logs').glob('*'))}"
        time.sleep(0.1)
    h.kill()
    raise AssertionError("the run never streamed rows")


def test_terminate_stops_a_warm_run_and_it_ends_killed(runs, monkeypatch):
    h, info = _start_long(runs, monkeypatch, "lterm")
    h.terminate()
    assert h.wait(60) == 1  # what `phenomon run` exits with when its run did not finish
    m = store.run_info(info.dir).manifest
    assert (m["status"], m["error"]) == ("killed", "stopped by signal")


def test_a_warm_run_killed_with_sigkill_is_seen_to_end_and_reads_dead(runs, monkeypatch):
    h, info = _start_long(runs, monkeypatch, "lkill")
    os.kill(h.pid, signal.SIGKILL)  # as `kill -9 PID` from a terminal: nothing of ours is told
    assert h.wait(60) == -signal.SIGKILL
    after = store.run_info(info.dir)
    assert after.manifest["status"] == "running" and after.state == "dead"  # its process is gone: not running


def test_runs_outlive_a_killed_server_and_their_handles_still_see_them_end(runs, monkeypatch):
    h, info = _start_long(runs, monkeypatch, "lserver")
    server = h.server
    server.proc.kill()
    server.proc.wait(30)
    assert h.poll() is None and store.run_info(info.dir).state == "running"  # its own session: it goes on
    h.terminate()  # through its pidfd
    assert h.wait(60) == 1  # its exit code went with the server; that it ended did not
    assert store.run_info(info.dir).manifest["status"] == "killed"
    nxt = launch(RunSpec("grokking", sets=GROK, max_steps=1, root=runs, accelerator="cpu",
                         extra=("--signals", "none")), runs / ".logs")
    assert isinstance(nxt, warm.WarmHandle) and nxt.server is not server and nxt.wait(120) == 0  # a new server


@pytest.mark.parametrize("mode", ["1", "0"])
def test_a_run_that_fails_ends_failed_with_its_error_warm_or_cold(runs, monkeypatch, mode):
    monkeypatch.setenv("PHENOMON_WARM", mode)
    runs.mkdir(parents=True)
    (runs / store.LAUNCHES_DIR).write_text("not a directory")  # the run cannot record its launch: it fails
    h = launch(RunSpec("grokking", sets=GROK, max_steps=50, root=runs, launch_id="lfail", accelerator="cpu",
                       extra=("--signals", "none")), runs / ".logs")
    assert isinstance(h, warm.WarmHandle if mode == "1" else subprocess.Popen)
    assert h.wait(120) == 1
    [info] = [store.run_info(d.parent) for d in runs.glob("*/run.json")]
    assert info.state == "failed" and info.manifest["error"].startswith(("FileExistsError", "NotADirectoryError"))


@pytest.fixture
def fresh_server():
    warm.shutdown()
    yield
    warm.shutdown()


def test_a_server_that_cannot_start_means_cold_runs_and_no_error(runs, monkeypatch, fresh_server):
    monkeypatch.setenv("PHENOMON_WARM", "1")
    monkeypatch.setattr(warm, "SERVER_MODULE", "phenomon.engines.no_such_server")
    spec = RunSpec("grokking", sets=GROK, max_steps=1, root=runs, accelerator="cpu", extra=("--signals", "none"))
    hs = [launch(spec, runs / ".logs") for _ in range(2)]  # the second does not try the server again
    assert [type(h) for h in hs] == [subprocess.Popen] * 2 and [h.wait(120) for h in hs] == [0, 0]
    assert [store.run_info(d.parent).state for d in runs.glob("*/run.json")] == ["finished", "finished"]


def test_a_run_that_may_use_a_gpu_starts_cold(monkeypatch):
    if os.path.exists("/dev/nvidiactl") or os.path.exists("/dev/nvidia0"):
        pytest.skip("this machine has an NVIDIA GPU")
    assert warm.eligible(RunSpec("grokking", accelerator="cpu"))
    assert not warm.eligible(RunSpec("grokking", accelerator="gpu"))
    monkeypatch.setattr(os.path, "exists", lambda p: p == "/dev/nvidiactl")  # a GPU machine: even CPU runs start cold
    assert not warm.eligible(RunSpec("grokking", accelerator="cpu"))


@pytest.mark.parametrize("args,accelerator", [(("run", "double_descent", "--preset", "quick"), "gpu"),
                                              (("experiment", "double_descent"), "cuda"),
                                              (("run", "grokking"), "gpu"), (("demo",), "cuda")])
def test_a_gpu_where_there_is_none_is_refused_up_front(tmp_path, args, accelerator):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    runs = tmp_path / "runs"
    out = phenomon(*args, "--accelerator", accelerator, "--runs", str(runs))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"phenomon: error: --accelerator {accelerator}: no CUDA device is "
                                               "available here (use auto or cpu)"]
    assert not runs.exists()


def test_ctrl_c_of_a_warm_sweep_stops_its_runs_and_each_ends_killed(runs):
    from .conftest import REPO

    p = subprocess.Popen([sys.executable, "-m", "phenomon", "run", "double_descent", "--set", "widths=8,16,24",
                          "--set", "seeds=0", "--set", "epochs=100000", "--set", "train_size=400", "--signals", "none",
                          "--runs", str(runs)], cwd=REPO, env={**os.environ, "PHENOMON_WARM": "1"},
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline, started = time.time() + 120, []
    while time.time() < deadline and len(started) < 2:
        started = [r for r in store.list_runs(runs) if r.manifest.get("rows", 0) >= 1] if runs.exists() else []
        time.sleep(0.2)
    assert len(started) == 2, "two runs at once should have started"
    p.send_signal(signal.SIGINT)  # Ctrl-C
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 130, out
    after = store.list_runs(runs)
    assert len(after) == 2, "the queued width never starts"
    assert [r.state for r in after] == ["killed", "killed"]  # by the SIGTERM or the stop file, whichever came first
    assert all(r.manifest["error"] in ("stopped by signal", "stopped by request") for r in after)
