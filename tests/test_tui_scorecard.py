"""The scorecard screen driven by Pilot against runs with planted signals and preregistered hypotheses."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Static

from phenomon import hypotheses, scorecard, store
from tests.test_tui_app import SIZE, FakeLauncher, app_for, until
from tests.test_tui_fixtures import make_scored_run
from phenomon.tui.screens import scorecard as screen_mod
from phenomon.tui.screens.runs import RunsScreen
from phenomon.tui.screens.scorecard import EMPTY, ScorecardScreen


@pytest.fixture
def scored(runs, monkeypatch):
    """Hypotheses registered first (so the runs count for them), then two grokking seeds and the no-wd ablation."""
    runs.mkdir(parents=True)
    # the real list imports torch; these tests need only the names they use
    monkeypatch.setattr(hypotheses, "valid_signal_names", lambda: ["fourier_sparsity", "prime_count", "sharpness"])
    hypotheses.add(runs, "fourier sparsity leads test accuracy", "fourier_sparsity", "grokking", "lead", None)
    hypotheses.add(runs, "the prime count adds to the norm", "prime_count", "grokking", "beyond", None)
    hypotheses.add(runs, "sharpness tracks ticket accuracy", "sharpness", "lottery_ticket", "track", None)
    for seed in range(3):
        make_scored_run(runs, f"base{seed}", seed=seed)
    make_scored_run(runs, "nowd0", toggles=["weight_decay"], wd_on=False)
    return runs


def verdicts(screen) -> dict[str, str]:
    t = screen.query_one("#score-table", DataTable)
    col = screen_mod.COLUMNS.index("verdict")
    return {str(t.get_cell_at((i, 0))): str(t.get_cell_at((i, col))).split(";")[0].split(" (")[0]
            for i in range(t.row_count)}


async def open_scorecard(pilot) -> ScorecardScreen:
    await until(pilot, lambda: pilot.app.snapshot is not None)
    await pilot.press("S")
    screen = pilot.app.screen
    assert isinstance(screen, ScorecardScreen)
    # settled: a card computed for the runs the latest snapshot holds (the first poll may still be listing them)
    await until(pilot, lambda: screen.card is not None and not screen.computing
                and screen._scored == screen._scored_now())
    return screen


async def test_table_shows_verdicts_and_hypotheses(scored):
    app = app_for(scored, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_scorecard(pilot)
        assert verdicts(screen) == {
            "fourier_sparsity": "explains",
            "prime_count": "adds nothing beyond the norm",
            "weight_norm": "the broad baseline",
            "sharpness": "does not track",
            "null/step": "null signal",
            "null/random_walk": "null signal",
        }, "main signals and the nulls; one phenomenon: no duplicate (all) rows"
        t = screen.query_one("#score-table", DataTable)
        row = t.get_row_index("signal/prime_count|grokking")
        assert t.get_cell_at((row, screen_mod.COLUMNS.index("verdict"))).style == "yellow", "the paper's flag"
        partial = str(t.get_cell_at((row, screen_mod.COLUMNS.index("partial|norm"))))
        lo, hi = (float(v) for v in partial.split("[")[1].rstrip("]").split(","))
        assert lo < 0 < hi, "partial given the norm: an interval spanning zero"
        assert str(t.get_cell_at((row, screen_mod.COLUMNS.index("n")))) == "3", "n units"
        t.move_cursor(row=row)
        await pilot.pause()
        detail = str(screen.query_one("#score-detail", Static).render())
        assert "adds nothing beyond the norm (partial" in detail and "(n=3)" in detail, "the full verdict, with n"
        await pilot.press("a")  # every variant
        assert verdicts(screen)["effective_rank/embed"] == "does not track"
        hyp = screen.query_one("#hyp-table", DataTable)
        status = {str(hyp.get_cell_at((i, 2))): str(hyp.get_cell_at((i, 0))) for i in range(hyp.row_count)}
        assert status == {"fourier sparsity leads test accuracy": "supported",
                          "the prime count adds to the norm": "refuted",  # negative results stay visible
                          "sharpness tracks ticket accuracy": "not enough runs"}
        title = str(screen.query_one("#hyp-title", Static).render())
        assert "1 supported" in title and "1 refuted" in title and "1 not enough runs" in title
        svg = app.export_screenshot().replace("&#160;", " ")
        for text in ("Δ-ρ [95%]", "partial|norm", "adds nothing beyond the norm", "refuted", "Scorecard"):
            assert text in svg, text
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


async def test_phenomenon_filter(scored):
    app = app_for(scored, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_scorecard(pilot)
        assert screen.query_one("#score-table", DataTable).row_count == 6
        await pilot.press("p")  # one phenomenon: its rows are the overall rows, so "(all)" is not offered
        assert screen.phenomenon_filter == "grokking" and screen.query_one("#score-table", DataTable).row_count == 6
        await pilot.press("p")
        assert screen.phenomenon_filter == "all"
        assert screen_mod.visible(screen.card.table, "(all)", True).height == 0


async def test_recomputes_when_runs_finish_not_on_every_poll(scored):
    app = app_for(scored, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_scorecard(pilot)
        first = screen.card
        w = make_scored_run(scored, "base3", seed=3, close=False)  # rows arrive, still running
        await until(pilot, lambda: "base3" in (app.snapshot.rows if app.snapshot else {}))
        await pilot.pause()
        assert screen.card is first and not screen.computing, "a poll with new rows does not recompute"
        w.close("finished")
        await until(pilot, lambda: screen.card is not first and not screen.computing)
        assert screen.card.table["units"].max() == 5, "the finished run is scored"
        second = screen.card
        await pilot.press("ctrl+r")  # on demand
        await until(pilot, lambda: screen.card is not second and not screen.computing)


async def test_empty_store_and_errors(runs, monkeypatch):
    w = store.RunWriter(runs / "nosignals", store.new_manifest("nosignals", "grokking"), background=False)
    for step in range(0, 100, 10):
        w.log({"test/acc": step / 100}, step)
    w.close("finished")  # metrics but no signals: nothing to score
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_scorecard(pilot)
        assert EMPTY in str(screen.query_one("#score-status", Static).render())
        assert screen.has_class("-empty") and screen.query_one("#score-table", DataTable).row_count == 0

        def boom(root, problems=None):
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(scorecard, "scorecard", boom)
        await pilot.press("ctrl+r")
        await until(pilot, lambda: not screen.computing)
        assert "RuntimeError: disk on fire" in str(screen.query_one("#score-status", Static).render())
        assert screen.has_class("-error")
        await pilot.press("escape")  # the app keeps working
        assert isinstance(app.screen, RunsScreen) and app.screen.query_one(DataTable).row_count == 1
