"""Edge of stability: the power iteration against known spectra, gradient descent's 2/λ threshold, the verdict on
hand-made frames, a tiny end-to-end run, bad input."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from phenomon import registry, runner, store
from phenomon.callbacks.sharpness import top_eigenvalue
from phenomon.cli import main
from phenomon.models.eos import MLP, GDModule
from phenomon.phenomena.edge_of_stability.verdict import (LATE, SHORT, criterion, group_criterion,
                                                           loss_windows)

EOS = registry.get("edge_of_stability")


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("PHENOMON_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _quadratic(eigs, seed=0):
    """A = Q diag(eigs) Qᵀ with a random rotation Q, and its top eigenvector."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(len(eigs), len(eigs), generator=g, dtype=torch.float64))
    a = q @ torch.diag(torch.tensor(eigs, dtype=torch.float64)) @ q.T
    return a, q[:, int(np.argmax(eigs))]


# ------------------------------------------------------------------------------------------ power iteration


def test_power_iteration_finds_the_top_eigenvalue_of_a_known_quadratic():
    a, top = _quadratic([5.0, 3.0, 1.0, 0.5, -0.2, 0.1])
    x = torch.randn(6, dtype=torch.float64, requires_grad=True)
    lam, v, used = top_eigenvalue(lambda: 0.5 * x @ a @ x, [x], iters=200, tol=1e-10)
    assert lam == pytest.approx(5.0, rel=1e-6)
    assert abs(float(v[0] @ top)) == pytest.approx(1.0, abs=1e-4), "the eigenvector too"
    # warm-started from the answer it is done at once (the second iteration confirms it)
    lam2, _, used2 = top_eigenvalue(lambda: 0.5 * x @ a @ x, [x], v0=[top.clone()], iters=50, tol=1e-8)
    assert lam2 == pytest.approx(5.0, rel=1e-8) and used2 <= 2 < used


def test_warm_started_power_iteration_matches_the_exact_hessian_of_a_small_network():
    """A tiny tanh MLP on MSE: the tracker's estimate against the top eigenvalue of the explicit Hessian."""
    torch.manual_seed(0)
    net = MLP(4, 3, 2, depth=1).double()
    module = GDModule(net, lr=0.1)
    x, y = torch.randn(32, 4, dtype=torch.float64), torch.randint(0, 2, (32,))
    params = list(net.parameters())
    shapes = [p.shape for p in params]
    flat0 = torch.cat([p.detach().reshape(-1) for p in params])

    def loss_of(flat):
        out, i = x, 0
        ws = []
        for s in shapes:
            n = int(np.prod(s))
            ws.append(flat[i:i + n].reshape(s))
            i += n
        h = torch.tanh(out @ ws[0].T + ws[1])
        return module.loss_fn(h @ ws[2].T + ws[3], y)

    exact = float(torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss_of, flat0)).max())
    lam, v, _ = top_eigenvalue(lambda: module.loss_fn(module(x), y), params, iters=500, tol=1e-12)
    assert lam == pytest.approx(exact, rel=1e-6)
    # a small step later, 3 warm-started iterations are within 1% of a converged answer
    with torch.no_grad():
        for p in params:
            p.add_(0.01 * torch.randn_like(p))
    warm, _, _ = top_eigenvalue(lambda: module.loss_fn(module(x), y), params, v0=v, iters=3, tol=0.0)
    cold, _, _ = top_eigenvalue(lambda: module.loss_fn(module(x), y), params, iters=500, tol=1e-12)
    assert warm == pytest.approx(cold, rel=1e-2)


@pytest.mark.parametrize("factor, diverges", [(1.05, True), (0.95, False)])
def test_gradient_descent_diverges_above_2_over_lambda_and_converges_below(factor, diverges):
    """The stability threshold the whole phenomenon is about, on ½xᵀAx with λmax = 4: η = factor · 2/λmax."""
    a, _ = _quadratic([4.0, 1.0])
    x = torch.tensor([1.0, 1.0], dtype=torch.float64, requires_grad=True)
    lam, _, _ = top_eigenvalue(lambda: 0.5 * x @ a @ x, [x], iters=100, tol=1e-12)
    opt = torch.optim.SGD([x], lr=factor * 2 / lam)
    for _ in range(300):
        opt.zero_grad()
        (0.5 * x @ a @ x).backward()
        opt.step()
    norm = float(x.detach().norm())
    assert (norm > 1e3) if diverges else (norm < 1e-3)


