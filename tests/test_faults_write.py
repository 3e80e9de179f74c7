"""Faults on the writing side: a full disk ends a run cleanly, racing runs never share a directory, stop files, paths."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
import time

import pytest

from phenomon import store
from phenomon.callbacks import RunStoreLogger
from phenomon.session import RunOutput

from .conftest import REPO


def test_a_file_size_limit_ends_the_run_failed_with_its_rows_readable(runs):
    """RLIMIT_FSIZE in a child: a segment write fails (EFBIG), is retried, then the run stops as failed."""
    # flushes every 0.1 s: the first segments are small whatever the machine's speed, and a merge soon hits the limit
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (12000, 12000)); "
            "import phenomon.store.writer as W; W.FLUSH_EVERY_S = 0.1; "
            "from phenomon.cli import main; sys.exit(main(sys.argv[1:]))")
    out = subprocess.run([sys.executable, "-c", code, "run", "grokking", "--set", "p=5", "--set", "eval_every=1",
                          "--set", "hidden=64", "--set", "d_embed=16", "--max-steps", "100000", "--signals", "none",
                          "--runs", str(runs)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    [info] = store.list_runs(runs)
    assert info.state == "failed"
    assert "file size limit reached while writing" in info.manifest["error"]
    assert info.manifest["error"] in out.stdout
    rows = store.read_metrics(info.dir, problems=[])
    assert rows.height >= info.manifest["rows"] > 0
    assert not [p for p in info.dir.rglob("*") if ".tmp-" in p.name]


def test_a_write_error_sets_failed_and_stops_through_the_callback(tmp_path, monkeypatch):
    monkeypatch.setattr(store.writer, "WRITE_RETRIES", (0.01,))
    stopped = threading.Event()
    w = store.RunWriter(tmp_path / "r", store.new_manifest("r", "grokking"), on_stop=stopped.set)
    w.log({"a": 1.0}, 1)
    w.flush()

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.writer.pl.DataFrame, "write_parquet", full)
    with pytest.warns(store.StoreWarning, match="disk full while writing metrics; the run stops"):
        w.log({"a": 2.0}, 2)
        assert stopped.wait(5)
    assert w.failed == "disk full while writing metrics"
    w.close("finished")
    info = store.run_info(tmp_path / "r")
    assert info.state == "failed" and info.manifest["error"] == "disk full while writing metrics"
    assert store.read_metrics(info.dir)["value"].to_list() == [1.0]


def test_the_writer_polls_its_stop_file(tmp_path):
    stopped = threading.Event()
    w = store.RunWriter(tmp_path / "r", store.new_manifest("r", "grokking"), on_stop=stopped.set)
    try:
        info = store.run_info(w.dir)
        assert info.state == "running" and store.stop.owner_proof(info) is None  # this process holds .owner
        assert "stop file" in store.stop_run(info)
        assert stopped.wait(5) and w.stop_requested
    finally:
        w.close("killed", "stopped by request")
    assert store.stop.owner_proof(store.run_info(w.dir)) is not None  # closed: no longer held


def test_stale_temp_files_of_gone_writers_are_removed(tmp_path):
    d = tmp_path / "r"
    (d / "metrics").mkdir(parents=True)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = [d / f".run.json.tmp-{gone}-1.json", d / "metrics" / f".rows-merge.tmp-{gone}-7.parquet"]
    for p in stale:
        p.write_text("x")
    alive = d / f".run.json.tmp-{os.getppid()}-1.json"  # a live process's: not ours to remove
    alive.write_text("x")
    store.RunWriter(d, store.new_manifest("r", "grokking"), background=False).close("finished")
    assert not any(p.exists() for p in stale) and alive.exists()


def _race(root, barrier, out, i):
    barrier.wait()
    out[i] = store.create_run_dir(root, "grokking-abc")


def test_racing_runs_never_share_a_directory(tmp_path):
    shared = 0
    for trial in range(20):
        root = tmp_path / str(trial)
        root.mkdir()
        barrier, out = threading.Barrier(2), [None, None]
        ts = [threading.Thread(target=_race, args=(root, barrier, out, i)) for i in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        shared += out[0] == out[1]
        assert sorted(p.name for p in out) == ["grokking-abc", "grokking-abc.2"]
    assert shared == 0


def _race_process(roots, barrier, q):
    for root in roots:
        barrier.wait()
        q.put((str(root), store.create_run_dir(root, "x").name))


def test_racing_processes_never_share_a_directory(tmp_path):
    ctx = multiprocessing.get_context("fork")  # the child only makes directories: no polars in it
    roots = [tmp_path / str(trial) for trial in range(10)]
    for r in roots:
        r.mkdir()
    barrier, q = ctx.Barrier(2), ctx.Queue()
    ps = [ctx.Process(target=_race_process, args=(roots, barrier, q)) for _ in range(2)]
    for p in ps:
        p.start()
    got = [q.get(timeout=30) for _ in range(20)]
    for p in ps:
        p.join(timeout=30)
    for r in roots:
        assert sorted(name for root, name in got if root == str(r)) == ["x", "x.2"]


def test_paths_from_data_stay_inside_their_root(tmp_path):
    assert store.slug("../escaped/pwn") == "escaped_pwn"
    assert store.slug("[/]") == "x"
    assert not store.safe_name("../x") and not store.safe_name(".hidden") and store.safe_name("grokking-ab12.2")
    with pytest.raises(store.StoreError):
        store.confined(tmp_path, "../out")
    with pytest.raises(store.StoreError):
        store.confined(tmp_path, "/etc/passwd")
    assert store.confined(tmp_path, "masks/round_01.pt") == tmp_path / "masks" / "round_01.pt"
    for bad in ("../escaped", "a/b", "", ".x"):
        with pytest.raises(ValueError, match="must be letters"):
            RunStoreLogger(tmp_path, name=bad)
    w = store.RunWriter(tmp_path / "r", store.new_manifest("r", "grokking"), background=False)
    with pytest.raises(store.StoreError):
        RunOutput(w).save_file("../../outside.bin", b"x")
    assert not (tmp_path / "outside.bin").exists() and not (tmp_path.parent / "outside.bin").exists()


def test_a_reused_pid_is_not_the_run(tmp_path):
    """The run's pid now belongs to another process (its start time differs): dead, and never signalled."""
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        w = store.RunWriter(tmp_path / "r", store.new_manifest("r", "grokking"), background=False)
        w.update(pid=sleeper.pid, pid_start=store.proc_start(sleeper.pid) + 1)
        info = store.run_info(w.dir)
        assert info.state == "dead"
        assert "not signalled" in store.signal_fallback(info) and sleeper.poll() is None
    finally:
        sleeper.kill()


def test_sigterm_to_a_parent_stops_its_children(tmp_path, monkeypatch):
    from phenomon import sweep
    from phenomon.launcher import RunSpec

    started = []

    def fake_launch(spec, log_dir):
        started.append(subprocess.Popen(["sleep", "60"]))
        return started[-1]

    class FakeEngine:
        name = "local"
        launch = staticmethod(fake_launch)

    children = [sweep.Child(f"c{i}", RunSpec("grokking", seed=i)) for i in range(2)]
    threading.Timer(1.0, os.kill, (os.getpid(), __import__("signal").SIGTERM)).start()
    with pytest.raises(KeyboardInterrupt):
        sweep.run_parallel(children, tmp_path, max_parallel=2, poll_s=0.05, out=open(os.devnull, "w"),
                           engine=FakeEngine())
    assert len(started) == 2 and all(p.poll() is not None for p in started)
