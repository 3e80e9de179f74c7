"""Lottery tickets: iterative magnitude pruning with rewinding, against the controls that make it a finding.

One run holds every round of one variant (the `round` column; round 0 is the dense network). The variants are
toggles of one code path: where the masks come from (`prune_by`), where the survivors start (`reinit`,
`rewind_step`). A ticket is only a finding next to its controls, so the group criterion reads the runs of a
comparison group (`phenomon experiment lottery_ticket`: ticket, reinit and random pruning over 3 seeds).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl

from phenomon.store.axis import RoundMetric
from phenomon.registry import Phenomenon, Toggle, Verdict, register

MATCH = 0.01  # "within one point of the dense network"
LEVEL = 0.20  # the ticket must match down to at least this fraction of weights
LAST_EVALS = 3  # a round's accuracy: mean of its last evaluations (one evaluation is noisy by ±1-3 points)
D_IN, D_OUT = 40, 10  # MNIST-1D


@dataclass(frozen=True)
class LotteryConfig:
    hidden: tuple[int, ...] = (300, 100)
    init: Literal["default", "glorot", "kaiming"] = "default"
    train_size: int = 4000
    test_size: int = 1000
    data_seed: int = 42
    batch_size: int = 100
    epochs: int = 20  # per round
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0
    prune_rate: float = 0.2  # of the remaining weights, per round
    prune_rate_output: float = 0.1
    scope: Literal["layer", "global"] = "layer"
    target_remaining: float = 0.02  # prune until at most this fraction of weights remains
    max_rounds: int = 25
    prune_by: Literal["magnitude", "one_shot", "init", "random"] = "magnitude"
    reinit: bool = False
    rewind_step: int = 0
    masks_from: str = ""  # a saved masks file: train it once (this seed's init, or reinit), no pruning
    eval_every: int = 40
    seed: int = 0

    @property
    def steps_per_round(self) -> int:
        return self.epochs * max(1, self.train_size // self.batch_size)

    def shapes(self) -> dict[str, tuple[int, int]]:
        sizes = [D_IN, *self.hidden, D_OUT]
        return {f"layers.{i}.weight": (b, a) for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))}

    def rounds(self) -> int:
        """Pruning rounds after the dense one: the first that leaves at most `target_remaining` of the weights."""
        from phenomon.models.lottery import remaining_after

        if self.masks_from:
            return 1
        for r in range(1, self.max_rounds + 1):
            if remaining_after(self.shapes(), self.prune_rate, self.prune_rate_output, self.scope, r) \
                    <= self.target_remaining + 1e-12:
                return r
        best = remaining_after(self.shapes(), self.prune_rate, self.prune_rate_output, self.scope, self.max_rounds)
        raise ValueError(f"target_remaining={self.target_remaining} is unreachable: {self.max_rounds} rounds at "
                         f"prune_rate {self.prune_rate} leave {best:.2%} (raise max_rounds or prune_rate)")

    def validate(self) -> None:
        for k in ("prune_rate", "prune_rate_output"):
            if not 0.0 < getattr(self, k) < 1.0:
                raise ValueError(f"{k} must be in (0, 1), got {getattr(self, k)}")
        if not 0.0 < self.target_remaining < 1.0:
            raise ValueError(f"target_remaining must be in (0, 1), got {self.target_remaining}")
        for k in ("train_size", "test_size", "batch_size", "epochs", "max_rounds", "eval_every"):
            if getattr(self, k) < 1:
                raise ValueError(f"{k} must be a positive integer, got {getattr(self, k)}")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden must be positive layer widths, got {self.hidden}")
        if self.batch_size > self.train_size:
            raise ValueError(f"batch_size ({self.batch_size}) exceeds train_size ({self.train_size})")
        if not self.lr > 0 or self.weight_decay < 0 or not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"need lr > 0, weight_decay >= 0, momentum in [0, 1); got {self.lr}, "
                             f"{self.weight_decay}, {self.momentum}")
        if not 0 <= self.rewind_step < self.steps_per_round:
            raise ValueError(f"rewind_step must be in [0, {self.steps_per_round}) (steps per round: epochs × "
                             f"train_size // batch_size), got {self.rewind_step}")
        self.rounds()
        if self.masks_from:
            load_masks(self.masks_from, self.shapes())


# ------------------------------------------------------------------------------------------ masks on disk


def save_masks(path: Path, masks) -> None:
    """Plain tensors only, written under a temporary name and renamed (a reader never sees a torn file)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save({k: v.detach().cpu() for k, v in masks.items()}, tmp)
    os.replace(tmp, path)


