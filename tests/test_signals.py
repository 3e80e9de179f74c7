"""Each explanation signal on a tiny hand-built model with a known answer, and the callback that schedules them."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from phenomon.callbacks import signals as S
from phenomon.callbacks.signal_callback import SignalCallback

from .conftest import SIGNAL_NAMES


class Fixed(nn.Module):
    def __init__(self, *tensors):
        super().__init__()
        self.ws = nn.ParameterList([nn.Parameter(t.clone().float()) for t in tensors])


def test_weight_norm_of_known_weights():
    m = Fixed(torch.tensor([3.0, 4.0]), torch.tensor([[12.0]]))
    out = S.weight_norm(m)
    assert out[""] == pytest.approx(13.0)
    assert out["@ws.0"] == pytest.approx(5.0) and out["@ws.1"] == pytest.approx(12.0)


def test_prime_count_on_known_integers():
    vals = torch.tensor([-3.0, -2.2, 0.0, 0.9, 1.0, 1.6, 2.4, 3.0, 4.0, 4.6, 7.2, 9.0, 11.0, 97.0, 100.0])
    # round: -3 -2 0 1 1 2 2 3 4 5 7 9 11 97 100 -> positive primes: 2 2 3 5 7 11 97
    assert S.prime_count(torch.round(vals)) == 7
    out = S.primes(Fixed(vals))
    assert out[""] == 7 and out["abs"] == 9  # |-3| and |-2| count too
    assert S.prime_count(torch.arange(0, 10_000).float()) == 1229, "the sieve knows the primes below 10^4"


def test_magnitude_confounders():
    out = S.magnitude(Fixed(torch.tensor([0.5, -1.5, 2.0, -0.1])))
    assert out["mean_abs"] == pytest.approx(1.025) and out["n_ge_1.5"] == 2


def test_fourier_sparsity_of_an_embedding_built_from_known_frequencies():
    p, d = 31, 8
    t = torch.arange(p).float()[:, None]
    keys = [3, 7]
    E = torch.cat([torch.cos(2 * math.pi * k * t / p) for k in keys] + [torch.sin(2 * math.pi * 3 * t / p)], 1)
    E = torch.cat([E, torch.zeros(p, d - 3)], 1)
    emb = nn.Module()
    emb.embed = nn.Embedding(p, d)
    emb.embed.weight.data = E
    emb.num_classes = p
    assert S.fourier_sparsity(emb, k=2)[""] == pytest.approx(1.0, abs=1e-9)
    assert S.fourier_sparsity(emb, k=1)[""] == pytest.approx(2 / 3, abs=1e-6), "frequency 3 holds 2 of 3 parts"
    torch.manual_seed(0)
    emb.embed.weight.data = torch.randn(p, 64)
    assert S.fourier_sparsity(emb, k=2)[""] < 0.3
    with pytest.raises(S.SignalUnavailable):
        S.fourier_sparsity(Fixed(torch.ones(3, 3)))


def test_effective_rank_of_known_matrices():
    assert S.effective_rank_of(torch.eye(6)) == pytest.approx(6.0)
    torch.manual_seed(0)
    low = torch.randn(40, 1) @ torch.randn(1, 30)
    assert S.effective_rank_of(low) == pytest.approx(1.0, abs=1e-3)
    assert S.effective_rank_of(torch.diag(torch.tensor([1.0, 1.0, 0.0, 0.0]))) == pytest.approx(2.0)


class Quadratic(nn.Module):
    """loss = ½ wᵀ A w, whatever the batch: the Hessian is A."""

    def __init__(self, A):
        super().__init__()
        self.A = A
        self.w = nn.Parameter(torch.ones(A.shape[0]))
        self.loss_fn = lambda out, y: out

    def forward(self, x):
        return 0.5 * self.w @ self.A @ self.w


def test_sharpness_is_the_top_eigenvalue_of_a_known_hessian():
    Q, _ = torch.linalg.qr(torch.randn(5, 5, generator=torch.Generator().manual_seed(1)))
    A = Q @ torch.diag(torch.tensor([7.0, 3.0, 1.0, 0.5, 0.1])) @ Q.T
    probe = S.Probe(torch.zeros(4, 1), torch.zeros(4, dtype=torch.long))
    assert S.sharpness(Quadratic(A), probe, iters=60)[""] == pytest.approx(7.0, rel=1e-3)


def test_margin_softmax_collapse_and_gradient_stats():
    class Logits(nn.Module):
        def __init__(self):
            super().__init__()
            self.b = nn.Parameter(torch.zeros(3))

        def forward(self, x):
            return x + self.b

    x = torch.tensor([[5.0, 1.0, 0.0], [0.0, 2.0, 3.0], [200.0, 0.0, 0.0]])
    y = torch.tensor([0, 2, 0])
    probe = S.Probe(x, y)
    m = S.margin(Logits(), probe)
    assert m[""] == pytest.approx((4 + 1 + 200) / 3) and m["min"] == pytest.approx(1.0)
    sc = S.softmax_collapse(Logits(), probe)
    assert sc[""] == pytest.approx(1 / 3), "exp(-200) underflows to exactly 0 in float32: Σ == 1"
    g = S.grad_stats(Logits(), probe, chunks=3)
    assert g[""] > 0 and g["snr"] > 0


def test_sparsity_with_masks():
    m = Fixed(torch.tensor([0.0, 1.0, 0.0, 2.0]))
    m.register_buffer("weight_mask", torch.tensor([0.0, 1.0, 0.0, 1.0]))
    out = S.sparsity(m)
    assert out[""] == 0.5 and out["kept"] == 0.5


def test_effective_parameters_of_least_squares():
    torch.manual_seed(0)
    X = torch.randn(20, 5)
    assert S.effective_parameters(X, X, 0.0) == pytest.approx(5.0, rel=1e-6), "train p̂ of OLS is its rank"
    X = torch.randn(10, 50)
    assert S.effective_parameters(X, X, 0.0) == pytest.approx(10.0, rel=1e-6), "interpolation: p̂ = n"
    assert S.effective_parameters(X, X, 100.0) < 10.0


def test_every_shown_row_and_default_name_is_a_registered_signal():
    """The catalog (torch-free names) and the signals (code) cannot drift apart: a row `signal/<name>[/<part>]` is
    written by the signal `<name>`, and every default signal exists."""
    from phenomon.catalog import MAIN_SIGNALS

    def produced(row: str) -> bool:
        name = row.removeprefix("signal/")
        return any(name == s or name.startswith(f"{s}/") for s in S.SIGNALS)

    rows = [r for r in MAIN_SIGNALS if r.startswith("signal/")]
    assert rows and [r for r in rows if not produced(r)] == []
    assert set(S.DEFAULT) <= set(S.SIGNALS)


def test_callback_rejects_unknown_signals_and_bad_schedules():
    with pytest.raises(ValueError, match=rf"unknown signal\(s\) astrology; valid: {SIGNAL_NAMES}$"):
        SignalCallback(["weight_norm", "astrology"])
    with pytest.raises(ValueError, match="positive integers"):
        SignalCallback(["weight_norm"], every={"cheap": 0})


def test_callback_skips_a_failing_signal_with_one_warning_and_keeps_training(runs, monkeypatch):
    from phenomon import registry, runner, store

    def broken(module, probe=None):
        raise RuntimeError("kaput")

    monkeypatch.setitem(S.SIGNALS, "broken", S.Signal("broken", "none", ("*",), "cheap", broken))
    ph = registry.get("grokking")
    cfg = ph.resolve(sets=["p=23", "max_steps=20", "eval_every=10", "hidden=16", "d_embed=4"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info = runner.run(ph, cfg, runner.RunOptions(root=runs, signals=("weight_norm", "broken",
                                                                          "fourier_sparsity")))
    msgs = [str(w.message) for w in caught if "broken" in str(w.message)]
    assert len(msgs) == 1 and "kaput" in msgs[0]
    assert info.state == "finished"
    assert info.manifest["signals_dropped"] == {"broken": "RuntimeError: kaput"}
    rows = store.wide(store.read_metrics(info.dir))
    assert rows.filter(rows["signal/weight_norm"].is_not_null())["step"].to_list() == [0, 10, 20]
    assert "signal/fourier_sparsity" in rows.columns
    assert info.manifest["signal_costs"]["weight_norm"]["calls"] == 3
