"""Grokking off algorithmic data, induced by the initialisation (Liu, Michaud & Tegmark, "Omnigrok", ICLR 2023).

Their MNIST setting: an MLP (width 200, depth 3) on 1,000 images, every initial weight multiplied by α ≈ 8, MSE on
one-hot targets, AdamW with weight decay: it memorises first and generalises much later, once weight decay has shrunk
the norm; at α = 1 it does not delay. MNIST needs a download, so scikit-learn's bundled 8×8 digits stand in. One run
per training-set size and seed (`phenomon run omnigrok` starts the sweep; `--set train_size=N` one point).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import polars as pl

from phenomon.phenomena import delay
from phenomon.registry import Phenomenon, Toggle, Verdict, register
from phenomon.session import Session
from phenomon.store.axis import ConfigField

CLAIM = ("Omnigrok (Liu et al. 2023): a large initialisation (α = 8) makes an MLP on 1,000 images memorise first and "
         "generalise much later; at α = 1 there is no delay, and the delay shrinks as the training set grows")
POOL = 1797 - 597  # digits left for training after the fixed test set


@dataclass(frozen=True)
class OmnigrokConfig:
    train_size: int = 0  # 0 = the whole sweep over `sizes`
    sizes: tuple[int, ...] = (250, 500, 1000, 1200)
    width: int = 200
    depth: int = 3  # Linear layers
    init_scale: float = 8.0  # α: every initial weight and bias times α
    loss: Literal["mse", "ce"] = "mse"
    lr: float = 1e-2
    weight_decay: float = 0.03
    batch_size: int = 0  # 0 = full batch
    max_steps: int = 6000
    eval_every: int = 50
    train_ok: float = 0.99
    test_ok: float = 0.90  # digits: α = 1 reaches ~98% test; 90% marks "generalised"
    stop_when_generalised: bool = True
    seeds: tuple[int, ...] = (0, 1, 2)
    seed: int = 0

    def validate(self) -> None:
        for n in (self.train_size, *self.sizes):
            if n != 0 and not 1 <= n <= POOL or n < 0:
                raise ValueError(f"train sizes must be in 1 … {POOL} (digits left after the 597 test images; "
                                 f"train_size 0: the whole sweep), got {n}")
        if 0 in self.sizes or len(set(self.sizes)) < 2:
            raise ValueError(f"a sweep needs at least 2 distinct positive sizes, got {','.join(map(str, self.sizes))}")
        for k in ("lr", "init_scale"):
            if not getattr(self, k) > 0:
                raise ValueError(f"{k} must be positive, got {getattr(self, k)}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        for k in ("width", "depth", "max_steps", "eval_every"):
            if getattr(self, k) < 1:
                raise ValueError(f"{k} must be a positive integer, got {getattr(self, k)}")
        if self.batch_size < 0 or self.batch_size > min(n for n in (self.train_size, *self.sizes) if n):
            raise ValueError(f"batch_size must be 0 (full batch) or at most the smallest train size, got "
                             f"{self.batch_size}")
        for k in ("train_ok", "test_ok"):
            if not 0.0 < getattr(self, k) <= 1.0:
                raise ValueError(f"{k} must be in (0, 1], got {getattr(self, k)}")
        if not self.seeds:
            raise ValueError("seeds must name at least one seed")


def criterion(frame: pl.DataFrame, cfg: OmnigrokConfig) -> Verdict:
    """One run: the first steps with train ≥ train_ok and test ≥ test_ok and their ratio (the grokking delay)."""
    if frame.height == 0 or not {"train/acc", "test/acc"} <= set(frame.columns):
        return Verdict(None, "no evaluations yet")
    d = delay.run_delays(frame.with_columns(run=pl.lit("r"), train_size=pl.lit(cfg.train_size)), "train_size",
                         cfg.train_ok, cfg.test_ok)
    if d.height == 0:
        return Verdict(None, "no evaluations yet")
    r = d.row(0, named=True)
    nums = {"train_99_step": r["t_train"], "test_95_step": r["t_test"], "best_test_acc": r["best_test"],
            "last_step": r["last"], "ratio": r["delay"]}
    done = r["last"] >= cfg.max_steps or (r["t_test"] is not None and r["t_train"] is not None)
    bars = f"train ≥{cfg.train_ok:.0%}, test ≥{cfg.test_ok:.0%}"
    if r["t_train"] is None or r["t_test"] is None:
        what = "has not memorised" if r["t_train"] is None else f"memorised at step {r['t_train']}"
        return Verdict(False if done else None, f"{what}; test never ≥{cfg.test_ok:.0%} by step {r['last']} (best "
                                                f"{r['best_test']:.1%}): delay undefined", nums)
    grokked = r["delay"] >= delay.GROKKED
    return Verdict(grokked, f"{'grokked' if grokked else 'no delay to speak of'}: {bars} at steps {r['t_train']} / "
                            f"{r['t_test']} ({r['delay']:.1f}×)", nums)


def execute(cfg: OmnigrokConfig, session: Session) -> None:
    if cfg.train_size == 0:
        raise ValueError("train_size 0 is the whole sweep: `phenomon run omnigrok` starts one run per size")
    import torch

    from phenomon.callbacks.stop import StopWhenReached
    from phenomon.datamodules.digits import DigitsDataModule
    from phenomon.models.omnigrok import OmnigrokModule, scaled_mlp

    torch.manual_seed(cfg.seed)
    dm = DigitsDataModule(cfg.train_size, seed=cfg.seed, batch_size=cfg.batch_size or None)
    module = OmnigrokModule(scaled_mlp(64, cfg.width, cfg.depth, dm.num_classes, cfg.init_scale), dm.num_classes,
                            lr=cfg.lr, weight_decay=cfg.weight_decay, loss=cfg.loss)
    stop = ((StopWhenReached({"train/acc": cfg.train_ok, "test/acc": cfg.test_ok}),) if cfg.stop_when_generalised
            else ())
    session.fit(module, dm, max_steps=cfg.max_steps, eval_every=cfg.eval_every, callbacks=stop)


def group_criterion(frame: pl.DataFrame, cfg: OmnigrokConfig) -> Verdict:
    """Per variant: the delay against the train size; then large α against standard α at each size."""
    d = delay.run_delays(frame, "train_size", cfg.train_ok, cfg.test_ok)
    if d.height == 0:
        return Verdict(None, "no finished run in the group yet")
    variants = sorted(d["toggles"].unique().to_list(), key=lambda v: (v != "", v))
    out = {(v or "baseline"): delay.judge(d.filter(pl.col("toggles") == v), "train size", cfg.test_ok)
           for v in variants}
    pts = delay.points(d)
    # the paper's claim at each size: large α groks (every seed's delay ≥ GROKKED), standard α does not
    induced = []
    if "init_scale" in variants and "" in variants:
        for x in sorted(set(pts["x"].to_list())):
            big = pts.filter((pl.col("toggles") == "") & (pl.col("x") == x)).to_dicts()
            std = pts.filter((pl.col("toggles") == "init_scale") & (pl.col("x") == x)).to_dicts()
            if big and std:
                b, s = big[0], std[0]
                induced.append((x, b["n_grokked"] == b["n"] and s["n_grokked"] == 0 and s["n_defined"] == s["n"]))
    bar = (f"delay = step(test ≥ {cfg.test_ok:.0%}) / step(train ≥ {cfg.train_ok:.0%}); grokked: delay ≥ "
           f"{delay.GROKKED:g}×; budget {cfg.max_steps:,} steps; α = {cfg.init_scale:g} (baseline) vs 1 (init_scale)")
    body = " | ".join(f"{k}: {ln}" for k, (_, ln, _) in out.items())
    nums = {"variants": {k: n for k, (_, _, n) in out.items()}, "induced_at": [x for x, ok in induced if ok]}
    if not induced:
        head = out[next(iter(out))]
        return Verdict(None, f"needs the baseline and init_scale variants to test the claim; {body} [{bar}]", nums)
    at = [f"{x:g}" for x, ok in induced if ok]
    effect = any(ok for _, ok in induced)
    head = (f"induced by the initialisation at train size {', '.join(at)} (α = {cfg.init_scale:g} groks in every "
            f"seed, α = 1 in none)" if effect else
            f"not induced: at no train size does α = {cfg.init_scale:g} grok in every seed while α = 1 does not")
    return Verdict(effect, f"{head}; {body} [{bar}]", nums)


PHENOMENON = register(Phenomenon(
    name="omnigrok",
    summary="grokking off algorithmic data: a large initialisation makes an MLP on 8×8 digits memorise first and "
            "generalise later (Omnigrok); one run per train size",
    config_cls=OmnigrokConfig,
    toggles=(
        Toggle("init_scale", "i", {"init_scale": 1.0},
               "init scale α 8 → 1: no delay, test follows train (Omnigrok: the norm starts in the Goldilocks zone)"),
        Toggle("weight_decay", "w", {"weight_decay": 0.0},
               "weight decay → 0: the norm cannot shrink, so generalisation is delayed further or never comes"),
    ),
    criterion=criterion,
    execute=execute,
    presets={"quick": {"sizes": (250, 1000), "seeds": (0,), "max_steps": 3000}},
    headline=("train/acc", "test/acc"),
    notes="defaults: sklearn 8×8 digits (597 fixed test images; train sizes 250…1200 from the rest), MLP 64-200-200-10 "
          "with every initial parameter ×8, MSE on one-hot targets, AdamW, full batch; each run stops once train "
          "≥99% and test ≥90%. " + CLAIM + ".",
    x_axis=ConfigField("train_size"),
    experiment={"baseline": (), "init_scale": ("init_scale",)},
    group_criterion=group_criterion,
    outcome="test/acc",
    sweep=lambda cfg: cfg.sizes,
    figures=lambda runs, out, plt: [delay.figure("omnigrok", runs, out, plt, "train_size", OmnigrokConfig.train_ok,
                                               OmnigrokConfig.test_ok, CLAIM)],
))
