"""What a researcher does on the compare and runs screens: landmarks and verdicts on the chart, hiding one of many
configurations, telling 20 apart, finding a metric by name, several signal panels, the x axis, sorting the table."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from textual.widgets import DataTable, Input, OptionList, Static

from phenomon import store
from phenomon.tui import frames, landmarks
from phenomon.tui.screens.compare import CompareScreen
from phenomon.tui.screens.picker import MetricPicker
from phenomon.tui.watcher import StoreWatcher
from phenomon.tui.widgets.chart import GLYPHS, LineChart, style_of_index
from tests.test_tui_app import SIZE, FakeLauncher, app_for, until
from tests.test_tui_fixtures import make_run
from tests.test_tui_sweep import _sweep


def _status(app) -> str:
    return str(app.screen.query_one("#compare-status", Static).render())


def _legend(app) -> str:
    return str(app.screen.query_one("#compare-legend").render())


async def _compare_all(pilot, n: int) -> CompareScreen:
    app = pilot.app
    await until(pilot, lambda: app.screen.query_one(DataTable).row_count == n)
    table = app.screen.query_one(DataTable)
    for i in range(n):
        table.move_cursor(row=i)
        await pilot.press("space")
    await pilot.press("c")
    screen = app.screen
    assert isinstance(screen, CompareScreen)
    await until(pilot, lambda: any(c.series for c in screen.query(LineChart) if c.display) and not screen._busy
                and screen._landmarks.verdicts is not None)
    return screen


def test_grokking_landmarks_are_each_configurations_criterion(runs):
    """m at the first step train acc ≥ 99%, g at test acc ≥ 95%: the median over seeds, with n and range stated."""
    ids = [make_run(runs, seed=0).name, make_run(runs, seed=1, grok_at=170).name,
           make_run(runs, toggles=("weight_decay",), grok_at=None).name]
    snap = StoreWatcher(runs).poll()
    manifests = {r.id: r.manifest for r in snap.runs}
    lm = landmarks.for_runs(dict(snap.frames), manifests)
    base, wd = store.config_key(manifests[ids[0]]), store.config_key(manifests[ids[2]])
    marks = {(m.key, m.tag): m.x for m in lm.markers}
    # train = step/60 reaches 0.99 at step 60; test = sigmoid((step - 150)/20) ≥ 0.95 at 210, at 230 for seed 1
    assert marks == {(base, "m"): 60.0, (base, "g"): 220.0, (wd, "m"): 60.0}
    assert "grokked in 2 of 2 seeds" in lm.verdicts[base] and "at 210–230 (median 220)" in lm.verdicts[base]
    assert "no grokking" in lm.verdicts[wd]  # one seed: the criterion's own line


def test_live_runs_are_judged_again_in_their_turn_and_an_ended_run_at_once(runs, monkeypatch):
    """A criterion reads every row of a run, so live runs are judged again only when their turn comes (their last
    judgement's cost over the duty share of a core), not on every refresh; a run that ended is judged on its final
    rows at once. The CPU spent judging then stays flat however long the runs get."""
    rid = make_run(runs, seed=0).name
    snap = StoreWatcher(runs).poll()
    fr, manifests = dict(snap.frames), {r.id: r.manifest for r in snap.runs}
    calls = []
    real = landmarks._wide

    def counted(run, names):
        calls.append(names)
        return real(run, names)

    monkeypatch.setattr(landmarks, "_wide", counted)  # what each judgement reads: all of the run's rows
    judged = landmarks.Judged(min_wait=60.0)
    landmarks.for_runs(fr, manifests, cache=judged, live={rid})
    assert len(calls) == 1
    grown = {rid: {k: (f.vstack(f.tail(1).with_columns(step=pl.col("step") + 1)) if k != "~wall" else f)
                   for k, f in fr[rid].items()}}
    lm = landmarks.for_runs(grown, manifests, cache=judged, live={rid})
    assert len(calls) == 1, "new rows of a live run before its turn: the kept verdict stands"
    assert lm.verdicts
    landmarks.for_runs(grown, manifests, cache=judged, live=set())
    assert len(calls) == 2, "the run ended: judged on its final rows at once"
    landmarks.for_runs(grown, manifests, cache=judged, live=set())
    assert len(calls) == 2, "no new rows: not judged again"
    judged.due[rid] = 0.0
    landmarks.for_runs({rid: fr[rid]}, manifests, cache=judged, live={rid})
    assert len(calls) == 3, "its turn came: judged again"


def _dd_sweep(runs) -> None:
    _sweep(runs)  # train acc 1.0 everywhere; test error peaks at width 16
    for d in runs.iterdir():  # give the sweep a train error that reaches 0 at width 16
        m = store.read_manifest(d)
        w = store.RunWriter(d, m, background=False)
        width = m["config"]["width"]
        w.log({"train/error": 0.3 if width == 8 else 0.0}, 30)
        w.close("finished")


def test_double_descent_threshold_and_peak_from_judge(runs):
    _dd_sweep(runs)
    snap = StoreWatcher(runs).poll()
    lm = landmarks.for_runs(dict(snap.frames), {r.id: r.manifest for r in snap.runs})
    assert {(m.key, m.tag, m.x) for m in lm.markers} == {("baseline", "T", 16.0), ("baseline", "P", 16.0)}
    assert lm.verdicts["baseline"].startswith("double descent: peak test error 0.505 ± 0.007 at width 16")
    assert "2 seeds" in lm.verdicts["baseline"]


async def test_compare_draws_landmarks_and_the_focused_verdict(runs):
    make_run(runs)
    make_run(runs, toggles=("weight_decay",), grok_at=None)
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        screen = await _compare_all(pilot, 2)
        chart = screen.query_one("#chart-test-acc", LineChart)
        await until(pilot, lambda: len(chart.markers) == 3)
        assert "▸ weight decay 1: grokked: train ≥99% at step 60, test ≥95% at step 210" in _status(app)
        svg = app.export_screenshot()
        assert "┊" in svg and "m train ≥99% · g test ≥95%" in _legend(app)
        await pilot.press("full_stop")  # focus the next configuration: its verdict replaces the first's
        await until(pilot, lambda: "▸ weight decay 0: memorised at step 60, test never ≥95%" in _status(app))
        await until(pilot, lambda: app.focus_cfg.weight_decay == 0.0)  # the toggle keys now act on it


async def test_hide_and_show_one_configuration(runs):
    make_run(runs)
    make_run(runs, toggles=("weight_decay",), grok_at=None)
    make_run(runs, toggles=("init_scale",))
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        screen = await _compare_all(pilot, 3)
        chart = screen.query_one("#chart-test-acc", LineChart)
        first = chart.series[0].key
        await pilot.press("h")  # the focused (first) configuration
        assert first in chart.hidden and [s.key for s in chart.visible()] == [s.key for s in chart.series[1:]]
        assert "(hidden)" in _legend(app) and "(hidden)" in "".join(s.text for s in chart._legend(400))
        assert not any(m.key == first for m in chart.markers if m.key in {s.key for s in chart.visible()})
        await pilot.press("full_stop", "h")  # a second one
        assert len(chart.visible()) == 1 and _legend(app).count("(hidden)") == 2
        await pilot.press("H")
        assert len(chart.visible()) == 3 and "(hidden)" not in _legend(app)


async def test_twenty_configurations_tell_apart():
    pairs = {style_of_index(i) for i in range(20)}
    assert len(pairs) == 20, "10 colours × 2 line styles"
    x = np.arange(1, 101, dtype=float)
    chart = LineChart("test/acc")
    chart.series = tuple(frames.Series(f"lr {i}", x, np.full(100, 0.5), color=i, key=str(i)) for i in (0, 10))
    lim = (0.0, 2.0, 0.0, 1.0)
    solid, dashed = (chart._raster(s, lim, 30, 4)[0] for s in chart.series)
    assert solid.any(axis=0).sum() == 60 and 0 < dashed.any(axis=0).sum() < 60, "the second ten are dashed"
    text = "".join(s.text for s in chart._legend(400))
    assert f"{GLYPHS[0]} lr 0" in text and f"{GLYPHS[1]} lr 10" in text


def test_many_configurations_show_the_focused_ones_landmarks_only():
    x = np.arange(1, 101, dtype=float)
    series = tuple(frames.Series(f"lr {i}", x, np.full(100, 0.1 * i), color=i, key=str(i)) for i in range(6))
    marks = tuple(landmarks.Marker(10.0 * (i + 1), str(i), i, "g") for i in range(6))
    chart = LineChart("acc")
    chart.series, chart.markers = series[:4], marks[:4]
    assert [m.key for m in chart.shown_markers()] == ["0", "1", "2", "3"], "four: each one's landmarks"
    chart.series, chart.markers, chart.focus_key = series, marks, "2"
    assert [m.key for m in chart.shown_markers()] == ["2"], "six: only the focused one's"
    chart.hidden = frozenset({"0", "1"})
    assert [m.key for m in chart.shown_markers()] == ["2", "3", "4", "5"], "hiding two brings the others back"
    chart.hidden = frozenset({"2", "3", "4", "5"})
    assert [m.key for m in chart.shown_markers()] == ["0", "1"], "hidden ones' landmarks hide with them"


def _many_metrics(root, n_sig: int = 6) -> None:
    m = store.new_manifest("other-run", "custom", config={"lr": 0.1})
    w = store.RunWriter(root / "other-run", m, background=False)
    for step in range(10, 210, 10):
        w.log({"train/acc": step / 200, "test/acc": step / 250, "train/loss": 1 - step / 200,
               "test/loss": 1 - step / 250, **{f"signal/s{i}": step * (i + 1.0) for i in range(n_sig)},
               "signal/weight_norm": 40 - step / 10}, step)
    w.close("finished")


async def test_metric_picker_filters_moves_and_shows_position(runs):
    _many_metrics(runs)
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        screen = await _compare_all(pilot, 1)
        total = len(screen._signals)
        assert total == 7
        await pilot.press("slash")
        picker = app.screen
        assert isinstance(picker, MetricPicker)
        title = lambda: str(picker.query_one("#picker-title", Static).render())  # noqa: E731
        assert title().startswith(f"metric 1/{total}")
        await pilot.press("down", "down")
        assert title().startswith(f"metric 3/{total}")
        await pilot.press("up")
        assert title().startswith(f"metric 2/{total}")
        await pilot.press(*"norm")
        assert picker.shown == ["signal/weight_norm"] and title().startswith(f"metric 1/1 of {total}")
        await pilot.press("enter")
        assert app.screen is screen
        sig = screen.query_one("#chart-signal", LineChart)
        await until(pilot, lambda: sig.title.startswith("signal/weight_norm"))
        assert f"({total}/{total}, g/G /)" in sig.title  # the picker's choice is where g/G go on from
        await pilot.press("g")
        await until(pilot, lambda: sig.title.startswith("signal/s0") and f"(1/{total}" in sig.title)
        await pilot.press("G")
        await until(pilot, lambda: sig.title.startswith("signal/weight_norm"))
        await pilot.press("slash", *"nothing-like-this")
        assert app.screen.shown == [] and "0/0" in str(app.screen.query_one("#picker-title", Static).render())
        await pilot.press("escape")
        assert app.screen is screen and sig.title.startswith("signal/weight_norm")


async def test_several_signal_panels_at_once(runs):
    _many_metrics(runs)
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        screen = await _compare_all(pilot, 1)
        shown = lambda: [c.title.split()[0] for c in screen.query(".signal") if c.display]  # noqa: E731
        assert shown() == ["signal/s0"]
        await pilot.press("plus")
        await until(pilot, lambda: shown() == ["signal/s0", "signal/s1"])
        await pilot.press("plus", "plus")  # three at most
        await until(pilot, lambda: shown() == ["signal/s0", "signal/s1", "signal/s2"])
        widths = {c.size.width for c in screen.query(".signal") if c.display}
        assert max(widths) - min(widths) <= 1 and min(widths) >= 45, "side by side, each a third"
        await pilot.press("minus")
        await until(pilot, lambda: shown() == ["signal/s0", "signal/s1"])


async def test_x_axis_cycles_between_the_sweep_field_and_steps(runs):
    _dd_sweep(runs)
    ids = [d.name for d in runs.iterdir()]
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        screen = await _compare_all(pilot, len(ids))
        chart = screen.query_one("#chart-train-acc", LineChart)
        assert chart.title == "train/acc vs width" and "x: width" in _status(app)
        await pilot.press("X")
        await until(pilot, lambda: chart.title == "train/acc" and "x: step" in _status(app))
        assert len(chart.series) == len(ids) // 2, "over steps: one curve per width, seeds pooled"
        assert chart.series[0].x.tolist() == [10.0, 20.0]
        assert "▸ width 8 (2 seeds): double descent: peak" in _status(app), "a width shows its sweep's verdict"
        await pilot.press("X")  # wall time: seconds since each run's first row, the mean over its seeds
        await until(pilot, lambda: chart.title == "train/acc vs wall time (s)" and "x: wall time (s)" in _status(app))
        xs = [s.x for s in chart.series]
        assert len(xs) == len(ids) // 2 and all(x[0] == 0.0 and (np.diff(x) >= 0).all() and x[-1] < 60 for x in xs)
        await pilot.press("X")
        await until(pilot, lambda: chart.title == "train/acc vs width")


def test_wall_time_is_the_mean_of_the_seeds_seconds_at_each_step():
    import polars as pl

    from phenomon.tui import wall
    from phenomon.tui.watcher import CLOCK

    def clock(steps, secs):
        return {CLOCK: pl.DataFrame({"step": steps, "value": [1000.0 + t for t in secs], "round": [None] * len(steps)},
                                    schema={"step": pl.Int64, "value": pl.Float64, "round": pl.Int64})}

    fr = {"a": clock([10, 20, 30], [0, 1, 2]), "b": clock([10, 20], [0, 3])}
    manifests = {"a": {"config": {"lr": 1}, "seed": 0}, "b": {"config": {"lr": 1, "seed": 1}, "seed": 1}}
    key = store.config_key(manifests["a"])
    s = frames.Series("x", np.array([10.0, 20.0, 30.0]), np.array([0.1, 0.2, 0.3]), key=key)
    (out,) = wall.over_wall_time([s], fr, manifests)
    assert out.x.tolist() == [0.0, 2.0, 2.0]  # (1 + 3) / 2 at step 20 and out.y.tolist() == [0.1, 0.2, 0.3]  # step 30: seed a alone


async def test_runs_table_sorts_by_a_column_and_stays_sorted_live(runs):
    make_run(runs, sets={"lr": 0.01})
    make_run(runs, sets={"lr": 0.001})
    live = make_run(runs, sets={"lr": 0.003}, status="running", steps=100)
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 3)
        lr = lambda: [str(table.get_row_at(i)[list(table.columns).index(  # noqa: E731
            next(k for k in table.columns if k.value == "set:lr"))]) for i in range(table.row_count)]
        assert lr() == ["0.01", "0.001", "0.003"], "the store's order"
        await pilot.pause(0.5)  # column widths settle after the rows land: the click aims at the lr header
        await pilot.click(DataTable, offset=(sum(c.get_render_width(table) for c in list(table.columns.values())[:3])
                                             + 2, 0))
        await until(pilot, lambda: lr() == ["0.001", "0.003", "0.01"])
        status = str(app.screen.query_one("#runs-status", Static).render())
        assert "sorted by lr ↑ (O)" in status
        w = store.RunWriter(live, store.read_manifest(live), background=False)  # rows stream in: order stays
        w.log({"test/acc": 0.5}, 110)
        w.flush()
        await pilot.pause(0.5)
        assert lr() == ["0.001", "0.003", "0.01"]
        await pilot.click(DataTable, offset=(sum(c.get_render_width(table) for c in list(table.columns.values())[:3])
                                             + 2, 0))
        await until(pilot, lambda: lr() == ["0.01", "0.003", "0.001"])
        await pilot.press("O")  # the next column
        await until(pilot, lambda: "sorted by max_steps ↑" in str(app.screen.query_one("#runs-status", Static)
                                                                      .render()))


async def test_detail_screen_follows_the_run_live(runs):
    from phenomon.tui.screens.detail import DetailScreen

    d = make_run(runs, status="running", steps=100)
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        text = lambda: str(app.screen.query_one("#detail-text", Static).render())  # noqa: E731
        assert "status  running" in text()
        w = store.RunWriter(d, store.read_manifest(d), background=False)
        w.update(progress={"step": 150, "max_steps": 400})
        w.close("finished", None, verdict="grokked: test ≥95% at step 150")
        await until(pilot, lambda: "status  finished" in text() and "grokked: test ≥95% at step 150" in text())
        assert "progress 150/400" in text()


async def test_compare_with_nothing_selected_says_so(runs):
    runs.mkdir(parents=True)
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot is not None)
        app.get_screen("compare").run_ids = ()
        await pilot.press("v")
        chart = app.screen.query_one("#chart-test-acc", LineChart)
        await until(pilot, lambda: chart.display and chart.empty_text == "no runs selected")
        assert "no runs selected" in app.export_screenshot().replace("&#160;", " ")


def _lottery_run(root, rid: str, accs: list[float]) -> None:
    from phenomon import registry
    from phenomon.config import to_dict

    cfg = to_dict(registry.get("lottery_ticket").defaults())
    w = store.RunWriter(root / rid, store.new_manifest(rid, "lottery_ticket", config=cfg, config_hash=rid,
                                                       group="lt", seed=0), background=False)
    for r, acc in enumerate(accs):
        w.set_round(r)
        w.log({"weights_remaining": 0.8 ** r, "round/test_acc": acc, "round/early_stop_step": 10.0,
               "time/step_ms": 1.0}, 100 * (r + 1))
    w.close("finished")


def test_lottery_landmark_is_the_sparsest_matching_round(runs):
    _lottery_run(runs, "lt-a", [0.90, 0.905, 0.90, 0.895, 0.85])
    snap = StoreWatcher(runs).poll()
    lm = landmarks.for_runs(dict(snap.frames), {r.id: r.manifest for r in snap.runs})
    (m,) = lm.markers
    assert m.tag == "★" and m.x == pytest.approx(0.8 ** 3)  # 0.895 is within 1 pt of 0.90; 0.85 is not
    assert "down to 51.2% of weights" in next(iter(lm.verdicts.values()))


def test_landmarks_of_every_phenomenon_never_import_torch(tmp_path):
    """The criteria run inside the monitor: judging grokking, double descent and lottery runs pulls in no torch."""
    import subprocess
    import sys

    make_run(tmp_path / "g")
    _dd_sweep(tmp_path / "d")
    _lottery_run(tmp_path / "l", "lt-a", [0.9, 0.9, 0.8])
    code = f"""
import sys
from pathlib import Path
from phenomon.tui import landmarks
from phenomon.tui.watcher import StoreWatcher
for d in ("g", "d", "l"):
    snap = StoreWatcher(Path({str(tmp_path)!r}) / d).poll()
    lm = landmarks.for_runs(dict(snap.frames), {{r.id: r.manifest for r in snap.runs}})
    assert lm.verdicts, d
print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "pytorch_lightning", "lightning")))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
