"""The run store contract: round trip, incremental reads, concurrency, corruption, death."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from phenomon import store


def _writer(runs, rid="r1", **kw):
    runs.mkdir(parents=True, exist_ok=True)
    return store.RunWriter(runs / rid, store.new_manifest(rid, "test", **kw), background=False)


def test_round_trip_and_compaction(runs):
    w = _writer(runs)
    for step in range(30):
        w.log({"train/acc": step / 30, "test/acc": step / 60}, step=step, epoch=0)
        if step % 3 == 2:
            w.flush()
    w.close("finished")
    info = store.run_info(runs / "r1")
    assert info.state == "finished"
    segs = store.list_segments(runs / "r1")
    assert len(segs) == 1, "closing compacts the run into one file"
    df = store.read_metrics(runs / "r1")
    assert df.height == 60
    assert df.columns == list(store.ROW_SCHEMA)
    wide = store.wide(df)
    assert wide["step"].to_list() == list(range(30))
    assert wide["train/acc"][29] == pytest.approx(29 / 30)
    assert info.manifest["summary"]["test/acc"] == pytest.approx(29 / 60)


def test_nonfinite_values_stored_as_null(runs):
    w = _writer(runs)
    w.log({"a": float("nan"), "b": float("inf"), "c": 1.0}, step=1)
    w.close("finished")
    df = store.read_metrics(runs / "r1").sort("name")
    assert df["value"].to_list() == [None, None, 1.0]


def test_incremental_reader_returns_each_row_once_across_merges(runs, monkeypatch):
    monkeypatch.setattr(store.writer, "MERGE_AT", 5)
    w = _writer(runs)
    reader = store.IncrementalReader(runs / "r1")
    seen = []
    step = 0
    for burst in range(40):
        for _ in range(burst % 4 + 1):
            w.log({"x": float(step)}, step=step)
            step += 1
        w.flush()  # merges once 5 segments exist
        if burst % 3 == 0:
            seen.append(reader.poll())
    w.close("finished")
    seen.append(reader.poll())
    seen.append(reader.poll())
    got = pl.concat(seen)["step"].to_list()
    assert got == list(range(step)), "every row exactly once, in order"
    assert reader.problems == []


def test_incremental_reader_does_not_reread_old_segments(runs, monkeypatch):
    w = _writer(runs)
    w.log({"x": 1.0}, step=1)
    w.flush()
    reader = store.IncrementalReader(runs / "r1")
    assert reader.poll().height == 1
    read = []
    real = store.read_segment
    monkeypatch.setattr(store.segments, "read_segment", lambda p, *a: read.append(p.name) or real(p, *a))
    assert reader.poll().height == 0
    assert read == []
    w.log({"x": 2.0}, step=2)
    w.flush()
    assert reader.poll()["step"].to_list() == [2]
    assert read == [store.seg_name(1, 2)]


def test_contiguous_new_segments_are_read_in_one_call_and_a_bad_one_among_them_is_still_named(runs, monkeypatch):
    w = _writer(runs)
    w.log({"x": 0.0}, step=0)
    w.flush()
    reader = store.IncrementalReader(runs / "r1")
    reader.poll()
    for i in range(1, 5):
        w.log({"x": float(i)}, step=i)
        w.flush()
    batches, singles = [], []
    real_many, real_one = store.segments.read_segments, store.segments.read_segment
    monkeypatch.setattr(store.segments, "read_segments", lambda ps, *a: batches.append(len(ps)) or real_many(ps, *a))
    monkeypatch.setattr(store.segments, "read_segment", lambda p, *a: singles.append(p.name) or real_one(p, *a))
    assert reader.poll()["step"].to_list() == [1, 2, 3, 4], "each new row once, in order"
    assert batches == [4] and singles == [], "four flushes, one read"
    for i in range(5, 8):
        w.log({"x": float(i)}, step=i)
        w.flush()
    w._stop.set()
    (runs / "r1" / "metrics" / store.seg_name(6, 7)).write_bytes(b"PAR1 this is not parquet")
    assert reader.poll()["step"].to_list() == [5, 7], "the bad file's row skipped, the others kept"
    assert len(singles) == 3 and any("unreadable" in p and store.seg_name(6, 7) in p for p in reader.problems)


def test_corrupt_segment_is_reported_and_skipped(runs):
    w = _writer(runs)
    for i in range(3):
        w.log({"x": float(i)}, step=i)
        w.flush()
    w._stop.set()
    bad = runs / "r1" / "metrics" / store.seg_name(1, 2)
    bad.write_bytes(b"PAR1 this is not parquet")
    problems: list[str] = []
    df = store.read_metrics(runs / "r1", problems=problems)
    assert df["step"].to_list() == [0, 2]
    assert len(problems) == 1 and "unreadable segment" in problems[0]
    with pytest.warns(store.StoreWarning):
        store.read_metrics(runs / "r1")
    some = store.read_metrics(runs / "r1", problems=problems, columns=["step", "value"])
    assert some.columns == ["step", "value"] and some["value"].to_list() == [0.0, 2.0], "a column subset, same care"
    assert store.read_metrics(runs / "empty", columns=["name"]).columns == ["name"]


def test_truncated_manifest_is_reported_and_other_runs_still_listed(runs):
    _writer(runs, "good").close("finished")
    _writer(runs, "bad").close("finished")
    text = (runs / "bad" / "run.json").read_text()
    (runs / "bad" / "run.json").write_text(text[: len(text) // 2])
    errors: list[str] = []
    listed = store.list_runs(runs, errors=errors)
    assert [r.id for r in listed] == ["good"]
    assert len(errors) == 1 and "corrupt run.json" in errors[0]
    with pytest.raises(store.StoreError, match="corrupt run.json"):
        store.run_info(runs / "bad")


def test_two_writers_at_once(runs):
    a, b = _writer(runs, "a"), _writer(runs, "b")
    for i in range(50):
        a.log({"x": float(i)}, step=i)
        b.log({"x": float(-i)}, step=i)
        if i % 7 == 0:
            a.flush()
            b.flush()
    a.close("finished")
    b.close("failed", error="RuntimeError: boom")
    assert [store.read_metrics(r.dir)["value"].to_list() for r in store.list_runs(runs)] == [
        [float(i) for i in range(50)], [float(-i) for i in range(50)]]
    assert store.run_info(runs / "b").manifest["error"] == "RuntimeError: boom"
    assert store.run_info(runs / "b").state == "failed"


def test_heartbeat_age_marks_a_silent_remote_run_dead(runs):
    w = _writer(runs)
    w.update(host="some-other-machine", pid=1)
    assert store.run_info(runs / "r1").state == "running"
    old = time.time() - store.DEAD_AFTER_S - 5
    (runs / "r1" / "heartbeat").write_text(f"{old}\n")
    info = store.run_info(runs / "r1")
    assert info.state == "dead"
    assert "some-other-machine" in info.dead_reason() and "s ago" in info.dead_reason()


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from phenomon import store
    root = Path(sys.argv[1])
    w = store.RunWriter(root / "victim", store.new_manifest("victim", "test"))
    i = 0
    while True:
        w.log({"x": float(i)}, step=i)
        i += 1
        time.sleep(0.002)
""")


