"""Grokking: the data, the networks, a tiny real run through Lightning, and the verdict on hand-made frames."""

from __future__ import annotations

import math

import polars as pl
import pytest
import torch

from phenomon.datamodules.modular import ModularDataModule, modular_table
from phenomon.models.grokking import OneLayerTransformer
from phenomon import registry, runner, store

GROK = registry.get("grokking")


@pytest.mark.parametrize("op, fn", [("+", lambda a, b: a + b), ("-", lambda a, b: a - b),
                                    ("*", lambda a, b: a * b), ("/", lambda a, b: a * pow(b, -1, 7))])
def test_modular_table(op, fn):
    x, y = modular_table(7, op)
    assert len(y) == (42 if op == "/" else 49)
    assert bool((x[:, 2] == 7).all()), "the '=' token is p"
    for (a, b, _), c in zip(x.tolist(), y.tolist()):
        assert c == fn(a, b) % 7
    if op == "/":
        assert bool((x[:, 1] != 0).all())


def test_modular_split_is_seeded_and_exact():
    a, b = ModularDataModule(23, "+", 0.3, seed=1), ModularDataModule(23, "+", 0.3, seed=1)
    assert torch.equal(a.train[0], b.train[0])
    c = ModularDataModule(23, "+", 0.3, seed=2)
    assert not torch.equal(a.train[0], c.train[0])
    assert len(a.train[1]) == round(0.3 * 23 * 23) and len(a.train[1]) + len(a.test[1]) == 23 * 23
    both = torch.cat([a.train[0], a.test[0]])
    assert len({tuple(r) for r in both.tolist()}) == 23 * 23, "train and test are disjoint"
    with pytest.raises(ValueError, match="prime"):
        ModularDataModule(21)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        ModularDataModule(23, train_fraction=1.0)


def test_transformer_last_position_equals_full_causal_computation():
    torch.manual_seed(0)
    net = OneLayerTransformer(p=11, d_model=16, n_heads=4, d_mlp=32)
    x, _ = modular_table(11, "+")
    B, T = x.shape
    r = net.W_E[x] + net.W_pos[:T]
    q, k, v = (r @ net.W_QKV).split(16, dim=-1)
    q, k, v = (t.view(B, T, 4, 4).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-1, -2) / math.sqrt(4)
    scores = scores.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
    z = (torch.softmax(scores, -1) @ v).transpose(1, 2).reshape(B, T, 16)
    r = r + z @ net.W_O
    r = r + torch.relu(r @ net.W_in + net.b_in) @ net.W_out + net.b_out
    torch.testing.assert_close(net(x), (r @ net.W_U)[:, -1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model", ["mlp", "transformer"])
def test_tiny_run_writes_train_and_test_rows_at_eval_steps(runs, model):
    cfg = GROK.resolve(sets=[f"model={model}", "p=23", "max_steps=30", "eval_every=10", "hidden=32",
                             "d_embed=8", "d_model=16", "d_mlp=32"])
    info = runner.run(GROK, cfg, runner.RunOptions(root=runs))
    assert info.state == "finished", info.manifest.get("error")
    frame = store.wide(store.read_metrics(info.dir))
    evals = frame.filter(pl.col("test/acc").is_not_null())
    assert evals["step"].to_list() == [10, 20, 30]
    for k in ("train/acc", "test/acc", "train/loss", "test/loss"):
        assert evals[k].null_count() == 0
    assert frame.filter(pl.col("signal/weight_norm").is_not_null())["step"].to_list() == [0, 10, 20, 30]
    assert info.manifest["progress"] == {"step": 30, "max_steps": 30}
    assert info.manifest["verdict"]


def test_rows_are_stamped_with_optimiser_steps_by_the_logger_not_by_a_step_metric(runs):
    cfg = GROK.resolve(sets=["p=23", "max_steps=40", "eval_every=8", "hidden=16", "d_embed=8"])
    info = runner.run(GROK, cfg, runner.RunOptions(root=runs, signals=()))
    assert info.state == "finished", info.manifest.get("error")
    rows = store.read_metrics(info.dir)
    assert "step" not in rows["name"].to_list(), "the step is a column, not a metric"
    for name in ("train/acc", "test/acc", "train/loss", "test/loss"):
        steps = rows.filter(pl.col("name") == name)["step"].to_list()
        assert steps == list(range(cfg.eval_every, cfg.max_steps + 1, cfg.eval_every)), name


def test_init_scale_multiplies_the_initial_weights():
    from phenomon.models.grokking import GrokkingModule, build_network

    torch.manual_seed(0)
    a = GrokkingModule(build_network("mlp", 7, d_embed=4, hidden=8), 7)
    torch.manual_seed(0)
    b = GrokkingModule(build_network("mlp", 7, d_embed=4, hidden=8), 7, init_scale=3.0)
    torch.testing.assert_close(b.net.hidden.weight, 3 * a.net.hidden.weight)


def _frame(steps, train, test):
    return pl.DataFrame({"step": steps, "train/acc": train, "test/acc": test})


def test_verdict_grokked():
    cfg = GROK.resolve()
    v = GROK.criterion(_frame([100, 200, 800, 900], [1.0, 1.0, 1.0, 1.0], [0.0, 0.01, 0.96, 0.99]), cfg)
    assert v.effect is True
    assert v.numbers["train_99_step"] == 100 and v.numbers["test_95_step"] == 800 and v.numbers["ratio"] == 8.0
    assert "grokked" in v.line and "8.0×" in v.line


def test_verdict_never_generalised_and_no_delay_and_not_yet():
    cfg = GROK.resolve(sets=["max_steps=1500"])
    never = GROK.criterion(_frame([100, 1500], [1.0, 1.0], [0.0, 0.02]), cfg)
    assert never.effect is False and "no grokking" in never.line and never.numbers["test_95_step"] is None
    fast = GROK.criterion(_frame([100, 150], [1.0, 1.0], [0.5, 0.97]), cfg)
    assert fast.effect is False and "no delay" in fast.line
    pending = GROK.criterion(_frame([100, 300], [1.0, 1.0], [0.0, 0.0]), cfg)
    assert pending.effect is None, "undecided while the budget is not spent"
    assert GROK.criterion(pl.DataFrame(), cfg).effect is None
