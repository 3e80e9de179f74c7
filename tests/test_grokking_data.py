"""Grokking as data grows: the delay on hand-made frames (known answers, undefined stays undefined), the sweep's
verdict, the stop-when-generalised callback, a tiny real run, and bad input."""

from __future__ import annotations

import polars as pl
import pytest
import pytorch_lightning as L

from phenomon import cli, registry, runner, store
from phenomon.phenomena import delay

GD = registry.get("grokking_data")


def _run_rows(run: str, frac: float, seed: int, steps, train, test, toggles: str = "") -> pl.DataFrame:
    return pl.DataFrame({"run": run, "toggles": toggles, "seed": seed, "train_fraction": frac, "step": steps,
                         "train/acc": train, "test/acc": test})


def test_delay_per_run_has_known_answers_and_undefined_stays_null():
    f = pl.concat([
        _run_rows("a", 0.5, 0, [10, 20, 200, 210], [0.5, 1.0, 1.0, 1.0], [0.0, 0.01, 0.96, 0.99]),
        _run_rows("b", 0.3, 0, [10, 20, 3000], [0.5, 1.0, 1.0], [0.0, 0.01, 0.40]),  # never generalised
        _run_rows("c", 0.9, 0, [10, 20, 30], [0.97, 0.995, 1.0], [0.96, 0.97, 0.98]),  # test before train
    ])
    d = {r["run"]: r for r in delay.run_delays(f, "train_fraction", 0.99, 0.95).to_dicts()}
    assert (d["a"]["t_train"], d["a"]["t_test"], d["a"]["delay"]) == (20, 200, 10.0)
    assert d["b"]["t_train"] == 20 and d["b"]["t_test"] is None and d["b"]["delay"] is None
    assert d["b"]["last"] == 3000 and d["b"]["best_test"] == pytest.approx(0.40)
    assert d["c"]["delay"] == pytest.approx(0.5), "generalised before memorising: a delay below 1"


def _sweep(delays: dict[float, list[float | None]], last: int = 3000, toggles: str = "") -> pl.DataFrame:
    """Runs with train ≥99% at step 20 and test ≥95% at 20 × delay (None: never, best 30%)."""
    parts = []
    for x, ds in delays.items():
        for s, dl in enumerate(ds):
            steps = [10, 20] + ([int(20 * dl)] if dl is not None else []) + [last]
            test = [0.0, 0.0] + ([0.96] if dl is not None else []) + [0.96 if dl is not None else 0.3]
            parts.append(_run_rows(f"{toggles}{x}-{s}", x, s, steps, [0.5] + [1.0] * (len(steps) - 1), test, toggles))
    return pl.concat(parts)


def test_sweep_verdict_shrinking_delay_and_where_it_stops_grokking():
    f = _sweep({0.2: [None, None, None], 0.4: [40, 50, 45], 0.6: [8, 10, 9], 0.8: [1.5, 1.0, 1.5],
                0.9: [1.0, 1.0, 1.5]})
    v = GD.group_criterion(f, GD.resolve())
    assert v.effect is True
    assert v.numbers["stops_grokking_at"] == 0.8 and v.numbers["first"] == 0.4 and v.numbers["last"] == 0.9
    assert v.numbers["undefined_at"] == [0.2]
    assert "undefined in 3/3 (test never ≥95% within 3,000 steps, best 30%)" in v.line
    assert "0.4: delay 45.0× ± 5.0 (n=3, 40.0–50.0×), grokked 3/3" in v.line
    assert "from train fraction 0.8 on no seed groks" in v.line
    p02 = next(p for p in v.numbers["points"] if p["x"] == 0.2)
    assert p02["n_defined"] == 0 and p02["mean"] is None, "an undefined delay is never turned into a number"
    assert v.numbers["spearman"] < -0.8


def test_sweep_verdict_no_shrink_and_too_few_points():
    flat = GD.group_criterion(_sweep({0.3: [10, 12, 30], 0.6: [11, 20, 12], 0.9: [10, 25, 12]}), GD.resolve())
    assert flat.effect is False and "does not clearly shrink" in flat.line
    few = GD.group_criterion(_sweep({0.2: [None, None], 0.5: [None, 30], 0.9: [3, 4]}), GD.resolve())
    assert few.effect is None and "cannot tell" in few.line
    assert GD.group_criterion(pl.DataFrame(), GD.resolve()).effect is None


