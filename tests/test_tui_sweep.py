"""The compare screen on a phenomenon plotted against a sweep field: one point per run, seeds pooled per width."""

from __future__ import annotations

from textual.widgets import DataTable, Static

from phenomon import store
from phenomon.store.axis import ConfigField
from phenomon.tui import frames
from phenomon.tui.screens.compare import CompareScreen
from phenomon.tui.watcher import StoreWatcher
from phenomon.tui.widgets.chart import LineChart
from tests.test_tui_app import SIZE, FakeLauncher, app_for, until

WIDTHS = (8, 16, 32)


def _sweep(root, *, toggles=(), seeds=(0, 1)) -> list[str]:
    """Finished double-descent runs, one per width and seed; test error peaks at width 16."""
    ids = []
    for width in WIDTHS:
        for seed in seeds:
            rid = f"dd-{'-'.join(toggles) or 'base'}-w{width}-s{seed}"
            m = store.new_manifest(rid, "double_descent", config={"width": width, "seed": seed}, seed=seed,
                                   toggles=list(toggles), group="double_descent-g")
            w = store.RunWriter(root / rid, m, background=False)
            err = (0.5 if width == 16 else 0.2) + 0.01 * seed - (0.1 if toggles else 0.0)
            for step in (10, 20):
                w.log({"test/error": err + (0.3 if step == 10 else 0.0), "train/acc": 1.0}, step)
            w.close("finished")
            ids.append(rid)
    return ids


def test_sweep_series_pool_seeds_per_width(runs):
    _sweep(runs)
    _sweep(runs, toggles=("weight_decay",), seeds=(0,))
    snap = StoreWatcher(runs).poll()
    series = frames.sweep_series(dict(snap.frames), {r.id: r.manifest for r in snap.runs}, "test/error",
                                 ConfigField("width"))
    assert [s.label for s in series] == ["baseline", "weight_decay"]
    base, wd = series
    assert base.x.tolist() == [8.0, 16.0, 32.0]
    assert base.y.round(3).tolist() == [0.205, 0.505, 0.205]  # the last value of each run, mean over 2 seeds
    assert base.lo.round(3).tolist() == [0.2, 0.5, 0.2] and base.hi.round(3).tolist() == [0.21, 0.51, 0.21]
    assert wd.lo is None and wd.y.round(3).tolist() == [0.1, 0.4, 0.1]


async def test_compare_screen_plots_a_sweep_against_its_field(runs):
    ids = _sweep(runs)
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == len(ids))
        table = app.screen.query_one(DataTable)
        for rid in ids:
            table.move_cursor(row=table.get_row_index(rid))
            await pilot.press("space")
        await pilot.press("c")
        assert isinstance(app.screen, CompareScreen)
        chart = app.screen.query_one("#chart-train-acc", LineChart)
        await until(pilot, lambda: len(chart.series) == 1)
        assert chart.title == "train/acc vs width" and chart.series[0].x.tolist() == [8.0, 16.0, 32.0]
        status = str(app.screen.query_one("#compare-status", Static).render())
        assert "x: width" in status
