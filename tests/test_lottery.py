"""Lottery tickets: mask arithmetic, masks through optimiser steps, rewinding, reinit, the store, the verdicts."""

from __future__ import annotations

import polars as pl
import pytest
import torch

from phenomon.models.lottery import LotteryModule, MaskedMLP, check_masks, keep_counts, keep_schedule, topk_masks
from phenomon import registry, runner, store
from phenomon.config import UsageError
from phenomon.phenomena.lottery_ticket.config import LotteryConfig
from phenomon.phenomena.lottery_ticket.masks import load_masks, save_masks
from phenomon.phenomena.lottery_ticket.training import next_masks
from phenomon.phenomena.lottery_ticket.verdict import group_criterion

LT = registry.get("lottery_ticket")
SMALL = ["hidden=16,8", "train_size=200", "test_size=100", "batch_size=50", "epochs=2", "eval_every=2",
         "target_remaining=0.7"]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("PHENOMON_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _net(seed=0, hidden=(16, 8)):
    torch.manual_seed(seed)
    return MaskedMLP(40, hidden, 10)


def _weights(net: MaskedMLP) -> dict[str, torch.Tensor]:
    """The prunable weights by mask name ("layers.<i>.weight"); biases stay dense."""
    return {k: p for k, p in net.named_parameters() if k.endswith(".weight")}


# ------------------------------------------------------------------------------------------ mask arithmetic


def test_each_round_removes_the_fraction_of_the_remaining_weights():
    assert keep_schedule(1000, 0.2, 3) == [1000, 800, 640, 512]
    assert keep_schedule(10, 0.5, 5)[-1] == 1, "never below one weight"
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        keep_schedule(10, 1.0, 1)
    net = _net()
    shapes = {k: tuple(v.shape) for k, v in _weights(net).items()}
    masks = net.masks()
    for rnd in (1, 2, 3):
        counts = keep_counts(shapes, 0.2, 0.1, "layer", rnd)
        new = topk_masks({k: w.abs() for k, w in _weights(net).items()}, masks, counts)
        for k, prev in masks.items():
            n_prev = int(prev.sum())
            rate = 0.1 if k == "layers.2.weight" else 0.2
            assert int(new[k].sum()) == n_prev - round(n_prev * rate)
            assert bool((new[k] <= prev).all()), "nested: a pruned weight never returns"
        masks = new


def test_magnitude_pruning_keeps_the_largest_survivors_per_layer_or_globally():
    net = _net()
    shapes = {k: tuple(v.shape) for k, v in _weights(net).items()}
    scores = {k: w.detach().abs() for k, w in _weights(net).items()}
    m = topk_masks(scores, None, keep_counts(shapes, 0.5, 0.5, "layer", 1))
    for k, w in _weights(net).items():
        assert float(w.detach().abs()[m[k]].min()) >= float(w.detach().abs()[~m[k]].max())
    g = topk_masks(scores, None, keep_counts(shapes, 0.5, 0.1, "global", 1))
    hidden = ["layers.0.weight", "layers.1.weight"]
    kept = torch.cat([scores[k][g[k]] for k in hidden])
    dropped = torch.cat([scores[k][~g[k]] for k in hidden])
    assert float(kept.min()) >= float(dropped.max()), "one threshold across the pooled hidden layers"
    assert sum(int(g[k].sum()) for k in hidden) == (640 + 128) // 2
    assert int(g["layers.2.weight"].sum()) == 80 - 8


# ------------------------------------------------------------------------------------------ masks in training


@pytest.mark.parametrize("optimizer, wd", [("sgd", 0.1), ("adam", 0.1)])
def test_pruned_weights_stay_zero_through_optimiser_steps(optimizer, wd):
    import pytorch_lightning as L

    from phenomon.datamodules.mnist1d import MNIST1DDataModule

    net = _net()
    shapes = {k: tuple(v.shape) for k, v in _weights(net).items()}
    net.set_masks(topk_masks({k: w.abs() for k, w in _weights(net).items()}, None,
                             keep_counts(shapes, 0.5, 0.5, "layer", 2)))
    before = {k: w.clone() for k, w in _weights(net).items()}
    module = LotteryModule(net, optimizer, lr=0.05, momentum=0.9, weight_decay=wd)
    dm = MNIST1DDataModule(train_size=100, test_size=20, batch_size=20)
    L.Trainer(max_steps=15, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, limit_val_batches=0, accelerator="cpu").fit(module, datamodule=dm)
    for k, w in _weights(net).items():
        m = net.masks()[k]
        assert bool((w[~m] == 0).all()), f"{k}: a pruned weight moved"
        assert not torch.equal(w[m], before[k][m]), f"{k}: survivors should train"


def test_masks_survive_state_dict_and_mismatches_are_one_line_errors(tmp_path):
    net = _net()
    masks = {k: torch.rand(m.shape) > 0.5 for k, m in net.masks().items()}
    net.set_masks(masks)
    other = _net(seed=1)
    other.load_state_dict(net.state_dict())
    for k in masks:
        assert torch.equal(other.masks()[k], masks[k])
    save_masks(tmp_path / "m.pt", masks)
    loaded = load_masks(tmp_path / "m.pt", {k: tuple(v.shape) for k, v in masks.items()})
    assert all(torch.equal(loaded[k], masks[k]) for k in masks)
    with pytest.raises(ValueError, match="does not fit") as e:
        load_masks(tmp_path / "m.pt", {k: tuple(v.shape) for k, v in _net(hidden=(8, 8)).masks().items()})
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="masks do not fit"):
        check_masks(_net(hidden=(8, 8)), masks)
    with pytest.raises(ValueError, match="no file"):
        load_masks(tmp_path / "absent.pt", {})


