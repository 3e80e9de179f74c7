"""Double descent under tuned regularisation: the stacked weight-decay grid equals separate SGD runs, the choice on
the validation split, the bump statistic, the group verdict on planted sweeps, a tiny end-to-end sweep, bad input."""

from __future__ import annotations

import polars as pl
import pytest
import torch
import torch.nn.functional as F

from phenomon import registry
from phenomon.models.double_descent import MLP
from phenomon.models.wd_grid import GridModule, StackedMLP, select
from phenomon.phenomena.dd_regularised import RegularisedConfig, group_criterion, largest_bump
from tests.conftest import phenomon

DR = registry.get("dd_regularised")
TINY = ["--set", "widths=4,8,16", "--set", "train_size=200", "--set", "train_pool=200", "--set", "val_size=100",
        "--set", "test_size=200", "--set", "epochs=4", "--set", "eval_every=2", "--set", "batch_size=50",
        "--set", "wd_grid=0,0.01", "--set", "seeds=0"]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("PHENOMON_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def test_each_stacked_member_trains_exactly_like_sgd_with_its_weight_decay():
    """Member k of the grid after 5 SGD steps equals an `MLP` with the same initial weights trained by
    torch.optim.SGD(weight_decay=wd_k) on the same batches: the ℓ2 term in the loss is SGD's coupled decay."""
    torch.manual_seed(0)
    wds = (0.0, 0.05, 0.5)
    net = StackedMLP(3, 6, 5, 4)
    grid = GridModule(net, wds, lr=0.1, momentum=0.9)
    singles = []
    for k in range(3):
        m = MLP(6, 5, 4)
        with torch.no_grad():
            for layer, w, b in zip([m[0], m[2], m[4]], net.weights, net.biases):
                layer.weight.copy_(w[k].T)
                layer.bias.copy_(b[k, 0])
        singles.append((m, torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=wds[k])))
    opt = grid.configure_optimizers()
    for step in range(5):
        x, y = torch.randn(8, 6), torch.randint(0, 4, (8,))
        opt.zero_grad()
        grid._common_step((x, y), "fit").backward()
        opt.step()
        for m, o in singles:
            o.zero_grad()
            F.cross_entropy(m(x), y).backward()
            o.step()
    for k, (m, _) in enumerate(singles):
        torch.testing.assert_close(net.weights[1][k], m[2].weight.detach().T)
        torch.testing.assert_close(net.biases[2][k, 0], m[4].bias.detach())
        torch.testing.assert_close(net(x)[k], m(x))
    assert not torch.allclose(net.weights[0][0], net.weights[0][2]), "the decays differ, so do the members"


def _ev(epochs, train, val, test):
    return {"step": epochs * 10, "epochs": float(epochs), "train/error": train, "val/error": val, "test/error": test}


def test_selection_uses_the_validation_split_only():
    wds = (0.0, 0.01)
    evals = [_ev(10, [0.5, 0.5], [0.40, 0.45], [0.90, 0.10]),  # best validation (0.40): wd 0 at epoch 10
             _ev(20, [0.1, 0.3], [0.50, 0.42], [0.05, 0.95]),  # a test error of 0.05 must not be picked
             _ev(30, [0.0, 0.3], [0.60, 0.43], [0.70, 0.60])]
    s = select(evals, wds)
    assert (s["final/weight_decay"], s["final/epochs"], s["final/test_error"]) == (0.0, 10.0, 0.90)
    assert (s["es_only/epochs"], s["es_only/test_error"]) == (10.0, 0.90)
    assert (s["wd_only/weight_decay"], s["wd_only/test_error"]) == (0.01, 0.60)
    assert (s["untuned/epochs"], s["untuned/test_error"], s["untuned/train_error"]) == (30.0, 0.70, 0.0)


def test_largest_bump_is_paired_by_seed_with_an_interval():
    t = pl.DataFrame({"width": [8, 16, 32] * 3, "seed": [0, 0, 0, 1, 1, 1, 2, 2, 2],
                      "test_error": [0.50, 0.55, 0.45, 0.52, 0.56, 0.46, 0.48, 0.55, 0.44]})
    b = largest_bump(t)
    assert (b["from"], b["to"], b["n"]) == (8, 16, 3)
    assert b["rise"] == pytest.approx((0.05 + 0.04 + 0.07) / 3)
    assert b["lo"] < b["rise"] < b["hi"] and b["lo"] > 0
    one = largest_bump(t.filter(pl.col("seed") == 0))
    assert one["n"] == 1 and one["lo"] is None, "one seed: no interval, never a made-up one"


def _sweep(untuned: list[float], tuned: list[float], widths=(8, 16, 32, 64, 128), seeds=(0, 1, 2)) -> pl.DataFrame:
    rows = []
    for s in seeds:
        for w, u, t in zip(widths, untuned, tuned):
            j = 0.002 * (s - 1)
            rows.append({"width": w, "seed": s, "toggles": "", "final/test_error": t + j, "final/train_error": 0.3,
                         "final/weight_decay": 0.01, "untuned/test_error": u + j,
                         "untuned/train_error": 0.0 if w >= 32 else 0.3})
    return pl.DataFrame(rows)


def test_group_verdict_peak_removed_and_peak_surviving():
    untuned = [0.55, 0.52, 0.62, 0.56, 0.50]
    gone = group_criterion(_sweep(untuned, [0.53, 0.49, 0.48, 0.475, 0.47]), RegularisedConfig())
    assert gone.effect is False and gone.line.startswith("no peak survives tuning")
    assert gone.numbers["untuned_peak"] is True and "peak 0.620" in gone.line
    assert gone.numbers["bumps"]["untuned"]["rise"] == pytest.approx(0.10)
    assert "n=3" in gone.line and "of the untuned range" in gone.line
    kept = group_criterion(_sweep(untuned, [0.53, 0.49, 0.56, 0.50, 0.48]), RegularisedConfig())
    assert kept.effect is True and kept.line.startswith("a peak survives tuning")
    assert kept.numbers["bumps"]["final"]["rise"] == pytest.approx(0.07)


def test_tiny_sweep_end_to_end(runs, tmp_path):
    """Three widths, one seed, each training the two-value grid: the group verdict compares the readings."""
    r = phenomon("experiment", "dd_regularised", "--runs", str(runs), *TINY, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "peak survives tuning" in r.stdout and "untuned (weight decay 0, last epoch)" in r.stdout
    assert "n=1 seed" in r.stdout and "no interval" in r.stdout, "one seed: no interval is made up"
    from phenomon import store

    done = [x for x in store.list_runs(runs) if x.state == "finished"]
    assert len(done) == 3
    w = store.wide(store.read_metrics(done[0].dir))
    assert {"final/test_error", "untuned/test_error", "wd0.01/val/error", "wd0/test/error"} <= set(w.columns)
    from phenomon.report import write_report

    written = {p.name for p in write_report(runs, None, tmp_path / "report")}
    assert "dd_regularised_curves.png" in written
    md = (tmp_path / "report" / "report.md").read_text()
    assert "peak survives tuning" in md


@pytest.mark.parametrize("sets, msg", [
    (["wd_grid=0.001,0.01"], "wd_grid must include 0"),
    (["wd_grid=0,-1"], "wd_grid must be weight decays >= 0"),
    (["val_size=0"], "validation split"),
    (["model=random_features"], "model must be mlp"),
])
def test_bad_input_is_one_line(runs, sets, msg):
    r = phenomon("run", "dd_regularised", "--runs", str(runs), *[a for s in sets for a in ("--set", s)])
    assert r.returncode == 2 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not runs.exists() or not any(runs.iterdir())
