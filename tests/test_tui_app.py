"""The monitor driven by Pilot against prepared runs directories (rows written by the store's writer)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from textual.widgets import DataTable, Static

from phenomon import store
from tests.test_tui_fixtures import make_run
from phenomon.tui.app import PhenomonApp
from phenomon.tui.screens.compare import CompareScreen
from phenomon.tui.screens.confirm import ConfirmScreen
from phenomon.tui.screens.detail import DetailScreen
from phenomon.tui.screens.help import HelpScreen
from phenomon.tui.screens.small import TooSmallScreen
from phenomon.tui.widgets.chart import LineChart

SIZE = (160, 48)


class FakeProc:
    """Stands in for subprocess.Popen at the process boundary."""

    def __init__(self, argv):
        self.argv, self.pid, self.signals = argv, 999999, []

    def poll(self):
        return None

    def terminate(self):
        self.signals.append("TERM")


class FakeLauncher:
    def __init__(self):
        self.calls = []

    def __call__(self, spec, log_dir):
        self.calls.append(spec.argv())
        return FakeProc(spec.argv())


async def until(pilot, cond, timeout: float = 8.0) -> None:
    """Wait as a user does: the app's own watcher polls the store (every 0.1 s in these tests)."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


def cell(app, rid: str, col: str) -> str:
    return str(app.screen.query_one(DataTable).get_cell(rid, col))


@pytest.fixture
def prepared(runs):
    ids = {
        "base": make_run(runs).name,
        "base1": make_run(runs, seed=1, grok_at=170).name,
        "wd": make_run(runs, toggles=("weight_decay",), grok_at=None).name,
        "failed": make_run(runs, toggles=("init_scale",), status="failed", error="RuntimeError: boom", steps=30).name,
        "dead": make_run(runs, toggles=("train_fraction",), status="dead", steps=100).name,
        "live": make_run(runs, toggles=("train_fraction",), seed=3, status="running", steps=200).name,
    }
    return runs, ids


def app_for(root, **kw) -> PhenomonApp:
    return PhenomonApp(root, poll_s=0.1, **kw)


async def test_table_lists_runs_with_statuses(prepared):
    root, ids = prepared
    app = app_for(root, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 6)
        assert cell(app, ids["base"], "status") == "finished"
        assert cell(app, ids["live"], "status") == "running"
        assert cell(app, ids["dead"], "status") == "dead"
        assert "is gone" in cell(app, ids["dead"], "verdict / error")
        assert cell(app, ids["failed"], "status") == "failed"
        assert cell(app, ids["failed"], "verdict / error") == "RuntimeError: boom"
        assert cell(app, ids["wd"], "toggles") == "weight_decay"
        assert "test/acc 1.000" in cell(app, ids["base"], "metrics")
        await pilot.press("t", "t", "t")  # status filter: all -> running -> finished -> failed
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
        assert app.screen.query_one(DataTable).get_row_at(0)[1] == ids["failed"]


async def test_failed_run_error_in_detail_view(prepared):
    root, ids = prepared
    app = app_for(root, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 6)
        table = app.screen.query_one(DataTable)
        table.move_cursor(row=table.get_row_index(ids["failed"]))
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        text = str(app.screen.query_one("#detail-text", Static).render())
        assert "failed" in text and "RuntimeError: boom" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, DetailScreen)


async def test_selecting_runs_updates_compare_series(prepared):
    root, ids = prepared
    app = app_for(root, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 6)
        table = app.screen.query_one(DataTable)
        for key in ("base", "base1", "wd"):
            table.move_cursor(row=table.get_row_index(ids[key]))
            await pilot.press("space")
        await pilot.press("c")
        assert isinstance(app.screen, CompareScreen)
        chart = app.screen.query_one("#chart-test-acc", LineChart)
        await until(pilot, lambda: len(chart.series) == 2)
        labels = [s.label for s in chart.series]
        assert labels == ["weight decay 1 (2 seeds)", "weight decay 0"]
        base = chart.series[0]
        assert base.lo is not None and (base.hi >= base.lo).all()  # two seeds: a spread band
        assert chart.series[1].lo is None and chart.series[1].y.max() < 0.05
        assert chart.log_x and chart.x_range == (10.0, 400.0)
        draws = chart.draws
        await pilot.press("right_square_bracket")  # smoothing changes the series and redraws
        await until(pilot, lambda: chart.draws > draws)
        await pilot.press("left")
        assert chart.cursor is not None and "@" in "".join(s.text for s in chart._legend(200))


async def test_toggle_key_starts_exactly_one_paired_run(runs):
    make_run(runs)
    fake = FakeLauncher()
    app = app_for(runs, launch_fn=fake)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
        await pilot.press("w", "w", "w", "w")  # faster than any run can start
        await until(pilot, lambda: not any(w.group == "launch" for w in app.workers))
        assert len(fake.calls) == 1
        argv = fake.calls[0]
        assert argv[1:5] == ["-m", "phenomon", "run", "grokking"]
        assert argv[argv.index("--toggle") + 1] == "weight_decay"
        assert "max_steps=400" in argv and argv[argv.index("--runs") + 1] == str(runs)
        assert "--seed" not in argv  # seed 0 is the default: same seed
        await pilot.press("n")  # another seed of the focused config
        await until(pilot, lambda: not any(w.group == "launch" for w in app.workers))
        assert len(fake.calls) == 2 and fake.calls[1][fake.calls[1].index("--seed") + 1] == "1"