def _fit(net, steps, callbacks=()):
    import pytorch_lightning as L

    from phenomon.datamodules.mnist1d import MNIST1DDataModule

    dm = MNIST1DDataModule(train_size=100, test_size=20, batch_size=20)
    L.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, limit_val_batches=0, accelerator="cpu",
              callbacks=list(callbacks)).fit(LotteryModule(net, "sgd", lr=0.1), datamodule=dm)
    return {k: v.detach().clone() for k, v in net.named_parameters()}


def test_rewind_restores_exactly_the_saved_survivor_values():
    from phenomon.callbacks.pruning import Snapshot
    from phenomon.phenomena.lottery_ticket.training import new_net, rewound

    cfg = LotteryConfig(hidden=(16, 8))
    snap = Snapshot(3)
    after6 = _fit(new_net(cfg, cfg.seed), 6, [snap])
    after3 = _fit(new_net(cfg, cfg.seed), 3)
    assert all(torch.equal(snap.state[k], after3[k]) for k in after3), "the snapshot is the weights at step 3"
    assert not torch.equal(snap.state["layers.0.weight"], after6["layers.0.weight"])
    masks = {k: torch.rand(m.shape) > 0.3 for k, m in new_net(cfg, 0).masks().items()}
    net = rewound(cfg, snap.state, masks)
    for k, w in _weights(net).items():
        assert torch.equal(w[masks[k]], snap.state[k][masks[k]]), "survivors carry exactly the saved values"
        assert bool((w[~masks[k]] == 0).all())
    bias = dict(net.named_parameters())["layers.0.bias"]
    assert torch.equal(bias, snap.state["layers.0.bias"])