def test_sigkilled_writer_leaves_readable_run_marked_dead(runs):
    runs.mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(runs)])
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if store.run_info(runs / "victim").manifest.get("rows", 0) >= 200:
                    break
            except store.StoreError:
                pass
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    info = store.run_info(runs / "victim")
    assert info.state == "dead", "a vanished process is never shown as running"
    flushed = info.manifest["rows"]
    df = store.read_metrics(runs / "victim", problems=[])
    assert df.height >= flushed >= 200
    assert df["step"].to_list() == list(range(df.height)), "every flushed row, none torn"
    json.loads((runs / "victim" / "run.json").read_text())


def test_find_run_by_prefix(runs):
    _writer(runs, "grokking-abc").close("finished")
    _writer(runs, "grokking-abd").close("finished")
    assert store.find_run(runs, "grokking-abc").id == "grokking-abc"
    with pytest.raises(store.StoreError, match="ambiguous"):
        store.find_run(runs, "grokking-ab")
    with pytest.raises(store.StoreError, match="no run"):
        store.find_run(runs, "nope")


def test_wide_frame_matches_hand_made(runs):
    rows = pl.DataFrame({"step": [1, 1, 2], "epoch": [0, 0, 0], "wall": [0.0, 0.0, 1.0], "name": ["a", "b", "a"],
                         "value": [0.1, 0.2, 0.3], "round": [None, None, None]}, schema=store.ROW_SCHEMA)
    expect = pl.DataFrame({"step": [1, 2], "round": [None, None], "a": [0.1, 0.3], "b": [0.2, None]},
                          schema={"step": pl.Int64, "round": pl.Int64, "a": pl.Float64, "b": pl.Float64})
    assert_frame_equal(store.wide(rows), expect)


def test_a_pollers_manifest_cache_keeps_only_the_runs_listed_now(runs):
    """An unchanged manifest is not read again (the same dict comes back), and a removed run leaves the cache."""
    import shutil

    from phenomon.store.manifest import manifest_path

    for rid in ("r1", "r2"):
        _writer(runs, rid).close("finished")
    cache: dict = {}
    first = {r.id: r.manifest for r in store.list_runs(runs, cache=cache)}
    again = {r.id: r.manifest for r in store.list_runs(runs, cache=cache)}
    assert all(again[k] is first[k] for k in first) and len(cache) == 2
    shutil.rmtree(runs / "r2")
    assert [r.id for r in store.list_runs(runs, cache=cache)] == ["r1"]
    assert list(cache) == [manifest_path(runs / "r1")]
