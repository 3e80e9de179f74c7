"""Invariance under ReLU rescalings: the function stays, norms and counts move, scale-free signals do not."""

from __future__ import annotations

import json

import pytest
import torch

from phenomon import cli, invariance, registry, runner
from phenomon.callbacks import signals as S
from phenomon.callbacks.signal_callback import make_probe
from phenomon.models.double_descent import MLP, RandomFeatures
from phenomon.models.grokking import EmbedMLP, OneLayerTransformer
from phenomon.models.lottery import MaskedMLP

SIGS = [S.SIGNALS[n] for n in ("weight_norm", "prime_count", "margin", "effective_rank", "sparsity", "fourier_sparsity")]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("PHENOMON_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _widen(t: torch.Tensor) -> None:
    """Weights of a few units: after × 4 (or × 0.5) some round to other integers, so the prime count must move."""
    with torch.no_grad():
        t.copy_(torch.randn(t.shape, generator=torch.Generator().manual_seed(0)) * 2)


def _tiny(family: str):
    torch.manual_seed(0)
    if family == "dd_mlp":
        net, x, y = MLP(6, 8, 3), torch.randn(40, 6), torch.randint(0, 3, (40,))
        _widen(net[0].weight)
    elif family == "random_features":
        net, x, y = RandomFeatures(6, 8, 3), torch.randn(40, 6), torch.randint(0, 3, (40,))
        _widen(net.head.weight)
    elif family == "masked_mlp":
        net, x, y = MaskedMLP(6, (8, 5), 3), torch.randn(40, 6), torch.randint(0, 3, (40,))
        net.set_masks({k: torch.rand(m.shape, generator=torch.Generator().manual_seed(1)) > 0.3
                       for k, m in net.masks().items()})
        _widen(net.layers[0].weight)
        net.apply_masks_()
    else:
        net = EmbedMLP(7, 4, 8) if family == "embed_mlp" else OneLayerTransformer(7, 8, 2, 16)
        x = torch.stack([torch.randint(0, 7, (40,)), torch.randint(0, 7, (40,)), torch.full((40,), 7)], 1)
        y = torch.randint(0, 7, (40,))
        _widen(net.hidden.weight if family == "embed_mlp" else net.W_in)
    return net, x, y


@pytest.mark.parametrize("family", ["dd_mlp", "random_features", "masked_mlp", "embed_mlp", "transformer"])
def test_rescaling_keeps_the_logits_moves_norm_and_primes_and_not_scale_free_signals(family):
    net, x, y = _tiny(family)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    acc = (net(x).argmax(1) == y).float().mean()
    rep = invariance.check(net, x, SIGS, S.Probe(x, y))
    assert rep["function_preserved"] and rep["logits_rel_diff"] < 1e-4
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items()), "weights restored after the check"
    assert (net(x).argmax(1) == y).float().mean() == acc
    sig = rep["signals"]
    assert set(sig["signal/weight_norm"]["rescaled"]) == {"0.5", "2", "4"}
    assert sig["signal/weight_norm"]["invariant"] is False
    assert sig["signal/prime_count"]["invariant"] is False, sig["signal/prime_count"]
    for name in ("signal/margin", "signal/margin/min"):
        assert sig[name]["invariant"] is True, (name, sig[name])
    assert sig["signal/sparsity"]["invariant"] is True
    if family in ("embed_mlp", "transformer"):
        assert sig["signal/fourier_sparsity"]["rel_change"] == 0.0, "the embedding is not rescaled"
    if family == "masked_mlp":
        assert sig["signal/sparsity/kept"]["invariant"] is True
        assert all(torch.equal(m, before[f"{k.rsplit('.', 1)[0]}.mask"]) for k, m in net.masks().items())
    unit = rep["per_unit"]
    assert unit["function_preserved"] and unit["logits_rel_diff"] < 1e-4
    assert sig["signal/effective_rank"]["invariant"] is True, "one c per matrix leaves its normalised spectrum"
    assert unit["signals"]["signal/effective_rank"]["invariant"] is False, "a c per unit does not"
    assert unit["signals"]["signal/margin"]["invariant"] is True
    json.dumps(rep, allow_nan=False)  # strict JSON: no NaN
    odd = invariance.check(net, x, [], None, cs=(0.3, 3.0))  # not powers of two: rounding, but no more
    assert 0 <= odd["logits_rel_diff"] < 1e-5


def test_a_network_without_a_known_rescaling_is_refused_by_name():
    with pytest.raises(ValueError, match="no ReLU rescaling for Linear; known: MLP"):
        invariance.rescaling(torch.nn.Linear(2, 2))


GROK = registry.get("grokking")


def _grok_run(root, *sets, signals=None):
    cfg = GROK.resolve(sets=["p=23", "max_steps=20", "eval_every=10", "hidden=16", "d_embed=4", *sets])
    info = runner.run(GROK, cfg, runner.RunOptions(root=root, signals=signals))
    assert info.state == "finished", info.manifest.get("error")
    return info