def test_reinit_uses_the_same_masks_with_new_values(runs):
    from phenomon.phenomena.lottery_ticket.training import new_net, reinitialised

    cfg = LotteryConfig(hidden=(16, 8))
    theta0 = dict(new_net(cfg, cfg.seed).named_parameters())
    masks = {k: torch.rand(m.shape) > 0.3 for k, m in new_net(cfg, 0).masks().items()}
    a, b = reinitialised(cfg, 1, masks), reinitialised(cfg, 2, masks)
    for k in masks:
        assert torch.equal(a.masks()[k], masks[k])
        wa, wb = _weights(a)[k], _weights(b)[k]
        assert bool((wa[~masks[k]] == 0).all())
        assert not torch.equal(wa[masks[k]], theta0[k][masks[k]]) and not torch.equal(wa, wb)
    # in a run: the reinit control trains exactly the ticket's masks, found by the lineage trained beside it
    re = runner.run(LT, LT.resolve(sets=SMALL, toggles=["reinit"]), runner.RunOptions(root=runs))
    base = runner.run(LT, LT.resolve(sets=SMALL), runner.RunOptions(root=runs))
    for rnd in ("00", "01"):
        x = torch.load(re.dir / "masks" / f"round_{rnd}.pt", weights_only=True)
        y = torch.load(base.dir / "masks" / f"round_{rnd}.pt", weights_only=True)
        assert all(torch.equal(x[k], y[k]) for k in x)
    rows = store.wide(store.read_metrics(re.dir))
    assert "imp/round/test_acc" in rows.columns
    ticket = store.wide(store.read_metrics(base.dir)).filter(pl.col("round") == 1)["round/test_acc"].drop_nulls()
    assert rows.filter(pl.col("round") == 1)["imp/round/test_acc"].drop_nulls().to_list() == ticket.to_list()


def test_next_masks_variants_share_counts_and_differ_in_scores():
    cfg = LotteryConfig(hidden=(16, 8))
    net = _net()
    trained = {k: w.detach() + 0.3 * torch.randn_like(w) for k, w in _weights(net).items()}
    theta0 = {k: w.detach().clone() for k, w in _weights(net).items()}
    prev = {k: torch.ones_like(m) for k, m in net.masks().items()}
    counts = keep_counts(cfg.shapes(), 0.2, 0.1, "layer", 1)
    out = {}
    for by in ("magnitude", "one_shot", "init", "random"):
        c = LotteryConfig(hidden=(16, 8), prune_by=by)
        out[by] = next_masks(c, 1, prev, trained, trained, theta0, counts)
        assert [int(v.sum()) for v in out[by].values()] == [k for _, k in counts]
    assert all(torch.equal(out["magnitude"][k], out["one_shot"][k]) for k in prev), "same scores at round 1"
    assert not all(torch.equal(out["magnitude"][k], out["init"][k]) for k in prev)
    assert not all(torch.equal(out["magnitude"][k], out["random"][k]) for k in prev)


# ------------------------------------------------------------------------------------------ runs and the store


def test_tiny_end_to_end_two_rounds_write_round_rows_and_masks(runs):
    cfg = LT.resolve(sets=SMALL + ["target_remaining=0.66"])
    assert cfg.rounds() == 2
    info = runner.run(LT, cfg, runner.RunOptions(root=runs))
    assert info.state == "finished", info.manifest.get("error")
    rows = store.read_metrics(info.dir)
    assert sorted(rows["round"].unique().to_list()) == [0, 1, 2]
    f = store.wide(rows)
    per_round = f.filter(pl.col("weights_remaining").is_not_null()).sort("round")
    assert per_round["weights_remaining"][0] == 1.0
    assert per_round["weights_remaining"].to_list() == sorted(per_round["weights_remaining"].to_list(), reverse=True)
    for k in ("round/test_acc", "round/early_stop_step", "time/step_ms", "remaining/layers.0"):
        assert per_round[k].null_count() == 0, k
    curves = f.filter(pl.col("test/acc").is_not_null())
    assert curves.group_by("round").len()["len"].min() >= 2, "accuracy-vs-step curves within each round"
    steps = curves.group_by("round").agg(pl.col("step").sort())["step"].to_list()
    assert steps == [[2, 4, 6, 8]] * 3, "every round restarts at step 0: evaluations at eval_every 2 of its 8 steps"
    assert "step" not in rows["name"].to_list(), "the step is a column, not a metric"
    assert sorted(p.name for p in (info.dir / "masks").iterdir()) == ["round_00.pt", "round_01.pt", "round_02.pt"]
    assert info.manifest["verdict"]


