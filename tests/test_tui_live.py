"""End to end: the monitor on a tiny live grokking run started through the CLI's launcher."""

from __future__ import annotations


from phenomon.launcher import RunSpec, launch
from tests.test_tui_app import SIZE, until
from phenomon.tui.app import PhenomonApp
from phenomon.tui.widgets.chart import LineChart


async def test_monitor_sees_a_live_run_grow(runs):
    # a run far longer than the test: it must still be writing when the chart first draws (it is stopped below)
    spec = RunSpec("grokking", sets=("p=23", "hidden=32", "d_embed=8", "eval_every=10"), max_steps=1_000_000,
                   accelerator="cpu", root=runs)
    proc = launch(spec, runs / ".logs")
    try:
        app = PhenomonApp(runs, poll_s=0.2)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.snapshot is not None and len(app.snapshot.runs) == 1, timeout=60)
            await pilot.press("c")
            chart = app.screen.query_one("#chart-test-acc", LineChart)
            await until(pilot, lambda: chart.series and len(chart.series[0].x) >= 1, timeout=60)
            first = len(chart.series[0].x)
            await until(pilot, lambda: len(chart.series[0].x) > first, timeout=60)
            assert app.snapshot.runs[0].state == "running"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
