"""Double descent: label noise, the closed-form head, sweeps as comparison groups, the verdict, bad input."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import torch

from phenomon.datamodules.mnist1d import MNIST1DDataModule, flip_labels
from phenomon.datamodules.teacher import TeacherDataModule
from phenomon.models.double_descent import MLP, least_squares_head
from phenomon import cli, experiment, registry, runner, scorecard, store
from phenomon.phenomena.double_descent.training import datamodule, summary
from phenomon.phenomena.double_descent.verdict import group_criterion

DD = registry.get("double_descent")
TEACHER_WIDTHS = (20, 40, 60, 80, 100, 125, 200, 400, 1000)  # train size 100: the peak belongs at 100


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("PHENOMON_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _run(root: Path, *sets: str, toggles=(), signals=()):
    cfg = DD.resolve("teacher", list(sets), list(toggles))
    return runner.run(DD, cfg, runner.RunOptions(root=root, signals=signals, stream=open("/dev/null", "w")))


# ------------------------------------------------------------------------------------------ data


def test_label_noise_flips_exactly_the_fraction_and_only_train():
    y = torch.arange(1000) % 10
    noisy, idx = flip_labels(y, 0.2, seed=3)
    assert len(idx) == 200 and int((noisy != y).sum()) == 200, "exactly 20%, every one of them wrong"
    assert set((noisy != y).nonzero().flatten().tolist()) == set(idx.tolist())
    assert len(flip_labels(y, 0.0, seed=3)[1]) == 0
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        flip_labels(y, 1.0, seed=0)
    clean = MNIST1DDataModule(300, 100, val_size=50, standardize=False)
    dm = MNIST1DDataModule(300, 100, val_size=50, standardize=False, label_noise=0.2, exact_noise=True)
    assert int((dm.train[1] != dm.y_train_clean).sum()) == 60 and len(dm.noisy_idx) == 60
    assert torch.equal(dm.y_train_clean, clean.train[1]) and torch.equal(dm.train[0], clean.train[0])
    assert torch.equal(dm.test[1], clean.test[1]) and torch.equal(dm.val[1], clean.val[1]), "val and test clean"


def test_each_seed_draws_its_own_noise_over_one_fixed_test_set():
    cfgs = [DD.resolve("teacher", [f"seed={s}", "val_size=20"]) for s in (0, 1)]
    a, b = (datamodule(c) for c in cfgs)
    assert len(a.noisy_idx) == len(b.noisy_idx) == 20
    assert not torch.equal(a.noisy_idx, b.noisy_idx)
    assert torch.equal(a.test[0], b.test[0]) and torch.equal(a.train[0], b.train[0])
    small = datamodule(DD.resolve("teacher", ["train_size=50", "val_size=20"]))
    assert torch.equal(small.test[0], a.test[0]) and torch.equal(small.train[0], a.train[0][:50]), \
        "train sizes share the test set: the pool is fixed"
    with pytest.raises(ValueError, match="exceeds the train pool"):
        TeacherDataModule(200, 10, train_pool=100)


def test_toggle_keys_leave_the_monitor_its_own():
    registry.check_toggle_keys(DD)


def test_mlp_parameter_count_and_minimum_norm_head():
    assert sum(p.numel() for p in MLP(40, 48, 10).parameters()) == 48 ** 2 + 52 * 48 + 10
    g = torch.Generator().manual_seed(0)
    for n, N in ((20, 50), (50, 20)):
        X, Y = torch.randn(n, N, generator=g), torch.randn(n, 3, generator=g)
        w = least_squares_head(X, Y)
        torch.testing.assert_close(w.double(), (torch.linalg.pinv(X.double()) @ Y.double()).T.float().double(),
                                   rtol=1e-4, atol=1e-4)
    assert least_squares_head(X, Y, ridge=1e3).norm() < w.norm(), "ridge shrinks the head"


# ------------------------------------------------------------------------------------------ runs and groups


def test_teacher_sweep_finds_the_closed_form_peak_at_n_features_equal_n(tmp_path):
    root = tmp_path / "runs"
    infos = [_run(root, f"width={w}", signals=("effective_parameters",)) for w in TEACHER_WIDTHS]
    assert {i.group for i in infos} == {DD.group_of(DD.resolve("teacher"))}, "one group over the sweep"
    v = experiment.group_verdict(DD, root, infos[0].group)
    assert v.effect is True, v.line
    assert v.numbers["peak_width"] == 100 == DD.resolve("teacher").train_size
    assert v.numbers["height_over_under"] > 0.1 and v.numbers["height_over_widest"] > 0.1
    assert v.numbers["peak_at_threshold"] is True
    # Curth et al.'s effective parameters on held-out inputs peak at interpolation too
    p_hat = scorecard.series(store.list_runs(root)).filter(pl.col("signal") == "signal/effective_parameters")
    assert p_hat.sort("value")["x"][-1] == 100.0
    # with the ridge toggle the same sweep has no peak (and joins the same comparison group)
    ridged = [_run(root, f"width={w}", toggles=("ridge",)) for w in (40, 100, 400)]
    assert {i.group for i in ridged} == {infos[0].group}
    v2 = experiment.group_verdict(DD, root, infos[0].group)
    assert v2.effect is True and "ridge: no double descent" in v2.line, v2.line


def test_random_features_run_streams_signals_incl_effective_parameters(tmp_path):
    info = _run(tmp_path / "runs", "width=100", "widths=40,100", signals=None)
    assert info.state == "finished", info.manifest.get("error")
    f = store.wide(store.read_metrics(info.dir))
    assert f["signal/effective_parameters"].drop_nulls().len() >= 2
    assert "effective_parameters" not in (info.manifest.get("signals_dropped") or {})
    assert f["final/train_error"].drop_nulls()[-1] == 0.0 and f["params"].drop_nulls()[-1] == 1000
    pts = scorecard.series(store.list_runs(tmp_path / "runs"))
    assert set(pts["x"].to_list()) == {100.0} and set(pts["unit"].str.contains(info.group).to_list()) == {True}


def test_mlp_run_logs_epochs_and_reports_the_best_validation_epoch(tmp_path):
    sets = ["model=mlp", "width=16", "train_size=100", "val_size=50", "batch_size=50", "epochs=6", "eval_every=2"]
    info = _run(tmp_path / "runs", *sets, toggles=("early_stopping",))
    assert info.state == "finished", info.manifest.get("error")
    f = store.wide(store.read_metrics(info.dir))
    ev = f.filter(pl.col("val/error").is_not_null()).sort("step")
    assert ev["epochs"].to_list() == [2.0, 4.0, 6.0]
    assert ev["step"].to_list() == [4, 8, 12], "optimiser steps taken: 2 per epoch"
    best = ev.sort("val/error", maintain_order=True).row(0, named=True)
    assert f["final/test_error"].drop_nulls()[-1] == best["test/error"]
    assert f["final/epochs"].drop_nulls()[-1] == best["epochs"]
    assert summary([{"step": 1, "test/error": 0.5, "val/error": 0.2}, {"step": 2, "test/error": 0.4,
                                                                      "val/error": 0.3}], False)["final/step"] == 2


def test_run_without_width_starts_one_child_per_width_and_seed(tmp_path, monkeypatch, capsys):
    started = []

    def fake_parallel(children, root, max_parallel=None, **kw):
        started.extend(children)
        return children

    monkeypatch.setattr("phenomon.sweep.run_parallel", fake_parallel)
    code = cli.main(["run", "double_descent", "--preset", "teacher", "--set", "widths=40,100,400",
                     "--set", "seeds=0,1", "--toggle", "ridge", "--runs", str(tmp_path / "runs")])
    assert code == 1  # nothing really ran
    assert [c.label for c in started] == [f"ridge seed {s} width {w}" for s in (0, 1) for w in (40, 100, 400)]
    spec = started[-1].spec
    assert spec.seed == 1 and spec.toggles == ("ridge",) and spec.sets[-1] == "width=400"
    assert "--preset" in spec.argv() and "widths=40,100,400" in spec.argv()
    started.clear()
    cli.main(["experiment", "double_descent", "--preset", "teacher", "--set", "widths=40,100",
              "--runs", str(tmp_path / "runs")])
    assert len(started) == 2 * 2, "experiment: baseline and weight_decay × 1 seed × 2 widths"


@pytest.mark.parametrize("sets, message", [
    (["widths=8,0,16"], "widths must be positive integers"),
    (["widths=8,12.5"], "expected an integer"),
    (["width=-4"], "width must be a positive integer"),
    (["label_noise=1"], "label_noise must be in [0, 1)"),
    (["label_noise=-0.1"], "label_noise must be in [0, 1)"),
    (["train_size=5000"], "larger than the data"),
    (["widths=48"], "at least 2 distinct widths"),
    (["widths=48,48"], "at least 2 distinct widths"),
])
def test_bad_input_is_one_line_exit_2_and_creates_nothing(tmp_path, capsys, sets, message):
    root = tmp_path / "runs"
    argv = ["run", "double_descent", "--runs", str(root)] + [a for s in sets for a in ("--set", s)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not root.exists()


# ------------------------------------------------------------------------------------------ the verdict


def _frame(test: dict[int, list[float]], train: dict[int, float], toggles: str = "") -> pl.DataFrame:
    rows = []
    for w, errs in test.items():
        for seed, e in enumerate(errs):
            rows.append({"width": w, "seed": seed, "toggles": toggles, "final/test_error": e,
                         "final/train_error": train[w], "epochs": None, "test/error": None, "val/error": None,
                         "train/error": None})
            for ep, x in ((10, e - 0.05), (50, e + 0.005), (100, e)):  # dip, rise, plateau: no second descent
                rows.append({"width": w, "seed": seed, "toggles": toggles, "final/test_error": None,
                             "final/train_error": None, "epochs": float(ep), "test/error": x,
                             "val/error": x + (0.1 if ep == 10 and w == 48 else 0.0), "train/error": train[w]})
    return pl.DataFrame(rows)


PEAK = {8: [0.55, 0.56, 0.54], 12: [0.48, 0.49, 0.48], 24: [0.52, 0.52, 0.53], 48: [0.59, 0.58, 0.60],
        56: [0.56, 0.57, 0.56], 128: [0.51, 0.52, 0.51], 384: [0.48, 0.47, 0.48]}
TRAIN = {8: 0.55, 12: 0.45, 24: 0.37, 48: 0.06, 56: 0.0, 128: 0.0, 384: 0.0}


def test_verdict_finds_the_peak_at_the_threshold_with_seed_spread():
    v = group_criterion(_frame(PEAK, TRAIN), DD.defaults())
    n = v.numbers
    assert v.effect is True and v.line.startswith("double descent: peak"), v.line
    assert (n["peak_width"], n["under_width"], n["threshold_width"], n["seeds"]) == (48, 12, 56, 3)
    assert n["height_over_under"] == pytest.approx(0.59 - 0.4833, abs=1e-3)
    assert n["height_over_widest"] == pytest.approx(0.59 - 0.4767, abs=1e-3)
    assert n["peak_sd"] == pytest.approx(0.01)
    assert "no second descent" in v.line and set(n["epochwise"]) == {48, 56, 128}
    # read at the best validation epoch (the dip at epoch 10, but the end at width 48): the same rows, a bigger peak
    assert n["early_stopped"]["effect"] is True and n["early_stopped"]["peak_width"] == 48
    assert n["early_stopped"]["height_over_under"] == pytest.approx(0.59 - 0.4333, abs=1e-3)


def test_verdict_without_a_peak_and_with_a_misplaced_one():
    flat = {w: [0.45, 0.46, 0.45] for w in PEAK}
    v = group_criterion(_frame(flat, TRAIN, "weight_decay"), DD.defaults())
    assert v.effect is False and v.line.startswith("weight_decay: no double descent"), v.line
    mono = {w: [0.6 - 0.01 * i] * 3 for i, w in enumerate(PEAK)}
    assert group_criterion(_frame(mono, TRAIN), DD.defaults()).effect is False
    noisy = {w: [e, e + 0.1, e - 0.1] for w, (e, *_) in PEAK.items()}  # the bump is inside the seed spread
    assert group_criterion(_frame(noisy, TRAIN), DD.defaults()).effect is False
    early = {**TRAIN, 12: 0.0}  # interpolates two grid steps before the peak
    v = group_criterion(_frame(PEAK, early), DD.defaults())
    assert v.effect is False and "not at the interpolation threshold" in v.line
    both = pl.concat([_frame(PEAK, TRAIN), _frame(flat, TRAIN, "weight_decay")])
    v = group_criterion(both, DD.defaults())
    assert v.effect is True and " | weight_decay: no double descent" in v.line
    assert group_criterion(pl.DataFrame(), DD.defaults()).effect is None
    assert group_criterion(_frame({8: [0.5], 12: [0.4]}, TRAIN), DD.defaults()).effect is None


def test_epoch_curve_tells_a_plateau_from_a_second_descent():
    from phenomon.phenomena.double_descent.verdict import epoch_curve

    ep = [10.0, 50.0, 100.0, 200.0]
    plateau = epoch_curve(pl.DataFrame({"epochs": ep, "test/error": [0.5, 0.6, 0.6, 0.6]}))
    assert plateau["second_descent"] is False and (plateau["min_epoch"], plateau["max_after"]) == (10.0, 0.6)
    assert epoch_curve(pl.DataFrame({"epochs": ep, "test/error": [0.5, 0.6, 0.55, 0.52]}))["second_descent"] is True