def test_spearman_is_undefined_on_constant_input():
    assert delay.spearman([1, 2, 3], [5, 5, 5]) is None
    assert delay.spearman([1, 2], [2, 1]) is None
    assert delay.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


@pytest.mark.parametrize("bars, stop_step", [({"train/acc": 0.0}, 5), ({"train/acc": 1.01}, 40)])
def test_stop_when_reached_stops_at_the_first_evaluation_meeting_every_bar(bars, stop_step):
    from phenomon.callbacks.stop import StopWhenReached
    from phenomon.datamodules.modular import ModularDataModule
    from phenomon.models.grokking import GrokkingModule, build_network

    cb = StopWhenReached(bars)
    tr = L.Trainer(max_steps=40, max_epochs=-1, val_check_interval=5, check_val_every_n_epoch=None,
                   num_sanity_val_steps=0, logger=False, callbacks=[cb], enable_progress_bar=False,
                   enable_model_summary=False, enable_checkpointing=False)
    tr.fit(GrokkingModule(build_network("mlp", 7, d_embed=4, hidden=8), 7), datamodule=ModularDataModule(7))
    assert tr.global_step == stop_step
    with pytest.raises(ValueError, match="at least one metric"):
        StopWhenReached({})


def test_tiny_point_runs_and_logs_the_fraction_and_a_verdict(runs):
    cfg = GD.resolve(sets=["train_fraction=0.6", "p=23", "max_steps=30", "eval_every=10", "hidden=32",
                           "d_embed=8"])
    info = runner.run(GD, cfg, runner.RunOptions(root=runs, stream=open("/dev/null", "w")))
    assert info.state == "finished", info.manifest.get("error")
    assert info.manifest["config"]["train_fraction"] == 0.6
    frame = store.wide(store.read_metrics(info.dir))
    assert frame.filter(pl.col("test/acc").is_not_null())["step"].to_list() == [10, 20, 30]
    assert "signal/fourier_sparsity" in frame.columns
    assert info.manifest["verdict"]


def test_run_without_a_fraction_starts_one_child_per_fraction_and_seed(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr("phenomon.sweep.run_parallel", lambda children, root, max_parallel=None, **kw: started.extend(children))
    cli.main(["experiment", "grokking_data", "--preset", "quick", "--runs", str(tmp_path / "runs")])
    assert [c.label for c in started] == [f"baseline seed 0 train_fraction {f}" for f in (0.3, 0.5, 0.8)]


@pytest.mark.parametrize("sets, message", [
    (["train_fraction=1.5"], "train_fraction must be in (0, 1)"),
    (["train_fraction=-0.2"], "train_fraction must be in (0, 1)"),
    (["fractions=0.2,1.0"], "fractions must each be in (0, 1)"),
    (["fractions=0.5"], "at least 2 distinct fractions"),
    (["p=60"], "p must be a prime"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, sets, message):
    argv = ["run", "grokking_data", "--runs", str(tmp_path / "runs")] + [a for s in sets for a in ("--set", s)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_one_seed_per_point_cannot_claim_a_shrinking_delay():
    v = GD.group_criterion(_sweep({0.4: [80], 0.6: [20], 0.9: [8]}), GD.resolve())
    assert v.effect is None and "no spread to judge by" in v.line and "80.0×" in v.line


def test_report_draws_the_delay_figure_from_real_runs(runs, tmp_path):
    from phenomon.report import write_report

    for f in (0.5, 0.8):
        cfg = GD.resolve(sets=[f"train_fraction={f}", "p=23", "max_steps=20", "eval_every=10", "hidden=16",
                               "d_embed=8"])
        assert runner.run(GD, cfg, runner.RunOptions(root=runs, signals=(), stream=open("/dev/null", "w"))).state \
            == "finished"
    written = write_report(runs, None, tmp_path / "rep")
    fig = tmp_path / "rep" / "grokking_data_curves.png"
    assert fig in written and fig.read_bytes()[:4] == b"\x89PNG"