# ------------------------------------------------------------------------------------------ verdict


def test_loss_windows_count_oscillation_and_long_decrease():
    n = 600
    trend = np.linspace(1.0, 0.1, n)
    smooth = loss_windows(trend)
    assert smooth["short_n"] == n // SHORT and smooth["short_oscillating"] == 0
    assert smooth["long_decreasing"] == smooth["long_pairs"] == 5
    zigzag = loss_windows(trend + 0.05 * (np.arange(n) % 2))  # period-2 oscillation on a falling trend
    assert zigzag["short_oscillating"] == zigzag["short_n"] and zigzag["long_decreasing"] == 5
    rising = loss_windows(trend[::-1])
    assert rising["long_decreasing"] == 0 and rising["short_oscillating"] == rising["short_n"]
    empty = loss_windows(np.zeros(5))
    assert empty["short_n"] == 0 and empty["long_pairs"] == 0, "too short: denominators 0, not a count"


def _frame(cfg, sharp_ratio: float, oscillate: bool = True, step_loss: bool = True, until: int | None = None):
    """A run's wide rows: sharpness every 20 steps at `sharp_ratio` · 2/η late (rising before), per-step loss."""
    until = cfg.max_steps if until is None else until
    thr = 2 / cfg.eta
    steps = np.arange(until + 1)
    loss = np.linspace(0.6, 0.1, len(steps)) + (0.02 * (steps % 2) if oscillate else 0.0)
    measured = steps % 20 == 0
    ramp = np.minimum(1.0, steps / (0.3 * cfg.max_steps))
    d = {"step": steps, "eos/sharpness": np.where(measured, thr * sharp_ratio * ramp, np.nan),
         "eos/threshold": np.where(measured, thr, np.nan)}
    if step_loss:
        d["train/step_loss"] = loss
    return pl.DataFrame(d).with_columns(pl.col("eos/sharpness", "eos/threshold").fill_nan(None))


def test_criterion_on_hand_made_runs():
    cfg = EOS.resolve("quick")
    at_edge = criterion(_frame(cfg, 1.02), cfg)
    assert at_edge.effect is True and at_edge.numbers["share_in_band"] == 1.0
    assert at_edge.numbers["late_measurements"] == at_edge.numbers["in_band"] > 0
    assert at_edge.numbers["plateau_ratio"] == pytest.approx(1.02)
    assert at_edge.numbers["reached_step"] is not None and at_edge.numbers["reached_step"] < LATE * cfg.max_steps
    below = criterion(_frame(cfg, 0.6), cfg)
    assert below.effect is False and below.numbers["share_in_band"] == 0 and below.numbers["reached_step"] is None
    assert "never reached 2/η" in below.line
    monotone = criterion(_frame(cfg, 1.0, oscillate=False), cfg)
    assert monotone.effect is False and monotone.numbers["short_oscillating"] == 0, \
        "at 2/η but the loss never rises: not the edge-of-stability picture"
    no_loss = criterion(_frame(cfg, 1.0, step_loss=False), cfg)
    assert no_loss.effect is None and "short_n" not in no_loss.numbers, "the loss half undefined stays undefined"
    early = criterion(_frame(cfg, 1.0, until=100), cfg)
    assert early.effect is None and "has not begun" in early.line
    assert criterion(pl.DataFrame({"step": [0, 1]}), cfg).effect is None


def test_criterion_leaves_an_undefined_threshold_out():
    """Warm-up from η→0: steps without a threshold are not counted as in or out of band."""
    cfg = EOS.resolve("quick")
    f = _frame(cfg, 1.0).with_columns(
        pl.when(pl.col("step") % 40 == 0).then(None).otherwise(pl.col("eos/threshold")).alias("eos/threshold"))
    v = criterion(f, cfg)
    full = criterion(_frame(cfg, 1.0), cfg)
    assert 0 < v.numbers["late_measurements"] < full.numbers["late_measurements"]


