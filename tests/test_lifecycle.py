"""A real headless run's lifecycle: SIGTERM marks it killed, SIGKILL leaves it dead, a failure records its error."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time

from phenomon import registry, runner, store

from .conftest import REPO, TINY


def _start(runs):
    return subprocess.Popen([sys.executable, "-m", "phenomon", "run", "grokking", *TINY, "--max-steps", "1000000",
                             "--runs", str(runs)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_rows(runs, n=20, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        runs_now = store.list_runs(runs) if runs.exists() else []
        if runs_now and runs_now[0].manifest.get("rows", 0) >= n:
            return runs_now[0]
        time.sleep(0.2)
    raise AssertionError("the run never flushed rows")


def test_sigterm_marks_the_run_killed_and_keeps_rows(runs):
    proc = _start(runs)
    try:
        _wait_rows(runs)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 1
    finally:
        proc.kill()
    [info] = store.list_runs(runs)
    assert info.state == "killed" and info.manifest["error"] == "stopped by signal"
    assert store.read_metrics(info.dir).height == info.manifest["rows"] > 0
    assert "Traceback" not in proc.stderr.read().decode()


def test_stop_file_stops_a_real_run_which_is_also_its_proven_owner(runs):
    """In process (fast): `phenomon stop` writes the stop file; the writer's thread sees it; the run ends killed."""
    from phenomon.cli import main

    seen = {}

    def stop_when_rows():
        info = _wait_rows(runs, n=5)
        seen["proof"] = store.stop.owner_proof(info)  # this process: start time, token and open .owner all match
        seen["code"] = main(["stop", info.id, "--runs", str(runs)])

    t = threading.Thread(target=stop_when_rows)
    t.start()
    ph = registry.get("grokking")
    cfg = ph.resolve(sets=["p=23", "max_steps=1000000", "eval_every=5", "hidden=16", "d_embed=8"])
    info = runner.run(ph, cfg, runner.RunOptions(root=runs, signals=(), invariance=False))
    t.join(timeout=60)
    assert seen == {"proof": None, "code": 0}
    assert info.state == "killed" and info.manifest["error"] == "stopped by request"
    assert store.read_metrics(info.dir).height == info.manifest["rows"] > 0
    assert not list(info.dir.rglob(".*tmp-*"))


def test_sigkill_leaves_a_dead_run_with_its_flushed_rows(runs):
    proc = _start(runs)
    try:
        _wait_rows(runs)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    [info] = store.list_runs(runs)
    assert info.state == "dead"
    assert f"pid {proc.pid}" in info.dead_reason()
    assert store.read_metrics(info.dir, problems=[]).height >= info.manifest["rows"] > 0


def test_a_failing_run_is_marked_failed_with_its_error(runs):
    ph = registry.get("grokking")

    def boom(cfg, ctx):
        raise RuntimeError("CUDA out of memory (simulated)")

    broken = dataclasses.replace(ph, execute=boom)
    info = runner.run(broken, ph.resolve(), runner.RunOptions(root=runs))
    assert info.state == "failed"
    assert info.manifest["error"] == "RuntimeError: CUDA out of memory (simulated)"
    assert "Traceback" in info.manifest["traceback"]