@pytest.mark.parametrize("toggle", ["reinit", "random_prune", "prune_at_init", "one_shot", "rewind"])
def test_every_variant_runs_through_the_same_code_path(runs, toggle):
    more = ["epochs=21"] if toggle == "rewind" else []  # rewind step 80 must fall inside a round
    cfg = LT.resolve(sets=SMALL + ["target_remaining=0.66", "scope=global", *more], toggles=[toggle])
    info = runner.run(LT, cfg, runner.RunOptions(root=runs, signals=()))
    assert info.state == "finished", info.manifest.get("error")
    assert info.manifest["toggles"] == [toggle]
    f = store.wide(store.read_metrics(info.dir)).filter(pl.col("weights_remaining").is_not_null())
    assert f["round"].to_list() == [0, 1, 2]


def test_off_global_rank_zero_a_run_trains_but_writes_nothing(runs, monkeypatch):
    from pytorch_lightning.utilities import rank_zero_only

    monkeypatch.setattr(rank_zero_only, "rank", 1)  # a DDP worker: rank zero owns the run directory
    assert runner.run(LT, LT.resolve(sets=SMALL), runner.RunOptions(root=runs, signals=())) is None
    assert list(runs.iterdir()) == [], "no run directory, no rows, no masks"


def test_saved_masks_can_be_trained_again(runs):
    base = runner.run(LT, LT.resolve(sets=SMALL), runner.RunOptions(root=runs, signals=()))
    path = base.dir / "masks" / "round_01.pt"
    info = runner.run(LT, LT.resolve(sets=SMALL + [f"masks_from={path}", "seed=3"]), runner.RunOptions(root=runs))
    f = store.wide(store.read_metrics(info.dir)).filter(pl.col("weights_remaining").is_not_null())
    assert f["round"].to_list() == [1] and "loaded masks" in info.manifest["verdict"]


def test_experiment_command_rejects_bad_input_before_starting_anything(runs, capsys):
    from phenomon.cli import main

    for argv, msg in ((["experiment", "grokking", "--variants", "baseline,nope"], "unknown variant 'nope'"),
                      (["experiment", "lottery_ticket", "--variants", "ticket,nope"], "unknown variant 'nope'"),
                      (["experiment", "lottery_ticket", "--seeds", "a"], "--seeds expects"),
                      (["experiment", "lottery_ticket", "--set", "prune_rate=2"], "prune_rate must be in")):
        assert main([*argv, "--runs", str(runs)]) == 2
        assert msg in capsys.readouterr().err
    assert not runs.exists() or not any(runs.iterdir())


@pytest.mark.parametrize("sets, msg", [
    (["prune_rate=1.5"], "prune_rate must be in (0, 1)"),
    (["prune_rate=0"], "prune_rate must be in (0, 1)"),
    (["target_remaining=0.0001", "max_rounds=5"], "unreachable"),
    (["rewind_step=100000"], "rewind_step must be in"),
    (["masks_from=/nonexistent/m.pt"], "no file"),
])
def test_bad_input_is_one_line_and_touches_nothing(runs, sets, msg):
    with pytest.raises(UsageError, match=msg.replace("(", r"\(").replace(")", r"\)")) as e:
        LT.resolve(sets=sets)
    assert "\n" not in str(e.value)


def test_cli_rejects_mismatched_masks_with_exit_2_and_no_run(runs, tmp_path):
    from tests.conftest import phenomon

    net = _net(hidden=(8, 8))
    save_masks(tmp_path / "m.pt", net.masks())
    before = sorted(runs.iterdir()) if runs.exists() else []
    r = phenomon("run", "lottery_ticket", "--set", f"masks_from={tmp_path / 'm.pt'}", "--runs", str(runs))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "does not fit" in r.stderr
    assert (sorted(runs.iterdir()) if runs.exists() else []) == before


# ------------------------------------------------------------------------------------------ verdicts


def _group(curves: dict[str, list[float]], dense=0.60, seeds=(0, 1, 2), jitter=0.004) -> pl.DataFrame:
    rem = [1.0, 0.8, 0.64, 0.51, 0.41, 0.33, 0.27, 0.22, 0.17, 0.14]
    rows = []
    for variant, accs in curves.items():
        toggles = "" if variant == "ticket" else variant
        for s in seeds:
            for rnd, (r, a) in enumerate(zip(rem, [dense, *accs])):
                rows.append({"run": f"{variant}-{s}", "toggles": toggles, "seed": s, "round": rnd, "step": 800,
                             "weights_remaining": r, "round/test_acc": a + jitter * (s - 1), "time/step_ms": 1.0})
    return pl.DataFrame(rows)