def test_a_run_saves_its_weights_and_invariance_and_the_cli_recomputes_them(runs, capsys):
    info = _grok_run(runs)
    sd = torch.load(info.dir / "weights.pt", weights_only=True)
    assert set(sd) >= {"net.embed.weight", "net.hidden.weight", "net.out.weight"}
    assert not list(info.dir.glob(".*tmp*")), "written through a temp file and renamed"
    rep = json.loads((info.dir / "invariance.json").read_text())
    assert rep["function_preserved"] is True and rep["c"] == [0.5, 2.0, 4.0]
    assert {"signal/weight_norm", "signal/fourier_sparsity", "signal/margin", "signal/sharpness"} <= set(rep["signals"])
    assert not any(k.startswith("null/") for k in rep["signals"]), "nulls are not functions of the weights"
    assert rep["signals"]["signal/weight_norm"]["invariant"] is False
    assert rep["signals"]["signal/fourier_sparsity"]["invariant"] is True
    # the CLI rebuilds the model from the manifest and gets the same numbers with the same probe
    (info.dir / "invariance.json").unlink()
    assert cli.main(["invariance", info.id, "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "function preserved" in out and "signal/weight_norm" in out and "@" not in out
    again = json.loads((info.dir / "invariance.json").read_text())
    for name, r in rep["signals"].items():
        assert again["signals"][name]["base"] == pytest.approx(r["base"], rel=1e-5, abs=1e-9), name


def test_restricted_signals_are_the_ones_checked(runs):
    info = _grok_run(runs, signals=("weight_norm",))
    rep = json.loads((info.dir / "invariance.json").read_text())
    assert {k.split("@")[0] for k in rep["signals"]} == {"signal/weight_norm"}


def test_bad_input_is_one_line_and_exit_code_2(runs, capsys):
    assert cli.main(["invariance", "nope", "--runs", str(runs)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    info = _grok_run(runs, signals=())
    rep = json.loads((info.dir / "invariance.json").read_text())
    assert rep["signals"] == {} and rep["function_preserved"] is True, "signals off: the logits check alone"
    (info.dir / "weights.pt").write_bytes(b"PK\x03\x04 not really a zip")
    assert cli.main(["invariance", info.id, "--runs", str(runs)]) == 2
    err = capsys.readouterr().err
    assert "not a readable weights file" in err and err.count("\n") == 1
    torch.save({"net.embed.weight": torch.zeros(3, 3)}, info.dir / "weights.pt")
    assert cli.main(["invariance", info.id, "--runs", str(runs)]) == 2
    assert "does not fit the run's model" in capsys.readouterr().err
    (info.dir / "weights.pt").unlink()
    assert cli.main(["invariance", info.id, "--runs", str(runs)]) == 2
    assert "has no weights.pt" in capsys.readouterr().err


def test_lottery_checks_the_final_round_and_continues_the_walk_across_rounds(runs):
    import polars as pl

    from phenomon import store

    lt = registry.get("lottery_ticket")
    cfg = lt.resolve(sets=["hidden=16,8", "train_size=200", "test_size=100", "batch_size=50", "epochs=2",
                           "eval_every=2", "target_remaining=0.7"])
    info = runner.run(lt, cfg, runner.RunOptions(root=runs, signals=("weight_norm", "sparsity", "margin")))
    rep = json.loads((info.dir / "invariance.json").read_text())
    rounds = cfg.rounds()
    assert rep["round"] == rounds and rep["function_preserved"] is True and rep["model"] == "MaskedMLP"
    assert rep["signals"]["signal/sparsity/kept"]["base"] < 1.0, "the final round's masks"
    assert rep["signals"]["signal/weight_norm"]["invariant"] is False
    rows = store.read_metrics(info.dir).filter(pl.col("name") == "null/random_walk").sort("round", "step")
    per_round = rows.group_by("round", maintain_order=True).agg(pl.col("value"))["value"].to_list()
    assert len(per_round) == rounds + 1 and per_round[0] != per_round[1], "one walk, not the same walk per round"


def test_double_descent_random_features_run_and_cli(runs, capsys):
    dd = registry.get("double_descent")
    cfg = dd.resolve("teacher", ["width=40"])
    info = runner.run(dd, cfg, runner.RunOptions(root=runs, stream=open("/dev/null", "w")))
    rep = json.loads((info.dir / "invariance.json").read_text())
    assert rep["model"] == "RandomFeatures" and rep["function_preserved"] is True
    assert rep["signals"]["signal/weight_norm"]["invariant"] is False
    assert cli.main(["invariance", info.id, "--runs", str(runs)]) == 0
    assert "RandomFeatures" in capsys.readouterr().out


def test_probe_is_the_callbacks_probe():
    x, y = torch.arange(20.0)[:, None], torch.arange(20)
    a, b = make_probe((x, y), 3, 5), make_probe((x, y), 3, 5)
    assert torch.equal(a.x, b.x) and len(a.y) == 5
