"""Omnigrok on digits: the data sizes, α-scaled init, MSE on one-hot targets, the verdicts on hand-made frames, a tiny
real run, and bad input."""

from __future__ import annotations

import polars as pl
import pytest
import torch

from phenomon import cli, registry, runner, store
from phenomon.datamodules.digits import TOTAL, DigitsDataModule
from phenomon.models.omnigrok import OmnigrokModule, scaled_mlp

OG = registry.get("omnigrok")


def test_digits_sizes_are_what_was_asked_and_the_test_set_is_fixed():
    a, b = DigitsDataModule(250, seed=0), DigitsDataModule(1000, seed=1)
    assert a.train[0].shape == (250, 64) and b.train[0].shape == (1000, 64) and a.test[0].shape == (597, 64)
    assert torch.equal(a.test[0], b.test[0]), "every train size and seed meets the same test images"
    assert 0.0 <= float(a.train[0].min()) and float(a.train[0].max()) <= 1.0
    whole = torch.cat([b.train[0], b.test[0]])
    assert len({tuple(r) for r in whole.tolist()}) == len({tuple(r) for r in b.train[0].tolist()}) + \
        len({tuple(r) for r in b.test[0].tolist()}), "train and test share no image"
    assert set(a.train[1].tolist()) == set(range(10))
    with pytest.raises(ValueError, match="train_size must be in 1"):
        DigitsDataModule(TOTAL)


def test_init_scale_multiplies_the_initial_weight_norm_by_alpha():
    torch.manual_seed(0)
    one = scaled_mlp(64, 32, 3, 10)
    torch.manual_seed(0)
    eight = scaled_mlp(64, 32, 3, 10, init_scale=8.0)
    norm = lambda n: torch.sqrt(sum((p ** 2).sum() for p in n.parameters()))  # noqa: E731
    torch.testing.assert_close(norm(eight), 8 * norm(one))
    x = torch.rand(5, 64)
    with torch.no_grad():
        assert float(eight(x).abs().mean()) > 100 * float(one(x).abs().mean()), "outputs grow like α³ (+ biases)"


def test_mse_on_one_hot_targets():
    m = OmnigrokModule(scaled_mlp(4, 8, 2, 3), 3)
    y = torch.tensor([0, 2])
    target = torch.tensor([[1.0, 0, 0], [0, 0, 1.0]])
    assert float(m.loss(target, y)) == 0.0
    out = torch.tensor([[0.0, 0, 0], [0, 0, 3.0]])
    assert float(m.loss(out, y)) == pytest.approx((1 + 4) / 6), "mean over samples and classes (nn.MSELoss)"


def _frame(run, size, seed, t_train, t_test, toggles="", last=3000):
    steps = sorted({50, t_train or last, t_test or last, last})
    return pl.DataFrame({"run": run, "toggles": toggles, "seed": seed, "train_size": size, "step": steps,
                         "train/acc": [1.0 if t_train and s >= t_train else 0.5 for s in steps],
                         "test/acc": [0.95 if t_test and s >= t_test else 0.4 for s in steps]})


def test_run_criterion_grokked_and_undefined():
    cfg = OG.resolve(sets=["train_size=1000"])
    v = OG.criterion(_frame("a", 1000, 0, 200, 1000).drop("run", "train_size"), cfg)
    assert v.effect is True and v.numbers["ratio"] == 5.0 and "5.0×" in v.line
    u = OG.criterion(_frame("a", 1000, 0, 200, None, last=6000).drop("run", "train_size"), cfg)
    assert u.effect is False and u.numbers["ratio"] is None and "delay undefined" in u.line


def test_group_verdict_says_where_large_init_induces_grokking():
    parts = [_frame(f"b{s}{n}", n, s, 200, 1000 if n == 250 else 300) for s in range(3) for n in (250, 1000)]
    parts += [_frame(f"s{s}{n}", n, s, 100, 100, toggles="init_scale") for s in range(3) for n in (250, 1000)]
    v = OG.group_criterion(pl.concat(parts), OG.resolve())
    assert v.effect is True and v.numbers["induced_at"] == [250.0]
    assert "induced by the initialisation at train size 250" in v.line
    none = OG.group_criterion(pl.concat([_frame(f"b{s}", 250, s, 200, 250) for s in range(2)]
                                        + [_frame(f"s{s}", 250, s, 100, 100, "init_scale") for s in range(2)]),
                              OG.resolve())
    assert none.effect is False and "not induced" in none.line


def test_tiny_run_end_to_end(runs):
    cfg = OG.resolve(sets=["train_size=100", "max_steps=20", "eval_every=10", "width=16"])
    info = runner.run(OG, cfg, runner.RunOptions(root=runs, stream=open("/dev/null", "w")))
    assert info.state == "finished", info.manifest.get("error")
    frame = store.wide(store.read_metrics(info.dir))
    assert frame.filter(pl.col("test/acc").is_not_null())["step"].to_list() == [10, 20]
    assert info.manifest["config"]["init_scale"] == 8.0 and info.manifest["verdict"]


@pytest.mark.parametrize("sets, message", [
    (["train_size=5000"], "train sizes must be in 1 … 1200"),
    (["sizes=100,100"], "at least 2 distinct positive sizes"),
    (["init_scale=0"], "init_scale must be positive"),
    (["test_ok=1.5"], "test_ok must be in (0, 1]"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, sets, message):
    argv = ["run", "omnigrok", "--runs", str(tmp_path / "runs")] + [a for s in sets for a in ("--set", s)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
