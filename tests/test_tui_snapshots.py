"""SVG snapshots of the main screens (runs table, compare, help, scorecard) at 80×24 and 160×48 against stored ones.

Deterministic by construction: finished, failed and killed runs written by the store's writer from closed-form curves
(no live process, no clock on screen), a relative runs path, the scorecard's computation time fixed. Regenerate with
`pytest tests/test_tui_snapshots.py --snapshot-update` and review the SVGs (tests/snapshot.py says how a mismatch
is reported)."""

from __future__ import annotations

import dataclasses
import types
from pathlib import Path

import pytest
from textual.widgets import DataTable

from phenomon import store
from phenomon.tui.screens import scorecard as score_mod
from phenomon.tui.screens.compare import CompareScreen
from phenomon.tui.screens.help import HelpScreen
from phenomon.tui.screens.scorecard import ScorecardScreen
from phenomon.tui.widgets.chart import LineChart
from tests.snapshot import assert_snapshot, screen_text
from tests.test_tui_app import FakeLauncher, app_for, until
from tests.test_tui_fixtures import make_run, make_scored_run

SIZES = {"80x24": (80, 24), "160x48": (160, 48)}


@pytest.fixture
def fixed_runs(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)  # the status line shows the runs path: a relative one is the same on every machine
    root = Path("runs")
    make_run(root)
    make_run(root, seed=1, grok_at=170)
    make_run(root, toggles=("weight_decay",), grok_at=None)
    make_run(root, toggles=("init_scale",), status="killed", steps=200)
    make_run(root, toggles=("train_fraction",), status="failed", error="RuntimeError: boom", steps=30)
    return root


async def settled_compare(pilot) -> CompareScreen:
    screen = pilot.app.screen
    assert isinstance(screen, CompareScreen)
    await until(pilot, lambda: all(c.series for c in screen.query(LineChart) if c.display)
                and not screen._busy and screen._landmarks.verdicts)
    await pilot.pause(0.2)
    return screen


@pytest.mark.parametrize("size", SIZES)
async def test_main_screens_match_snapshots(fixed_runs, size, snapshot_update):
    app = app_for(fixed_runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZES[size]) as pilot:
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 5)
        await pilot.pause(0.2)
        shots = {"runs": app.export_screenshot()}
        await pilot.press("c")
        screen = await settled_compare(pilot)
        shots["compare"] = app.export_screenshot()
        text = "\n".join(screen_text(shots["compare"]))
        assert "grokked" in text, "the focused configuration's verdict is on the status line"
        if size == "80x24":  # fewer, taller panels: the two test panels only, each with room to read
            shown = [c for c in screen.query(LineChart) if c.display]
            assert [c.title for c in shown] == ["test/acc", "test/loss"] and min(c.size.height for c in shown) >= 10
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.pause(0.1)
        shots["help"] = app.export_screenshot()
        await pilot.press("escape")
        for name, svg in shots.items():
            assert_snapshot(svg, f"{name}-{size}", snapshot_update)


@pytest.mark.parametrize("size", SIZES)
async def test_scorecard_matches_snapshot(tmp_path, monkeypatch, size, snapshot_update):
    monkeypatch.chdir(tmp_path)
    root = Path("runs")
    for seed in range(3):
        make_scored_run(root, f"base{seed}", seed=seed)
    make_scored_run(root, "nowd0", toggles=["weight_decay"], wd_on=False)
    app = app_for(root, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZES[size]) as pilot:
        await until(pilot, lambda: app.snapshot is not None and len(app.snapshot.runs) == 4)
        await pilot.press("S")
        screen = app.screen
        assert isinstance(screen, ScorecardScreen)
        await until(pilot, lambda: screen.card is not None and not screen.computing
                    and screen._scored == screen._scored_now(), timeout=60)
        # the status line says when and how fast it was computed: fixed here, the table is what is compared
        monkeypatch.setattr(score_mod, "time", types.SimpleNamespace(strftime=lambda *a: "12:00:00",
                                                                     localtime=lambda *a: None))
        screen.card = dataclasses.replace(screen.card, seconds=1.0)
        await pilot.pause(0.2)
        svg = app.export_screenshot()
        assert "fourier_sparsity" in svg
        assert_snapshot(svg, f"scorecard-{size}", snapshot_update)
