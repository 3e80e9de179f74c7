"""Double descent under tuned regularisation (the registry entry): per width, weight decay chosen from a small grid
and the training epoch chosen on a held-out validation split; does any peak survive?

Nakkiran, Venkat, Kakade & Ma (ICLR 2021, "Optimal regularization can mitigate double descent"); the position
paper's table: double descent "disappears with proper regularisation". A sweep like `double_descent` (one run per
width and seed, `width` left out of the comparison group); each run trains the whole weight-decay grid at once
(`models/wd_grid.py`), so the untuned baseline (weight decay 0, last epoch) comes from the same runs, seeds and
minibatches as the tuned curve. The validation split (clean labels) is held out of training and disjoint from the
test split; only the test error of the chosen point is reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl

from phenomon.phenomena.double_descent.config import DoubleDescentConfig
from phenomon.phenomena.double_descent.verdict import judge
from phenomon.registry import Phenomenon, Toggle, Verdict, register
from phenomon.session import Session
from phenomon.store.axis import ConfigField

CLAIM = ("Double descent disappears with proper regularisation (Jeffares & van der Schaar 2025): weight decay and "
         "the epoch tuned per width on a validation split remove the peak (Nakkiran et al. 2021)")
READINGS = {"untuned": "weight decay 0, last epoch", "es_only": "early stopping only", "wd_only": "weight decay only",
            "final": "tuned weight decay + early stopping"}


@dataclass(frozen=True)
class RegularisedConfig(DoubleDescentConfig):
    # 2,000 train samples (the double_descent `train_size` toggle: peak at width 32) halve the steps of every run
    train_size: int = 2000
    widths: tuple[int, ...] = (8, 12, 16, 24, 32, 40, 48, 64, 96, 128)
    wd_grid: tuple[float, ...] = (0.0, 1e-3, 3e-3, 1e-2, 3e-2)  # SGD weight decays tried at every width
    early_stopping: bool = True  # the reported point is the best validation evaluation (the grid's and epoch's)

    def validate(self) -> None:
        super().validate()
        if self.model != "mlp":
            raise ValueError("dd_regularised tunes the MLP's weight decay; model must be mlp")
        if self.val_size < 1:
            raise ValueError("dd_regularised chooses on a validation split: val_size must be positive")
        if not self.wd_grid or any(not w >= 0 or not math.isfinite(w) for w in self.wd_grid):
            raise ValueError(f"wd_grid must be weight decays >= 0, got {','.join(map(str, self.wd_grid))}")
        if 0.0 not in self.wd_grid:
            raise ValueError("wd_grid must include 0: the untuned baseline is read from the same runs")
        if len(set(self.wd_grid)) != len(self.wd_grid):
            raise ValueError(f"wd_grid repeats a value: {','.join(map(str, self.wd_grid))}")


def execute(cfg: RegularisedConfig, session: Session) -> None:
    import torch

    from phenomon.models.wd_grid import GridModule, StackedMLP, select
    from phenomon.phenomena.double_descent.training import datamodule

    if cfg.width == 0:
        raise ValueError("width 0 is the whole sweep: `phenomon run dd_regularised` starts one run per width")
    dm = datamodule(cfg, whole_epochs=False)  # the stacked grid takes one minibatch per Lightning step
    torch.manual_seed(cfg.seed)
    net = StackedMLP(len(cfg.wd_grid), dm.train[0].shape[1], cfg.width, dm.num_classes, cfg.depth)
    module = GridModule(net, cfg.wd_grid, cfg.lr, cfg.momentum, steps_per_epoch=cfg.steps_per_epoch)
    steps, every = cfg.max_steps, cfg.eval_every * cfg.steps_per_epoch
    schedule = {"cheap": every, "medium": max(1, steps // 10), "expensive": max(1, steps // 4)}
    session.fit(module, dm, max_steps=steps, eval_every=every, signal_every=schedule)
    params = sum(p.numel() for p in net.parameters()) / net.k
    session.out.log_summary({**select(module.evals, cfg.wd_grid), "params": params}, step=steps)


def criterion(frame: pl.DataFrame, cfg: RegularisedConfig) -> Verdict:
    """One width: the tuned point and the untuned one (a single width cannot show a peak: the group's verdict)."""
    if "final/test_error" not in frame.columns or frame["final/test_error"].drop_nulls().len() == 0:
        return Verdict(None, "not finished: the tuned point is chosen after the last evaluation")
    last = frame.filter(pl.col("final/test_error").is_not_null()).row(-1, named=True)
    nums = {k.replace("/", "_"): last[k] for k in last if k.split("/")[0] in READINGS and last[k] is not None}
    line = (f"width {cfg.width}: tuned test error {last['final/test_error']:.3f} (weight decay "
            f"{last['final/weight_decay']:g}, epoch {last['final/epochs']:.0f}, validation {last['final/val_error']:.3f})"
            + (f"; untuned {last['untuned/test_error']:.3f} (train {last['untuned/train_error']:.3f})"
               if last.get("untuned/test_error") is not None else ""))
    return Verdict(None, line, nums)


def peak_anywhere(v: Verdict) -> bool | None:
    """`judge`'s peak test without its interpolation-threshold condition: a width whose mean test error stands
    ≥ 2 points (and twice the seed spread) above both the best narrower width and the widest."""
    from phenomon.phenomena.double_descent.verdict import MIN_HEIGHT

    n = v.numbers
    if "peak_error" not in n:
        return None
    up = n["height_over_under"] >= MIN_HEIGHT and n["height_over_under"] > 2 * math.hypot(n["peak_sd"], n["under_sd"])
    down = n["height_over_widest"] >= MIN_HEIGHT and \
        n["height_over_widest"] > 2 * math.hypot(n["peak_sd"], n["widest_sd"])
    return up and down


def largest_bump(table: pl.DataFrame) -> dict | None:
    """The largest rise of test error between adjacent widths, paired by seed: mean, sd, t interval and n over seeds.

    `table`: `width`, `seed`, `test_error` (one reading)."""
    from phenomon.scorecard.stats import mean_ci

    wide = table.pivot(on="width", index="seed", values="test_error").drop_nulls()
    widths = sorted(int(c) for c in wide.columns if c != "seed")
    if len(widths) < 2 or wide.height == 0:
        return None
    best = None
    for a, b in zip(widths[:-1], widths[1:]):
        d = (wide[str(b)] - wide[str(a)]).to_numpy()
        m = float(d.mean())
        if best is None or m > best["rise"]:
            lo, hi = mean_ci(d)
            best = {"from": a, "to": b, "rise": m, "sd": float(d.std(ddof=1)) if len(d) > 1 else 0.0,
                    "lo": lo, "hi": hi, "n": len(d)}
    return best


def _bump_text(b: dict, scale: float) -> str:
    share = f"{b['rise'] / scale:.0%} of the untuned range" if scale > 0 else "untuned range 0"
    ci = f", 95% CI [{100 * b['lo']:+.1f}, {100 * b['hi']:+.1f}]" if b["lo"] is not None else ", no interval"
    sd = f" ± {100 * b['sd']:.1f}" if b["n"] > 1 else ""
    text = (f"{100 * b['rise']:+.1f}{sd} pts from width {b['from']} to {b['to']} ({share}{ci}, "
            f"n={b['n']} seed{'s' if b['n'] != 1 else ''})")
    return text if b["rise"] > 0 else f"none (test error never rises; the largest change is {text})"


def _sd(sd: float, n: int) -> str:
    return f" ± {sd:.3f}" if n > 1 else " (1 seed: no spread)"


def group_criterion(frame: pl.DataFrame, cfg: RegularisedConfig) -> Verdict:
    """Untuned, early-stopping-only, weight-decay-only and tuned curves of the same runs, each judged by the
    double-descent criterion (`judge`) and by its largest adjacent-width rise; effect: a peak survives tuning."""
    if frame.height == 0 or "final/test_error" not in frame.columns or "width" not in frame.columns:
        return Verdict(None, "no finished width in the group yet")
    rows = frame.filter(pl.col("final/test_error").is_not_null())
    curves, bumps, judged = {}, {}, {}
    for r in READINGS:
        if f"{r}/test_error" not in rows.columns:
            continue
        t = rows.select("width", "seed", pl.col(f"{r}/test_error").alias("test_error"),
                        pl.col(f"{r}/train_error").alias("train_error")).drop_nulls()
        judged[r] = judge(t)
        bumps[r] = largest_bump(t.select("width", "seed", "test_error"))
        curves[r] = t.group_by("width").agg(pl.col("test_error").mean().alias("mean"),
                                            pl.col("test_error").std().fill_null(0).alias("sd")).sort("width")
    if "untuned" not in judged or "peak_error" not in judged["final"].numbers or bumps["final"] is None:
        return Verdict(None, judged.get("final", Verdict(None, "not enough widths yet")).line)
    u = curves["untuned"]["mean"]
    scale = float(u.max() - u.min())
    un, tu = judged["untuned"], judged["final"]
    survives = peak_anywhere(tu)
    chosen = (rows.group_by("width").agg(pl.col("final/weight_decay").median()).sort("width").rows())
    nums = {"untuned_range": scale, "bumps": bumps, "peak_survives": survives, "untuned_peak": un.effect,
            "chosen_weight_decay": chosen, "seeds": int(rows["seed"].n_unique()),
            "curves": {r: c.rows() for r, c in curves.items()},
            "peaks": {r: {k: v.numbers.get(k) for k in ("peak_width", "peak_error", "peak_sd", "height_over_under",
                                                       "height_over_widest")} for r, v in judged.items()}}
    untuned = (f"untuned (weight decay 0, last epoch): {'double descent' if un.effect else 'no clear peak'}, "
               f"peak {un.numbers['peak_error']:.3f}{_sd(un.numbers['peak_sd'], nums['seeds'])} at width {un.numbers['peak_width']} "
               f"({100 * un.numbers['height_over_under']:+.1f} / {100 * un.numbers['height_over_widest']:+.1f} pts), "
               f"largest rise {_bump_text(bumps['untuned'], scale)}")
    others = "; ".join(f"{READINGS[r]}: largest rise {_bump_text(bumps[r], scale)}" for r in ("es_only", "wd_only")
                       if bumps.get(r))
    wd = ", ".join(f"{w}: {v:g}" for w, v in chosen)
    tuned = (f"tuned weight decay + early stopping: largest remaining rise {_bump_text(bumps['final'], scale)}; "
             f"error {curves['final']['mean'].max():.3f} at most, {curves['final']['mean'].min():.3f} at least")
    line = (f"{'a peak survives tuning' if survives else 'no peak survives tuning'} — {tuned} | {untuned} | "
            f"{others} | chosen weight decay by width (median over seeds) {wd}; {nums['seeds']} "
            f"seed{'s' if nums['seeds'] != 1 else ''}")
    return Verdict(survives, line, nums)


PHENOMENON = register(Phenomenon(
    name="dd_regularised",
    summary="double descent with weight decay and the epoch tuned per width on a validation split: does any peak "
            "survive? (MNIST-1D MLP width sweep)",
    config_cls=RegularisedConfig,
    toggles=(Toggle("label_noise", "N", {"label_noise": 0.0}, "label noise 0.2 → 0: no peak to remove even untuned"),),
    criterion=criterion,
    execute=execute,
    presets={"quick": {"widths": (8, 16, 32, 64, 128), "seeds": (0,), "epochs": 200, "wd_grid": (0.0, 3e-3, 3e-2)}},
    headline=("final/test_error", "untuned/test_error"),
    notes="the double_descent recipe at 2,000 train samples (20% wrong labels), 2,000 clean validation, 10,000 clean "
          "test; weight decay from {0, 1e-3, 3e-3, 1e-2, 3e-2} and the epoch (every 10) chosen per width on "
          "validation; widths 8…128 × seeds 0,1,2; `phenomon experiment dd_regularised` runs the sweep.",
    x_axis=ConfigField("width"),
    experiment={"tuned": ()},
    group_criterion=group_criterion,
    outcome="final/test_error",
    outcome_moves=0.03,
    sweep=lambda cfg: cfg.widths,
    claim=CLAIM,
    figure_series=(("untuned/test_error", "untuned (weight decay 0, last epoch): test"),
                   ("untuned/train_error", "untuned: train"),
                   ("final/test_error", "tuned weight decay + early stopping: test"),
                   ("final/train_error", "tuned: train")),
))
