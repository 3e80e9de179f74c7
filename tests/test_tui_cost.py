"""The monitor's cost stays flat: compact frames, no work on hidden screens or unchanged panels, launches off the UI
thread, and a too-small terminal that q leaves."""

from __future__ import annotations

import threading
import time

import polars as pl
from textual.widgets import DataTable

from phenomon import store
from phenomon.tui import frames
from phenomon.tui.screens.compare import CompareScreen
from phenomon.tui.screens.small import TooSmallScreen
from phenomon.tui.watcher import MAX_CHUNKS, StoreWatcher, compact
from phenomon.tui.widgets.chart import LineChart
from tests.test_tui_app import SIZE, FakeLauncher, FakeProc, app_for, until
from tests.test_tui_fixtures import make_run


def test_watcher_keeps_live_frames_compact(runs):
    """A run appended to on every poll never holds more than MAX_CHUNKS chunks per metric."""
    d = make_run(runs, status="running", steps=20)
    w = StoreWatcher(runs)
    w.poll()
    writer = store.RunWriter(d, store.read_manifest(d), background=False)
    for step in range(30, 30 + 10 * 3 * MAX_CHUNKS, 10):
        writer.log({"test/acc": 0.5}, step)
        writer.flush()
        w.poll()
    f = w._frames[d.name]["test/acc"]
    assert f.height == 2 + 3 * MAX_CHUNKS
    assert max(f.n_chunks("all")) <= MAX_CHUNKS + 1
    assert f["step"].is_sorted()


def test_compact_merges_the_newest_chunks_not_the_whole_run():
    """A long run appended to in small parts keeps its rows in order and few chunks, and the merges copy each row a
    few times over, not the whole frame every MAX_CHUNKS appends (whose freed copies swelled the monitor's RSS)."""
    f = pl.DataFrame({"step": range(25_000), "value": [0.5] * 25_000})
    want = [f]
    copied = 0
    for i in range(2_000):
        part = pl.DataFrame({"step": range(25_000 + 10 * i, 25_010 + 10 * i), "value": [0.1] * 10})
        want.append(part)
        joined = pl.concat([f, part], rechunk=False)
        f = compact(joined)
        assert f.n_chunks() <= MAX_CHUNKS
        if f.n_chunks() < joined.n_chunks():
            copied += f["step"].chunk_lengths()[-1]
    assert f.equals(pl.concat(want))
    assert copied < 10 * 20_000  # rechunking the whole frame each time copied ~125 × 35,000 rows


def test_a_followed_live_run_is_read_every_rows_every_and_at_once_when_it_ends(runs, monkeypatch):
    """While compare is shown the watcher reads a live run's flushes together, at most every `rows_every` seconds;
    every row still arrives once, and a run that ended is read on the next poll."""
    import phenomon.tui.watcher as watcher_mod

    d = make_run(runs, status="running", steps=20)
    w = StoreWatcher(runs)
    w.poll()
    start = w._frames[d.name]["test/acc"].height
    clock = [time.monotonic() + 100.0]
    monkeypatch.setattr(watcher_mod.time, "monotonic", lambda: clock[0])
    w.follow, w.rows_every = frozenset({d.name}), 2.0
    w.poll()  # read now (long since the last read): the clock starts here
    writer = store.RunWriter(d, store.read_manifest(d), background=False)
    seen = []
    for step, dt in ((30, 0.5), (40, 0.5), (50, 0.5), (60, 0.6)):
        writer.log({"test/acc": 0.5}, step)
        writer.flush()
        clock[0] += dt
        w.poll()
        seen.append(w._frames[d.name]["test/acc"].height - start)
    assert seen == [0, 0, 0, 4], "four flushes read in one go, 2.1 s after the last read"
    writer.log({"test/acc": 0.9}, 70)
    writer.close("finished")
    clock[0] += 0.1
    w.poll()
    assert w._frames[d.name]["test/acc"]["step"].to_list()[-5:] == [30, 40, 50, 60, 70], "ended: read at once"


def test_while_compare_is_shown_a_manifest_that_only_counts_rows_makes_no_snapshot(runs):
    """Compare draws rows and states: a writer's manifest updates (progress, row count) post nothing there, and
    the runs table gets them with the first poll after it."""
    d = make_run(runs, status="running", steps=20)
    w = StoreWatcher(runs)
    w.poll()
    w.follow = frozenset({"some-other-run"})  # compare shows other runs; this one's rows are not read
    writer = store.RunWriter(d, store.read_manifest(d), background=False)
    writer.log({"test/acc": 0.5}, 30)
    writer.update(progress={"step": 30, "max_steps": 20})
    writer.flush()
    assert w.poll() is None, "only progress and rows changed"
    w.follow = frozenset()  # the runs table again
    snap = w.poll()
    assert snap is not None and snap.run(d.name).manifest["progress"]["step"] == 30
    w.follow = frozenset({"some-other-run"})
    writer.close("failed", error="boom")
    snap = w.poll()
    assert snap is not None and snap.run(d.name).state == "failed", "a state change is shown on compare too"


