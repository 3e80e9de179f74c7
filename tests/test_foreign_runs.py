"""Runs of anyone's Lightning code are first-class in `phenomon ls` and `show`: progress, their own metrics."""

from __future__ import annotations

from phenomon import store
from phenomon.cli import main


def _foreign(runs, rid: str, phenomenon: str = "clf", **fields) -> None:
    m = store.new_manifest(rid, phenomenon, foreign=True, progress={"step": 30, "max_steps": 120},
                           config={"optim": {"name": "sgd", "lr": 0.1}, "hidden": 8}, **fields)
    w = store.RunWriter(runs / rid, m, background=False)
    w.log({"signal/effective_rank": 3.0, "null/step": 30.0, "train_loss_step": 0.51, "val_loss": 0.42,
           "train_acc_epoch": 0.81, "epoch": 1.0}, step=30)
    w.close("failed", "RuntimeError: boom", traceback="Traceback (most recent call last):\n  ...\nRuntimeError: boom")


def test_ls_shows_a_foreign_runs_progress_and_own_metrics(runs, capsys):
    _foreign(runs, "clf-1")
    _foreign(runs, "other-1", phenomenon="other")
    assert main(["ls", "--runs", str(runs), "--phenomenon", "clf"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert row.split()[:5] == ["clf-1", "clf", "-", "failed", "30/120"]
    assert "val_loss=0.420 train_loss_step=0.510 train_acc_epoch=0.810" in row and "signal/" not in row


def test_ls_phenomenon_neither_present_nor_registered_is_a_usage_error(runs, capsys):
    _foreign(runs, "clf-1")
    assert main(["ls", "--runs", str(runs), "--phenomenon", "nope"]) == 2
    assert "phenomena with runs: clf" in capsys.readouterr().err
    assert main(["ls", "--runs", str(runs), "--phenomenon", "grokking"]) == 0, "registered, no runs yet"
    assert "no runs" in capsys.readouterr().out


def test_ls_in_a_directory_without_runs_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PHENOMON_RUNS", raising=False)
    assert main(["ls"]) == 0
    assert "no runs" in capsys.readouterr().out


def test_show_prints_the_error_and_the_end_of_the_traceback(runs, capsys):
    _foreign(runs, "clf-1")
    assert main(["show", "clf-1", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "status     failed: RuntimeError: boom" in out and "traceback  Traceback" in out
    assert 'hidden=8  optim={"lr": 0.1, "name": "sgd"}' in out and "progress   30/120" in out


async def test_the_monitor_shows_a_foreign_runs_own_metrics_and_no_toggles(runs):
    from phenomon.tui.screens.compare import CompareScreen
    from phenomon.tui.widgets.chart import LineChart
    from tests.test_tui_app import SIZE, FakeLauncher, app_for, until

    _foreign(runs, "clf-1")
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot is not None and app.snapshot.runs)
        assert app.focus_ph is None, "no phenomenon's toggles for a directory of other people's runs"
        await pilot.press("c")
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await until(pilot, lambda: any(c.series for c in screen.query(LineChart)))
        await pilot.pause(0.2)
        shown = {c.title for c in screen.query(LineChart) if c.display and c.id != "chart-signal"}
        assert shown == {"train_acc_epoch", "train_loss_step", "val_loss"}, "its own metrics, as logged"
        assert not any(t.startswith(("train/", "test/")) for t in shown)


def test_the_metric_picker_puts_the_models_metrics_before_signals_and_nulls():
    from phenomon.tui.screens.compare import CompareScreen

    names = {"train_loss": 1, "val_loss": 1, "train_acc": 1, "val_acc": 1, "val_f1": 1, "lr_probe": 1,
             "signal/weight_norm": 1, "null/step": 1, "epoch": 1, "time/step_ms": 1}
    got = CompareScreen().signal_names({"r": names}, {"r": {"phenomenon": "clf"}})
    assert got == ["lr_probe", "val_f1", "signal/weight_norm", "null/step", "epoch", "time/step_ms"], got