def test_group_verdict_winning_ticket():
    ticket = [0.60, 0.61, 0.62, 0.62, 0.62, 0.62, 0.61, 0.60, 0.55]
    reinit = [0.595, 0.58, 0.56, 0.55, 0.54, 0.52, 0.51, 0.50, 0.48]
    rand = [0.59, 0.57, 0.55, 0.53, 0.51, 0.49, 0.48, 0.47, 0.45]
    v = group_criterion(_group({"ticket": ticket, "reinit": reinit, "random_prune": rand}), LotteryConfig())
    assert v.effect is True, v.line
    assert v.numbers["sparsest_match"] == 0.17 and v.numbers["seeds"] == 3
    assert v.numbers["reinit_acc"] == pytest.approx(0.50) and v.numbers["gap_reinit_at_sparsest"] > 0.09
    assert "17.0%" in v.line and "reinit 0.500" in v.line


def test_group_verdict_no_ticket_when_controls_match_or_ticket_falls_off_or_controls_missing():
    same = [0.60, 0.60, 0.60, 0.60, 0.60, 0.60, 0.60, 0.60, 0.60]
    v = group_criterion(_group({"ticket": same, "reinit": same, "random_prune": same}), LotteryConfig())
    assert v.effect is False and "control matches dense" in v.line
    early = [0.60, 0.58, 0.55, 0.53, 0.50, 0.48, 0.46, 0.44, 0.40]
    v = group_criterion(_group({"ticket": early, "reinit": early, "random_prune": early}), LotteryConfig())
    assert v.effect is False
    v = group_criterion(_group({"ticket": same}), LotteryConfig())
    assert v.effect is None and "reinit" in v.line


def test_group_variants_ignore_toggles_every_run_shares():
    ticket = [0.60, 0.61, 0.62, 0.62, 0.62, 0.62, 0.61, 0.60, 0.55]
    low = [0.58, 0.56, 0.55, 0.54, 0.52, 0.51, 0.50, 0.49, 0.47]
    f = _group({"ticket": ticket, "reinit": low, "random_prune": low})
    f = f.with_columns(pl.when(pl.col("toggles") == "").then(pl.lit("rewind"))
                       .otherwise(pl.col("toggles") + ",rewind").alias("toggles"))
    assert group_criterion(f, LotteryConfig()).effect is True


def test_run_verdict_on_hand_made_frames():
    cfg = LotteryConfig()
    rem = [1.0, 0.5, 0.2, 0.1]
    f = pl.DataFrame({"round": [0, 1, 2, 3], "step": [800] * 4, "weights_remaining": rem,
                      "round/test_acc": [0.60, 0.62, 0.595, 0.50], "round/early_stop_step": [600.0] * 4,
                      "time/step_ms": [1.0, 1.0, 1.1, 1.05]})
    v = LT.criterion(f, cfg)
    assert v.effect is True and v.numbers["sparsest_match"] == 0.2 and v.numbers["step_ms_sparse"] == 1.05
    v = LT.criterion(f.with_columns(pl.Series("round/test_acc", [0.60, 0.55, 0.59, 0.6])), cfg)
    assert v.effect is None and v.numbers["sparsest_match"] == 1.0, "not all rounds done: undecided"
    assert LT.criterion(pl.DataFrame(), cfg).effect is None


@pytest.mark.slow
def test_default_experiment_finds_a_winning_ticket(runs):
    """The default experiment (ticket, reinit, random_prune × 3 seeds, parallel): the group criterion holds."""
    from phenomon.experiment import group_verdict
    from tests.conftest import phenomon

    r = phenomon("experiment", "lottery_ticket", "--runs", str(runs), timeout=1800)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    group = LT.group_of(LT.resolve())
    v = group_verdict(LT, runs, group)
    assert v.effect is True, v.line
    assert v.numbers["sparsest_match"] <= 0.2 and v.numbers["seeds"] == 3
