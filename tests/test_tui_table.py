"""The runs table fits: columns sized to their content and the terminal, nothing cut when runs finish, the
highlighted run's verdict in full beneath, the swept field and the differing settings as columns."""

from __future__ import annotations

from textual.widgets import DataTable, Static

from phenomon import store
from phenomon.tui.screens.runs import setting_columns, widths
from tests.test_tui_app import SIZE, FakeLauncher, app_for, until
from tests.test_tui_fixtures import make_run

LONG = ("memorised at step 120, grokked at step 700: test accuracy stayed at or above 95% for the last 200 steps "
        "and the weight norm fell by 40% after memorisation")


def _width(table: DataTable, key: str) -> int:
    return next(c.width for k, c in table.columns.items() if k.value == key)


async def test_status_and_verdict_are_not_cut_when_a_run_finishes(runs):
    make_run(runs)
    live = make_run(runs, seed=1, status="running")
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 2)
        w = store.RunWriter(live, store.read_manifest(live), background=False)
        w.close("finished", None, verdict=LONG)
        await until(pilot, lambda: str(table.get_cell(live.name, "status")) == "finished")
        await pilot.pause(0.1)
        assert _width(table, "status") >= len("finished")
        verdict_w = _width(table, "verdict / error")
        used = sum(c.width + 2 for c in table.columns.values())
        assert used <= SIZE[0], "the table fits the terminal"
        assert verdict_w >= 40
        table.move_cursor(row=table.get_row_index(live.name))
        await pilot.pause(0.1)
        detail = str(app.screen.query_one("#runs-detail", Static).render())
        assert LONG in detail.replace("\n", " ") or LONG.replace(" ", "") in detail.replace("\n", "").replace(" ", "")


async def test_columns_shrink_the_verdict_at_80_columns(runs):
    make_run(runs)
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 1)
        await pilot.pause(0.1)
        assert "phenomenon" not in [k.value for k in table.columns], "one phenomenon: no column for it"
        assert _width(table, "metrics") <= 16 and _width(table, "verdict / error") >= 16
        assert "grokked" in str(app.screen.query_one("#runs-detail", Static).render())


def test_setting_columns_are_the_swept_field_and_what_differs(runs):
    a = make_run(runs, sets={"lr": 1e-3})
    b = make_run(runs, sets={"lr": 3e-3}, seed=1)
    infos = store.list_runs(runs)
    assert {a.name, b.name} == {r.id for r in infos}
    assert setting_columns(infos) == ["lr"], "seed has its own column; equal fields are not shown"
    cols = ["sel", "run", "set:lr", "status", "verdict / error"]
    rows = [(" ", "grokking-1", "0.001", "finished", "x" * 200)]
    w = widths(cols, rows, 100)
    assert w[3] >= len("finished") and w[-1] == 100 - sum(w[:-1]) - 2 * len(cols) - 2


async def test_a_killed_run_gets_no_verdict(runs):
    make_run(runs, status="killed", steps=100)
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 1)
        rid = table.get_row_at(0)[1]
        assert str(table.get_cell(rid, "verdict / error")) == "killed at step 100 of 100: no verdict"


def test_reconcile_reaps_children_that_exited(runs):
    import subprocess
    import sys
    import time

    from phenomon.tui.launches import Launches

    procs = []

    def launch(spec, log_dir):
        procs.append(subprocess.Popen([sys.executable, "-c", "pass"]))
        return procs[-1]

    from phenomon import registry
    ph = registry.get("grokking")
    ls = Launches(runs, launch)
    ls.request(ph, ph.defaults(), ())
    end = time.monotonic() + 20
    while procs[0].returncode is None and time.monotonic() < end:
        ls.reconcile(())
        time.sleep(0.05)
    assert procs[0].returncode == 0, "reaped: no zombie left behind"


async def test_visiting_the_runs_screen_keeps_the_focused_configuration(runs):
    make_run(runs)
    make_run(runs, toggles=("weight_decay",), grok_at=None)
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 2)
        await pilot.press("c")
        await pilot.pause(0.1)
        await pilot.press("w")  # the paired run exists: it is focused
        assert app.focus_cfg.weight_decay == 0.0
        await pilot.press("r")
        await pilot.pause(0.3)
        assert app.focus_cfg.weight_decay == 0.0, "going back to the table did not move the focus"
        await pilot.press("down")  # moving the cursor does
        await pilot.pause(0.1)
        table.move_cursor(row=0)
        await pilot.pause(0.1)
        assert app.focus_cfg.weight_decay != 0.0


async def test_a_rebuilt_table_keeps_the_focused_configuration(runs):
    make_run(runs)
    live = make_run(runs, toggles=("weight_decay",), grok_at=None, status="running")
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 2)
        await pilot.pause(0.1)
        await pilot.press("w")  # the paired run exists: focused, the cursor stays on the baseline
        assert app.focus_cfg.weight_decay == 0.0
        w = store.RunWriter(live, store.read_manifest(live), background=False)
        w.close("finished", None, verdict=LONG)  # a wider verdict: the table is rebuilt, the cursor restored
        await until(pilot, lambda: str(table.get_cell(live.name, "status")) == "finished")
        await pilot.pause(0.2)
        assert app.focus_cfg.weight_decay == 0.0


def test_setting_columns_are_judged_within_each_phenomenon(runs):
    """Across phenomena every field differs; a column is a setting that differs among one phenomenon's runs."""
    for rid, ph, cfg in (("g0", "grokking", {"lr": 1e-3, "p": 97, "seed": 0}),
                         ("g1", "grokking", {"lr": 1e-3, "p": 97, "seed": 1}),
                         ("d0", "double_descent", {"width": 16, "epochs": 500, "seed": 0}),
                         ("d1", "double_descent", {"width": 32, "epochs": 500, "seed": 0})):
        store.RunWriter(runs / rid, store.new_manifest(rid, ph, config=cfg), background=False).close("finished")
    assert setting_columns(store.list_runs(runs)) == ["width"], "the swept field only: nothing else differs within"