def _counting(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = frames.step_series

    def counted(fr, manifests, metric, **kw):
        calls.append(metric)
        return real(fr, manifests, metric, **kw)

    monkeypatch.setattr(frames, "step_series", counted)
    return calls


async def test_hidden_compare_screen_does_no_work(runs, monkeypatch):
    live = make_run(runs, status="running", steps=100)
    calls = _counting(monkeypatch)
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
        await pilot.press("c")
        chart = app.screen.query_one("#chart-test-acc", LineChart)
        await until(pilot, lambda: len(chart.series) == 1)
        await pilot.press("r")
        await until(pilot, lambda: not isinstance(app.screen, CompareScreen))
        await pilot.pause(0.3)
        calls.clear()
        rows = app.snapshot.rows[live.name]
        writer = store.RunWriter(live, store.read_manifest(live), background=False)
        writer.log({"test/acc": 0.5, "train/acc": 0.5}, 405)
        writer.flush()
        said = lambda: app.snapshot.run(live.name).manifest.get("rows")  # noqa: E731
        await until(pilot, lambda: said() > rows)  # the table sees the run move (its manifest)
        await pilot.pause(0.3)
        assert app.snapshot.rows[live.name] == rows, "rows read for a screen that does not show them"
        assert calls == [], "the compare screen computed series while hidden"
        await pilot.press("c")  # shown again: it catches up with what came meanwhile
        await until(pilot, lambda: chart.series and chart.series[0].x.max() == 405)


async def test_a_key_recomputes_only_the_panel_it_changes(runs, monkeypatch):
    make_run(runs)
    calls = _counting(monkeypatch)
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
        await pilot.press("c")
        sig = app.screen.query_one("#chart-signal", LineChart)
        await until(pilot, lambda: sig.series != ())
        await pilot.pause(0.3)
        calls.clear()
        app.screen.signal_index += 1  # one signal (weight_norm): the same panel, a new key for it only
        await pilot.press("g")
        await pilot.pause(0.3)
        assert set(calls) <= {"weight_norm"}, calls
        calls.clear()
        await pilot.press("left")  # the cursor moves: no series computed at all
        await pilot.pause(0.2)
        assert calls == []


class SlowLauncher(FakeLauncher):
    """A launch that does not return until the test lets it (a fork of a large process on a busy machine)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.entered = threading.Event()

    def __call__(self, spec, log_dir):
        self.thread = threading.current_thread()
        self.entered.set()
        self.release.wait(timeout=30)
        return super().__call__(spec, log_dir)


async def test_launch_runs_off_the_ui_thread_and_the_key_is_acknowledged_at_once(runs):
    make_run(runs)
    slow = SlowLauncher()
    app = app_for(runs, launch_fn=slow)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
        await pilot.press("w")
        # the launch is still blocked, yet the key was handled and the screen says so: it did not wait for the start
        # (an order, not a stopwatch: the time a key takes belongs in bench/monitor_external.py)
        await until(pilot, lambda: "starting…" in str(app.screen.query_one("#toggles").render()))
        assert slow.entered.wait(timeout=10) and not slow.release.is_set() and not slow.calls
        await pilot.press("w")  # pressed again while it forks: still one start
        slow.release.set()
        await until(pilot, lambda: len(slow.calls) == 1)
        await until(pilot, lambda: not any(w.group == "launch" for w in app.workers))
        assert slow.thread is not threading.main_thread() and len(slow.calls) == 1
        assert isinstance(app.launches.started[0], FakeProc)


async def test_too_small_screen_quits_on_q_and_ctrl_c(runs):
    for key in ("q", "ctrl+c"):
        app = app_for(runs, launch_fn=FakeLauncher())
        async with app.run_test(size=(60, 15)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, TooSmallScreen))
            await pilot.press(key)
            await pilot.pause(0.2)
            assert not app.is_running, key


async def test_compare_at_80x24_shows_two_taller_panels(runs):
    make_run(runs)
    make_run(runs, toggles=("weight_decay",), grok_at=None)
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 2)
        assert not isinstance(app.screen, TooSmallScreen)
        await pilot.press("c")
        test_acc = app.screen.query_one("#chart-test-acc", LineChart)
        await until(pilot, lambda: len(test_acc.series) == 2)
        shown = lambda: [c for c in app.screen.query(LineChart) if c.display and c.region.height]  # noqa: E731
        await until(pilot, lambda: [c.title for c in shown()] == ["test/acc", "test/loss"])  # panels come one by one
        shown = shown()
        assert all(c.region.height >= 9 for c in shown), [c.region for c in shown]
        svg = app.export_screenshot()
        assert "too small" not in svg
        bar = app.screen.query_one("#toggles")
        assert bar.region.height == 1 + 4, "top border, the focus line and one line per toggle"


def test_rechunked_frames_are_the_same_rows():
    parts = [pl.DataFrame({"step": [i], "value": [float(i)], "round": [None]}) for i in range(40)]
    f = pl.concat(parts, rechunk=False)
    assert f.n_chunks() == 40 and f.rechunk().n_chunks() == 1 and f.rechunk().equals(f)


def test_metric_picker_puts_the_outcome_first_and_bookkeeping_last():
    names = {"epochs": 0, "params": 0, "time/signals_ms": 0, "final/test_error": 0, "test/error": 0, "weight_norm": 0,
             "test/acc": 0, "a/first": 0}
    got = CompareScreen().signal_names({"r": names}, {"r": {"phenomenon": "double_descent"}})
    assert got == ["final/test_error", "a/first", "test/error", "weight_norm", "epochs", "params", "time/signals_ms"]
    # a sweep of variants names its bookkeeping under a prefix: still last (dd_regularised opened on es_only/epochs)
    names = {"es_only/epochs": 0, "wd0.001/epochs": 0, "signal/weight_norm": 0, "wd0.001/val/loss": 0}
    got = CompareScreen().signal_names({"r": names}, {"r": {"phenomenon": "dd_regularised"}})
    assert got[-2:] == ["es_only/epochs", "wd0.001/epochs"] and got[0] != "es_only/epochs", got


async def test_help_names_keys_as_typed_and_screenshot_goes_to_the_runs_dir(runs):
    from phenomon.tui.screens.help import HelpScreen, key_name

    make_run(runs)
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
        await pilot.press("c")
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = [key_name(b) for _, bs in app.screen.sections for b in bs]
        assert "[" in keys and "]" in keys and not any("square" in k for k in keys)
        assert keys.count("r") == 1, "r is listed once"
        await pilot.press("escape")
        await pilot.press("y")  # log y: a redraw of every panel, no recomputation
        assert all(c.log_y for c in app.screen.query(LineChart))
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        shots = list((runs / ".screenshots").glob("*.svg"))
        assert len(shots) == 1
        assert any(str(shots[0]) in str(n.message) for n in app._notifications)
        await pilot.press("S", "r")  # r goes to the runs from the scorecard as from everywhere
        await until(pilot, lambda: app.screen is app.get_screen("runs"))


async def test_escape_clears_the_compare_cursor(runs):
    make_run(runs)
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
        await pilot.press("c")
        chart = app.screen.query_one("#chart-test-acc", LineChart)
        await until(pilot, lambda: len(chart.series) == 1)
        await pilot.press("left")
        assert chart.cursor is not None
        await pilot.press("escape")
        assert chart.cursor is None and app.screen.cursor_pos is None


async def test_startup_objects_are_out_of_the_collectors_sight_while_the_app_runs(runs):
    """What exists once the first screen is drawn is frozen (full collections scan a third as much and pause every
    thread ~13 ms instead of ~39 ms); on exit it is unfrozen, so a closed app's widgets can be collected."""
    import gc

    make_run(runs, status="finished", steps=20)
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
        await until(pilot, lambda: gc.get_freeze_count() > 1000)  # after the first refresh (the table may be first)
    assert gc.get_freeze_count() == 0


async def test_the_runs_table_remakes_only_the_row_whose_manifest_changed(runs, monkeypatch):
    """A live run rewriting its manifest remakes its own row and no other (remaking every row on every snapshot was
    most of the runs table's idle CPU), and the new progress is on screen."""
    from phenomon.tui.screens.runs import RunsScreen

    make_run(runs, seed=1, status="finished", steps=200)
    make_run(runs, seed=2, status="finished", steps=200)
    live = make_run(runs, seed=0, status="running", steps=100)
    made = []
    real = RunsScreen._row
    monkeypatch.setattr(RunsScreen, "_row", lambda self, r, settings: made.append(r.id) or real(self, r, settings))
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 3)
        await pilot.pause(0.5)
        made.clear()
        m = store.read_manifest(live)
        m["progress"] = {"step": 50, "max_steps": m["progress"]["max_steps"]}
        store.atomic_write_json(live / "run.json", m)
        await until(pilot, lambda: "50%" in str(table.get_cell(live.name, "progress")))
        await pilot.pause(0.5)  # more polls: the unchanged runs stay as they were
        assert made and set(made) == {live.name}