async def test_toggle_key_focuses_an_existing_paired_run(prepared):
    root, ids = prepared
    fake = FakeLauncher()
    app = app_for(root, launch_fn=fake)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 6)
        table = app.screen.query_one(DataTable)
        table.move_cursor(row=table.get_row_index(ids["base"]))
        await pilot.pause()
        await pilot.press("w")
        assert fake.calls == []
        assert app.focus_cfg.weight_decay == 0.0
        assert ids["wd"] in str(app.screen.query_one("#toggles").render())


async def test_stop_key_writes_a_stop_file_and_never_signals_a_stranger(runs):
    """Crafted manifests: running, this host, an unrelated process's pid and even its true start time; the stop
    keys ask by a stop file and the stranger survives. A far-future heartbeat reads as clock skew, not running."""
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        dirs = {}
        for future, seed in ((False, 0), (True, 1)):
            d = dirs[future] = make_run(runs, status="running", seed=seed)
            m = store.read_manifest(d)
            m.update(pid=sleeper.pid, pid_start=store.proc_start(sleeper.pid))
            store.atomic_write_json(d / "run.json", m)
            if future:
                (d / "heartbeat").write_text(f"{time.time() + 86400}\n")
            assert store.run_info(d).state == ("skew" if future else "running")
        app = app_for(runs, launch_fn=FakeLauncher())
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one(DataTable)
            await until(pilot, lambda: table.row_count == 2)
            for future, d in dirs.items():
                assert cell(app, d.name, "status") == ("skew" if future else "running")
                table.move_cursor(row=table.get_row_index(d.name))
                await pilot.press("x")
                assert isinstance(app.screen, ConfirmScreen)
                await pilot.press("n")
                assert not (d / "stop").exists()
                await pilot.press("x", "y")
                await until(pilot, lambda: (d / "stop").exists())
            await pilot.press("k")  # the app's stop key: the same path
            await pilot.pause(0.3)
        assert sleeper.poll() is None
        for d in dirs.values():
            assert "not signalled" in store.signal_fallback(store.run_info(d))
        assert sleeper.poll() is None
    finally:
        sleeper.kill()


@pytest.mark.parametrize("pid", [-1, 0, 1, True, "1234", 12.0, 2 ** 40])
def test_a_bad_pid_is_unreadable_or_never_signalled(runs, pid):
    d = make_run(runs, status="running")
    m = store.read_manifest(d)
    m["pid"] = pid
    (d / "run.json").write_text(__import__("json").dumps(m))
    try:
        info = store.run_info(d)
    except store.StoreError as e:
        assert "unreadable: pid" in str(e)
        return
    assert pid == 1 and "not signalled" in store.signal_fallback(info)


async def test_bad_input_does_not_crash(tmp_path, runs):
    app = app_for(tmp_path / "missing", launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "does not exist" in str(app.screen.query_one("#runs-status", Static).render()))
    d = make_run(runs)
    (d / "metrics" / store.seg_name(1000, 1010)).write_bytes(b"not parquet")
    (runs / "junk").mkdir()
    (runs / "junk" / "run.json").write_text("{torn")
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=(60, 16)) as pilot:
        await pilot.pause(0.2)
        assert isinstance(app.screen, TooSmallScreen)
        await pilot.resize_terminal(*SIZE)
        await pilot.pause(0.2)
        assert not isinstance(app.screen, TooSmallScreen)
        await until(pilot, lambda: "unreadable segment" in str(app.screen.query_one("#runs-status", Static).render()))
        assert app.screen.query_one(DataTable).row_count == 1


async def test_quit_leaves_started_runs_running_and_says_so(runs):
    make_run(runs)
    fake = FakeLauncher()
    app = app_for(runs, launch_fn=fake)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
        await pilot.press("f", "q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("l")
    assert "left 1 run(s) started here running" in app.return_value


async def test_quit_dialog_names_the_live_runs_it_will_not_touch(runs):
    make_run(runs)
    make_run(runs, status="running", seed=5, steps=100)  # started elsewhere (another terminal)
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 2)
        await pilot.press("f", "q")
        assert isinstance(app.screen, ConfirmScreen)
        question = str(app.screen.query_one("#confirm-question", Static).render())
        assert "1 run(s) started from here" in question and "1 other live run(s)" in question, question
        await pilot.press("l")


def _stacked(screen) -> list[str]:
    """The screen's children top to bottom, asserting they tile it: full width, each starting where the last ended."""
    kids = list(screen.children)
    assert all(w.region.width == SIZE[0] for w in kids if w.display)
    assert [w.region.y for w in kids] == [0] + [w.region.bottom for w in kids[:-1]]
    assert kids[-1].region.bottom == SIZE[1]
    return [w.id or type(w).__name__ for w in kids]


