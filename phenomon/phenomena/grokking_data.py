"""Grokking as data grows: a train-fraction sweep on modular arithmetic, the delay per fraction with seed spread.

The position paper's table says grokking is confined to small algorithmic data sets and shrinks as data grows
(Power et al. 2022: the time to generalise rises steeply as the training fraction falls). One run per fraction and
seed (`phenomon run grokking_data` starts the sweep; `--set train_fraction=F` one point); each run is the grokking
phenomenon's model and data, stopped once train ≥ 99% and test ≥ 95% (the rest of the budget repeats a flat curve).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import polars as pl

from phenomon.phenomena import delay
from phenomon.phenomena.grokking import TEST_OK, TRAIN_OK, GrokkingConfig, criterion
from phenomon.registry import Phenomenon, Toggle, Verdict, register
from phenomon.session import Session
from phenomon.store.axis import ConfigField

CLAIM = ("Power et al. 2022 / the position paper: grokking needs small algorithmic data sets; the delay between "
         "memorising and generalising shrinks as the training set grows")


@dataclass(frozen=True)
class GrokkingDataConfig(GrokkingConfig):
    p: int = 59  # 3,481 pairs: a whole sweep × 3 seeds fits in minutes on 2 cores
    train_fraction: float = 0.0  # 0 = the whole sweep over `fractions`
    fractions: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    max_steps: int = 3000
    eval_every: int = 10  # memorisation takes ~20-50 steps: a coarser grid would blur the delay's denominator
    stop_when_generalised: bool = True
    seeds: tuple[int, ...] = (0, 1, 2)

    def validate(self) -> None:
        if self.train_fraction != 0.0 and not 0.0 < self.train_fraction < 1.0:
            raise ValueError(f"train_fraction must be in (0, 1) (0: the whole sweep over fractions), "
                             f"got {self.train_fraction}")
        bad = [f for f in self.fractions if not 0.0 < f < 1.0]
        if bad:
            raise ValueError(f"fractions must each be in (0, 1), got {', '.join(map(str, bad))}")
        if len(set(self.fractions)) < 2:
            raise ValueError(f"a sweep needs at least 2 distinct fractions, got {','.join(map(str, self.fractions))}")
        if not self.seeds:
            raise ValueError("seeds must name at least one seed")
        for f in sorted({self.train_fraction} - {0.0} | set(self.fractions)):
            GrokkingConfig.validate(dataclasses.replace(self, train_fraction=f))


def execute(cfg: GrokkingDataConfig, session: Session) -> None:
    if cfg.train_fraction == 0.0:
        raise ValueError("train_fraction 0 is the whole sweep: `phenomon run grokking_data` starts one run per "
                         "fraction")
    import torch

    from phenomon.callbacks.stop import StopWhenReached
    from phenomon.datamodules.modular import ModularDataModule
    from phenomon.models.grokking import GrokkingModule, build_network

    torch.manual_seed(cfg.seed)
    dm = ModularDataModule(cfg.p, cfg.op, cfg.train_fraction, seed=cfg.seed)
    net = build_network(cfg.model, cfg.p, d_embed=cfg.d_embed, hidden=cfg.hidden, d_model=cfg.d_model,
                        n_heads=cfg.n_heads, d_mlp=cfg.d_mlp)
    module = GrokkingModule(net, cfg.p, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(cfg.beta1, cfg.beta2),
                            init_scale=cfg.init_scale)
    stop = (StopWhenReached({"train/acc": TRAIN_OK, "test/acc": TEST_OK}),) if cfg.stop_when_generalised else ()
    trainer = session.fit(module, dm, max_steps=cfg.max_steps, eval_every=cfg.eval_every, callbacks=stop)
    step = int(trainer.global_step)
    session.out.log_summary({"final/stopped_early": float(step < cfg.max_steps)}, step=step)


def group_criterion(frame: pl.DataFrame, cfg: GrokkingDataConfig) -> Verdict:
    """Each variant's delay against the train fraction (frame: the group's wide rows with `train_fraction`)."""
    d = delay.run_delays(frame, "train_fraction", TRAIN_OK, TEST_OK)
    if d.height == 0:
        return Verdict(None, "no finished run in the group yet")
    variants = sorted(d["toggles"].unique().to_list(), key=lambda v: (v != "", v))
    out = {}
    for v in variants:
        effect, line, nums = delay.judge(d.filter(pl.col("toggles") == v), "train fraction", TEST_OK)
        out[v or "baseline"] = (effect, line, nums)
    head = next(iter(out))
    bar = f"delay = step(test ≥ {TEST_OK:.0%}) / step(train ≥ {TRAIN_OK:.0%}); grokked: delay ≥ {delay.GROKKED:g}×"
    lines = " | ".join((f"{k}: " if len(out) > 1 or k != "baseline" else "") + ln for k, (_, ln, _) in out.items())
    nums = {k: n for k, (_, _, n) in out.items()}
    return Verdict(out[head][0], f"{lines} [{bar}; budget {cfg.max_steps:,} steps]",
                   {**out[head][2], "variants": nums})


PHENOMENON = register(Phenomenon(
    name="grokking_data",
    summary="grokking as data grows: the delay from memorising to generalising against the train fraction "
            "(modular arithmetic, one run per fraction and seed)",
    config_cls=GrokkingDataConfig,
    toggles=(
        Toggle("weight_decay", "w", {"weight_decay": 0.0},
               "weight decay 1.0 → 0: no fraction groks within the budget where it did with decay (Nanda et al.)"),
    ),
    criterion=criterion,
    execute=execute,
    presets={
        "quick": {"fractions": (0.3, 0.5, 0.8), "seeds": (0,), "max_steps": 1500},
    },
    headline=("train/acc", "test/acc"),
    notes="defaults: the grokking MLP (embed 128, hidden 512) on a+b mod 59, AdamW 3e-3 (0.9, 0.98), wd 1, full "
          "batch, fractions 0.2…0.9 × seeds 0,1,2, 3,000 steps, each run stopped once train ≥99% and test ≥95%. "
          + CLAIM + ".",
    x_axis=ConfigField("train_fraction"),
    experiment={"baseline": ()},
    group_criterion=group_criterion,
    outcome="test/acc",
    sweep=lambda cfg: cfg.fractions,
    figures=lambda runs, out, plt: [delay.figure("grokking_data", runs, out, plt, "train_fraction", TRAIN_OK, TEST_OK,
                                               CLAIM)],
))