def load_masks(path: str | Path, shapes: dict[str, tuple[int, ...]]):
    """Masks saved by a run (`weights_only`: never unpickles objects); a one-line ValueError if they do not fit."""
    import torch

    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"masks_from: no file {path}") from None
    except Exception as e:  # noqa: BLE001 - anything unreadable is the same one-line mistake
        raise ValueError(f"masks_from: {path} is not a masks file ({e.__class__.__name__})") from None
    if not isinstance(raw, dict) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise ValueError(f"masks_from: {path} does not hold a dict of tensors")
    got = {k: tuple(v.shape) for k, v in raw.items()}
    if got != {k: tuple(v) for k, v in shapes.items()}:
        raise ValueError(f"masks_from: {path} does not fit hidden layers: masks {got} vs network "
                         f"{dict(shapes)}")
    return {k: v.bool() for k, v in raw.items()}


# ------------------------------------------------------------------------------------------ verdicts


def round_table(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per round: the summary rows each round writes at its end."""
    cols = ["round", "weights_remaining", "round/test_acc", "round/early_stop_step", "time/step_ms"]
    if frame.height == 0 or any(c not in frame.columns for c in cols):
        return pl.DataFrame(schema={c: pl.Float64 for c in cols})
    return frame.filter(pl.col("weights_remaining").is_not_null()).select(cols).sort("round")


def sparsest_match(rounds: pl.Series, remaining: pl.Series, acc: pl.Series, dense: float) -> int:
    """Index of the sparsest level reached from dense without dropping more than MATCH below dense accuracy."""
    best = 0
    for i, a in enumerate(acc.to_list()):
        if a is None or a < dense - MATCH - 1e-12:
            break
        best = i
    return best


def _step_ms(t: pl.DataFrame) -> tuple[float | None, float | None, float | None]:
    """Median step time of the dense round and of the round nearest 10% of weights remaining."""
    if t.height < 2:
        return None, None, None
    dense = t["time/step_ms"][0]
    near = t.slice(1).with_columns((pl.col("weights_remaining") - 0.1).abs().alias("d")).sort("d").row(0, named=True)
    return dense, near["time/step_ms"], near["weights_remaining"]


def criterion(frame: pl.DataFrame, cfg: LotteryConfig) -> Verdict:
    """This run's own curve: how far it stays within one point of its dense round (True when down to ≤ 20%)."""
    t = round_table(frame)
    if t.height == 0:
        return Verdict(None, "no finished round yet")
    if t["round"][0] != 0:
        r = t.row(-1, named=True)
        return Verdict(None, f"trained the loaded masks: test acc {r['round/test_acc']:.3f} at "
                             f"{r['weights_remaining']:.1%} of weights", {"test_acc": r["round/test_acc"]})
    dense = t["round/test_acc"][0]
    i = sparsest_match(t["round"], t["weights_remaining"], t["round/test_acc"], dense)
    s, a = t["weights_remaining"][i], t["round/test_acc"][i]
    last = t.row(-1, named=True)
    ms_dense, ms_sparse, rem_sparse = _step_ms(t)
    nums = {"dense_acc": dense, "sparsest_match": s, "acc_at_sparsest": a, "rounds_done": t.height - 1,
            "final_remaining": last["weights_remaining"], "final_acc": last["round/test_acc"],
            "step_ms_dense": ms_dense, "step_ms_sparse": ms_sparse, "sparse_remaining": rem_sparse}
    line = f"within 1 pt of its dense acc {dense:.3f} down to {s:.1%} of weights ({a:.3f})"
    if t.height > 1:
        line += f"; {last['round/test_acc']:.3f} at {last['weights_remaining']:.1%}"
    if ms_dense is not None:
        line += f"; step {ms_dense:.2f} ms dense vs {ms_sparse:.2f} ms at {rem_sparse:.0%} weights"
    done = t.height - 1 >= cfg.rounds()
    if s <= LEVEL + 1e-9:
        return Verdict(True, "matches dense: " + line, nums)
    return Verdict(False if done else None, ("not down to 20%: " if done else "so far ") + line, nums)


def with_variants(frame: pl.DataFrame) -> pl.DataFrame:
    """A `variant` column: the run's toggles minus those every run shares ("ticket" when none is left).

    So an experiment run with a toggle on throughout (say `rewind`) still reads as ticket vs its controls.
    """
    sets = {t: set(filter(None, t.split(","))) for t in frame["toggles"].unique().to_list()}
    common = set.intersection(*sets.values()) if sets else set()
    names = {t: ",".join(sorted(v - common)) or "ticket" for t, v in sets.items()}
    return frame.with_columns(pl.col("toggles").replace_strict(names, return_dtype=pl.String).alias("variant"))


def group_criterion(frame: pl.DataFrame, cfg: LotteryConfig) -> Verdict:
    """Ticket vs reinit vs random pruning vs dense, mean ± sd over seeds, level by level (runs × rounds frame).

    `frame`: the wide rows of a group's runs with `toggles` and `seed` columns (see `phenomon.experiment`).
    """
    need = {"ticket", "reinit", "random_prune"}
    if frame.height == 0 or "weights_remaining" not in frame.columns or "toggles" not in frame.columns:
        return Verdict(None, "no finished rounds in the group yet")
    t = (with_variants(frame).filter(pl.col("weights_remaining").is_not_null())
         .select("variant", "seed", "round", "weights_remaining", "round/test_acc", "time/step_ms"))
    have = set(t["variant"].unique().to_list())
    if not need <= have:
        return Verdict(None, f"needs ticket, reinit and random_prune runs; has {', '.join(sorted(have)) or 'none'} "
                             f"(`phenomon experiment lottery_ticket` runs all three)")
    dense = t.filter(pl.col("round") == 0).group_by("seed").agg(pl.col("round/test_acc").mean())["round/test_acc"]
    d_mean, d_sd = dense.mean(), dense.std() or 0.0
    per = (t.filter(pl.col("round") > 0).group_by("variant", "round")
           .agg(pl.col("round/test_acc").mean().alias("mean"), pl.col("round/test_acc").std().fill_null(0).alias("sd"),
                pl.col("weights_remaining").mean().alias("rem"), pl.len().alias("n"))
           .sort("round"))
    wide = per.pivot(on="variant", index="round", values=["mean", "sd", "rem", "n"])
    wide = wide.filter(pl.all_horizontal(pl.col(f"mean_{v}").is_not_null() for v in need)).sort("round")
    if wide.height == 0:
        return Verdict(None, "no pruned round finished by every variant yet")
    i = sparsest_match(wide["round"], wide["rem_ticket"], wide["mean_ticket"], d_mean)
    if wide["mean_ticket"][0] < d_mean - MATCH:
        i = -1
    seeds = int(t["seed"].n_unique())
    nums = {"dense_acc": d_mean, "dense_sd": d_sd, "seeds": seeds,
            "curve": {v: wide.select("rem_ticket", f"mean_{v}", f"sd_{v}").rows() for v in sorted(have)
                      if f"mean_{v}" in wide.columns}}
    if i < 0:
        r = wide.row(0, named=True)
        return Verdict(False, f"no ticket: at {r['rem_ticket']:.1%} of weights the ticket has {r['mean_ticket']:.3f} "
                              f"vs dense {d_mean:.3f} ± {d_sd:.3f} ({seeds} seeds)", nums)
    r = wide.row(i, named=True)
    gap = (wide["mean_ticket"] - wide["mean_reinit"]).slice(0, i + 1)
    widening = pl.DataFrame({"k": range(gap.len()), "g": gap}).select(pl.corr("k", "g", method="spearman")).item() \
        if gap.len() >= 3 else float("nan")
    s = r["rem_ticket"]
    controls_below = all(r[f"mean_{v}"] < d_mean - MATCH for v in ("reinit", "random_prune"))
    widens = widening == widening and widening > 0 and gap[-1] > gap[0]
    nums.update(sparsest_match=s, ticket_acc=r["mean_ticket"], ticket_sd=r["sd_ticket"],
                reinit_acc=r["mean_reinit"], reinit_sd=r["sd_reinit"], random_acc=r["mean_random_prune"],
                random_sd=r["sd_random_prune"], gap_reinit_first=gap[0], gap_reinit_at_sparsest=gap[-1],
                gap_widening_spearman=widening)
    others = "".join(f", {v} {r[f'mean_{v}']:.3f}" for v in sorted(have - need) if r.get(f"mean_{v}") is not None)
    line = (f"ticket within 1 pt of dense ({d_mean:.3f} ± {d_sd:.3f}) down to {s:.1%} of weights: "
            f"{r['mean_ticket']:.3f} ± {r['sd_ticket']:.3f} vs reinit {r['mean_reinit']:.3f} ± {r['sd_reinit']:.3f} "
            f"({100 * (r['mean_reinit'] - r['mean_ticket']):+.1f} pts), random {r['mean_random_prune']:.3f} ± "
            f"{r['sd_random_prune']:.3f} ({100 * (r['mean_random_prune'] - r['mean_ticket']):+.1f} pts){others}; "
            f"ticket−reinit gap {100 * gap[0]:.1f} → {100 * gap[-1]:.1f} pts; {seeds} seeds")
    ok = s <= LEVEL + 1e-9 and controls_below and widens
    why = [] if ok else [w for w, bad in ((f"matches only down to {s:.0%}", s > LEVEL + 1e-9),
                                          ("a control matches dense too", not controls_below),
                                          ("the gap to reinit does not widen", not widens)) if bad]
    return Verdict(ok, ("winning ticket: " if ok else f"no clear ticket ({'; '.join(why)}): ") + line, nums)


# ------------------------------------------------------------------------------------------ training


def execute(cfg: LotteryConfig, ctx) -> None:
    import torch

    from phenomon.callbacks.pruning import Snapshot, StepTimer
    from phenomon.datamodules.mnist1d import MNIST1DDataModule
    from phenomon.models.lottery import LotteryModule, MaskedMLP, keep_counts

    rounds = cfg.rounds()
    dm = MNIST1DDataModule(cfg.train_size, cfg.test_size, batch_size=cfg.batch_size, seed=cfg.seed,
                           data_seed=cfg.data_seed)
    run_dir = ctx.writer.dir if ctx.writer is not None else None
    label = ctx.opts.label

    def train(net: MaskedMLP, rnd: int, prefix: str = "", callbacks: tuple = ()):
        timer = StepTimer()
        module = LotteryModule(net, cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay, prefix=prefix)
        ctx.opts.label = f"{label} round {rnd}/{rounds}{' ' + prefix.rstrip('/') if prefix else ''}"
        # the x axis is rounds: signals at each round's start and end (and cheap ones 4 times) are what it needs
        steps = cfg.steps_per_round
        ctx.fit(module, dm, max_steps=steps, eval_every=cfg.eval_every, callbacks=(timer, *callbacks),
                signal_every={"cheap": max(1, steps // 4), "medium": steps, "expensive": steps})
        summary = round_summary(module.evals, prefix)
        summary[f"{prefix}time/step_ms"] = timer.median_ms()
        return {k: v.detach().cpu().clone() for k, v in net.named_parameters()}, summary

    def log_round(rnd: int, net: MaskedMLP, summary: dict) -> None:
        if ctx.writer is None:
            return
        per_layer = {f"remaining/{k.removesuffix('.weight')}": float(m.float().mean()) for k, m in net.masks().items()}
        ctx.writer.log({"weights_remaining": net.remaining(), **per_layer, **summary}, step=cfg.steps_per_round)
        save_masks(run_dir / "masks" / f"round_{rnd:02d}.pt", net.masks())

    theta0 = {k: v.detach().clone() for k, v in new_net(cfg, cfg.seed).named_parameters()}
    if cfg.masks_from:  # one round: the loaded masks on this seed's init (or a fresh one)
        masks = load_masks(cfg.masks_from, cfg.shapes())
        net = reinitialised(cfg, 1, masks) if cfg.reinit else rewound(cfg, theta0, masks)
        _set_round(ctx, 1, 1)
        _, summary = train(net, 1)
        log_round(1, net, summary)
        return

    # round 0: the dense network, which also fixes where survivors rewind to
    ones = {k: torch.ones(s, dtype=torch.bool) for k, s in cfg.shapes().items()}
    net = rewound(cfg, theta0, ones)
    snap = Snapshot(cfg.rewind_step)
    _set_round(ctx, 0, rounds)
    dense, summary = train(net, 0, callbacks=(snap,))
    log_round(0, net, summary)
    start, trained, masks = snap.state, dense, ones
    # magnitude pruning of a reinitialised net needs the rewound lineage trained beside it for its next masks
    lineage_apart = cfg.reinit and cfg.prune_by == "magnitude"
    for rnd in range(1, rounds + 1):
        counts = keep_counts(cfg.shapes(), cfg.prune_rate, cfg.prune_rate_output, cfg.scope, rnd)
        masks = next_masks(cfg, rnd, masks, trained, dense, theta0, counts)
        _set_round(ctx, rnd, rounds)
        if lineage_apart:
            trained, lin = train(rewound(cfg, start, masks), rnd, prefix="imp/")
            if ctx.writer is not None:
                ctx.writer.log({"imp/round/test_acc": lin["imp/round/test_acc"]}, step=cfg.steps_per_round)
        net = reinitialised(cfg, rnd, masks) if cfg.reinit else rewound(cfg, start, masks)
        weights, summary = train(net, rnd)
        if not lineage_apart:
            trained = weights
        log_round(rnd, net, summary)


def new_net(cfg: LotteryConfig, seed: int):
    import torch

    from phenomon.models.lottery import MaskedMLP

    torch.manual_seed(seed)
    return MaskedMLP(D_IN, cfg.hidden, D_OUT, cfg.init)


def rewound(cfg: LotteryConfig, state, masks):
    """The network with the saved parameters (init or step k) for survivors and zeros for pruned weights."""
    import torch

    net = new_net(cfg, cfg.seed)
    with torch.no_grad():
        for k, p in net.named_parameters():
            p.copy_(state[k])
    net.set_masks(masks)
    return net


def reinitialised(cfg: LotteryConfig, rnd: int, masks):
    """The same masks on fresh random weights, a different draw each round."""
    net = new_net(cfg, _reinit_seed(cfg.seed, rnd))
    net.set_masks(masks)
    return net


def _reinit_seed(seed: int, rnd: int) -> int:
    return 1_000_003 * (seed + 1) + rnd


def _set_round(ctx, rnd: int, rounds: int) -> None:
    """Stamp the coming rows with the round; the manifest says which round of how many (progress is per fit)."""
    if ctx.writer is not None:
        ctx.writer.set_round(rnd)
        ctx.writer.update(round={"round": rnd, "rounds": rounds})


def next_masks(cfg: LotteryConfig, rnd: int, prev, trained, dense, theta0, counts):
    """Round `rnd`'s masks: the same keep counts for every variant; only the scores (and nesting) differ."""
    import torch

    from phenomon.models.lottery import topk_masks

    if cfg.prune_by == "magnitude":  # IMP: the previous round's trained survivors
        return topk_masks({k: trained[k].abs() for k in prev}, prev, counts)
    if cfg.prune_by == "one_shot":  # straight from the dense network to this sparsity
        return topk_masks({k: dense[k].abs() for k in prev}, None, counts)
    if cfg.prune_by == "init":  # before any training
        return topk_masks({k: theta0[k].abs() for k in prev}, None, counts)
    g = torch.Generator().manual_seed(_reinit_seed(cfg.seed, rnd) + 17)
    return topk_masks({k: torch.rand(v.shape, generator=g) for k, v in prev.items()}, prev, counts)


def round_summary(evals: list[dict], prefix: str = "") -> dict[str, float]:
    """A round's accuracy (mean of its last evaluations), best accuracy, and early-stopping step (min test loss)."""
    ev = [e for e in evals if "test/acc" in e]
    if not ev:
        return {}
    last = ev[-LAST_EVALS:]
    stop = min(ev, key=lambda e: e["test/loss"])
    out = {"round/test_acc": sum(e["test/acc"] for e in last) / len(last),
           "round/train_acc": sum(e.get("train/acc", math.nan) for e in last) / len(last),
           "round/best_test_acc": max(e["test/acc"] for e in ev),
           "round/early_stop_step": float(stop["step"]), "round/early_stop_acc": stop["test/acc"]}
    return {prefix + k: v for k, v in out.items()}


PHENOMENON = register(Phenomenon(
    name="lottery_ticket",
    summary="prune the smallest weights in rounds, rewind the survivors to init, retrain: sparse nets that match "
            "dense accuracy (MNIST-1D MLP)",
    config_cls=LotteryConfig,
    toggles=(
        Toggle("reinit", "R", {"reinit": True},
               "same masks, fresh random weights: falls below dense as sparsity grows (Frankle & Carbin 2019); "
               "the control that makes a ticket a ticket"),
        Toggle("random_prune", "P", {"prune_by": "random"},
               "random masks of the same per-layer sparsity: falls below dense well before the ticket does"),
        Toggle("prune_at_init", "i", {"prune_by": "init"},
               "masks from magnitudes before training: no better than random (Frankle et al. 2021): tickets are "
               "found only after training"),
        Toggle("one_shot", "o", {"prune_by": "one_shot"},
               "each level pruned in one step from the dense net: near IMP at moderate sparsity, worse when very "
               "sparse (Frankle & Carbin 2019, Fig. 4)"),
        Toggle("rewind", "K", {"rewind_step": 80},
               "rewind to step 80 instead of init: matches rewind-to-init here; it matters for deep nets that are "
               "unstable at init (Frankle et al. 2020)"),
    ),
    criterion=criterion,
    execute=execute,
    presets={
        "lenet_300_100": {"hidden": (300, 100), "init": "glorot", "lr": 1.2e-3, "batch_size": 60, "epochs": 30,
                          "eval_every": 66},
        "tiny": {"hidden": (32, 16), "train_size": 500, "test_size": 500, "epochs": 8, "batch_size": 50,
                 "target_remaining": 0.6, "eval_every": 5},
    },
    headline=("test/acc", "weights_remaining"),
    notes="defaults: MNIST-1D (4,000/1,000), MLP 40-300-100-10, Adam 1e-3, batch 100, 20 epochs per round, 20% of "
          "remaining weights pruned per round per layer (output 10%), rewind to init, down to 2% of weights; "
          "`phenomon experiment lottery_ticket` runs ticket, reinit and random_prune × 3 seeds and judges them together.",
    x_axis=RoundMetric("weights_remaining"),
    experiment={"reinit": ("reinit",), "ticket": (), "random_prune": ("random_prune",)},
    group_criterion=group_criterion,
))