async def test_screens_layout_at_fixed_size(prepared):
    """Snapshot of structure at 160×48: the runs table's columns and rows, the widgets tiling each screen, the compare
    screen's 2×2 grid over the signal panel, the toggles bar's lines and the help screen's key tables."""
    root, ids = prepared
    app = app_for(root, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 6)
        await pilot.pause(0.1)
        table = app.screen.query_one(DataTable)
        settings = ["init_scale", "max_steps", "train_fraction", "weight_decay"]  # the fields that differ
        assert [str(c.label) for c in table.columns.values()] == [  # one phenomenon: not a column
            " ", "run", "toggles", *settings, "seed", "status", "progress", "metrics", "verdict / error"]
        rows = {r[1]: r for r in ([str(c) for c in table.get_row_at(i)] for i in range(table.row_count))}
        assert rows[ids["wd"]][3:7] == ["1", "400", "0.5", "0"], "weight decay off shows as 0"
        assert rows[ids["failed"]][4] == "30"
        rows = {k: v[:3] + v[7:] for k, v in rows.items()}
        assert list(rows) == [r.id for r in app.snapshot.runs], "in the store's order"
        full, done = "██████████ 100%", "grokked: test ≥95% at step 210"
        expected = {
            "base": [" ", ids["base"], "baseline", "0", "finished", full, "train/acc 1.000  test/acc 1.000",
                     done],
            "base1": [" ", ids["base1"], "baseline", "1", "finished", full,
                      "train/acc 1.000  test/acc 1.000", done],
            "wd": [" ", ids["wd"], "weight_decay", "0", "finished", full, "train/acc 1.000  test/acc 0.010",
                   done],
            "failed": [" ", ids["failed"], "init_scale", "0", "failed", full,
                       "train/acc 0.500  test/acc 0.002", "RuntimeError: boom"],
            "live": [" ", ids["live"], "train_fraction", "3", "running", full,
                     "train/acc 1.000  test/acc 0.924", ""],
        }
        for key, row in expected.items():
            assert rows[ids[key]] == row, key
        assert rows[ids["dead"]][:7] == [" ", ids["dead"], "train_fraction", "0", "dead", full,
                                         "train/acc 1.000  test/acc 0.076"]
        assert "is gone" in rows[ids["dead"]][7]
        assert _stacked(app.screen) == ["runs-status", "runs-table", "runs-detail", "toggles", "Footer"]
        bar = app.screen.query_one("#toggles")
        head, *toggles = str(bar.render()).splitlines()
        # the cursor's run is in focus: the first row, the baseline
        assert head == f"grokking  focus: baseline, seed 0 — run {ids['base']} (finished)"
        assert [t.split()[:4] for t in toggles] == [["w", "weight_decay", "○", "off"],
                                                   ["f", "train_fraction", "○", "off"], ["i", "init_scale", "○", "off"]]
        assert bar.region.height == 1 + 4, "its top border and four lines"

        await pilot.press("c")
        chart = app.screen.query_one("#chart-test-acc", LineChart)
        await until(pilot, lambda: len(chart.series) >= 2)
        await pilot.pause(0.1)
        assert _stacked(app.screen) == ["compare-status", "charts", "signals", "compare-legend", "toggles",
                                           "Footer"]
        assert str(app.screen.query_one("#compare-status", Static).render()).startswith("comparing 3 run(s) · group ")
        grid = {w.title: w.region for w in app.screen.query_one("#charts").children}
        assert list(grid) == ["train/acc", "test/acc", "train/loss", "test/loss"]
        assert grid["train/acc"].y == grid["test/acc"].y < grid["train/loss"].y == grid["test/loss"].y, "two rows"
        assert grid["train/acc"].x == grid["train/loss"].x < grid["test/acc"].x == grid["test/loss"].x, "two columns"
        assert len({(r.width, r.height) for r in grid.values()}) <= 2 and min(r.height for r in grid.values()) >= 6
        for w in (w for w in app.screen.query(LineChart) if w.display):
            assert [s.label for s in w.series] == ["weight decay 1 (2 seeds)", "weight decay 0"], w.title
        assert app.screen.query_one("#chart-signal", LineChart).title == "weight_norm  (1/1, g/G /)"
        svg = app.export_screenshot()
        assert any(0x2801 <= ord(ch) <= 0x28FF for ch in svg), "braille curves drawn"

        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = {title: [(b.key, b.description) for b in bs] for title, bs in app.screen.sections}
        assert [k for k, _ in keys["this screen"]] == [b.key for b in CompareScreen.BINDINGS]
        assert [k for k, _ in keys["everywhere"]] == [b.key for b in PhenomonApp.BINDINGS] + ["w", "f", "i"]
        assert keys["everywhere"][-3][1].startswith("toggle weight_decay")
        svg = app.export_screenshot().replace("&#160;", " ")
        assert "toggle weight_decay" in svg and "More smoothing" in svg, "the key tables are on screen"