def test_group_criterion_counts_seeds_with_intervals():
    cfg = EOS.resolve("quick")
    parts = []
    for toggles, ratio, seeds in (("", 1.0, (0, 1, 2)), ("lr_double", 0.5, (0,))):
        c = EOS.resolve("quick", toggles=[toggles] if toggles else [])
        for s in seeds:
            parts.append(_frame(c, ratio + 0.01 * s).with_columns(run=pl.lit(f"{toggles}{s}"),
                                                                  toggles=pl.lit(toggles), seed=pl.lit(s)))
    v = group_criterion(pl.concat(parts, how="diagonal_relaxed"), cfg)
    base, dbl = v.numbers["variants"]["baseline"], v.numbers["variants"]["lr_double"]
    assert v.effect is True and base["n"] == 3 and base["at_edge"] == 3
    assert base["threshold"] == pytest.approx(2 / cfg.eta) and dbl["threshold"] == pytest.approx(2 / (2 * cfg.eta))
    assert dbl["at_edge"] == 0 and dbl["n"] == 1
    assert "n=3" in v.line and "[" in base["line"].split("ratio")[1], "an interval over 3 seeds"
    assert "[–]" in dbl["line"], "one seed: no interval, not a made-up one"
    assert group_criterion(pl.DataFrame(), cfg).effect is None


# ------------------------------------------------------------------------------------------ end to end


def test_tiny_run_streams_sharpness_threshold_and_loss(tmp_path):
    cfg = EOS.resolve("quick", ["train_size=100", "test_size=100", "width=16", "max_steps=60", "sharpness_every=10",
                                "eval_every=20"])
    info = runner.run(EOS, cfg, runner.RunOptions(root=tmp_path, stream=open("/dev/null", "w"), invariance=False))
    assert info.state == "finished"
    w = store.wide(store.read_metrics(info.dir))
    s = w.filter(pl.col("eos/sharpness").is_not_null()).sort("step")
    assert s["step"].to_list() == list(range(0, 61, 10))
    assert (s["eos/threshold"] == 2 / cfg.eta).all() and (s["eos/sharpness"] > 0).all()
    assert s["eos/sharpness_ratio"].to_list() == pytest.approx((s["eos/sharpness"] * cfg.eta / 2).to_list())
    assert w["train/step_loss"].drop_nulls().len() == 60, "one loss per step"
    assert {"train/loss", "test/acc", "signal/sharpness", "signal/weight_norm", "null/step"} <= set(w.columns), \
        "evaluations and the generic signals run on these runs too"
    m = info.manifest
    cost = m["sharpness_cost"]
    assert cost["calls"] == 7 and 0 < cost["share"] < 1
    assert m["verdict_numbers"]["last_step"] == 60 and "2/η = 10.00" in m["verdict"]


def test_bad_input_is_one_line(capsys, tmp_path):
    for sets, message in ((["lr=0"], "lr must be positive"), (["lr_scale=-1"], "lr_scale must be positive"),
                          (["batch_size=5000"], "batch_size (5000) exceeds train_size"),
                          (["warmup=1.5"], "warmup must be a fraction")):
        argv = ["run", "edge_of_stability", *[a for s in sets for a in ("--set", s)], "--runs", str(tmp_path / "r")]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_toggles_are_relative_to_the_preset():
    quick = EOS.resolve("quick")
    assert EOS.resolve("quick", toggles=["lr_half"]).eta == pytest.approx(quick.eta / 2)
    assert EOS.resolve(None, toggles=["lr_double"]).eta == pytest.approx(2 * EOS.defaults().eta)
    assert EOS.resolve(None, toggles=["warmup"]).warmup_steps == EOS.defaults().max_steps // 5
    assert EOS.group_of(EOS.resolve(None, toggles=["sgd"])) == EOS.group_of(EOS.defaults())
