"""Double descent: test error falls, peaks where the model just interpolates the noisy train set, falls again.

A sweep phenomenon: one run per width (`--set width=N`), all in one comparison group; `phenomon run double_descent`
(width left at 0) starts the whole sweep in parallel processes and judges it with the group criterion. Each run
also keeps its evaluations over epochs, so the epoch-wise picture comes from the same rows. The recipe (Greydanus &
Kobak's MNIST-1D sweep, the setting of the position paper's Figure 4) and why it gives a clear peak: README.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import polars as pl

from phenomon.store.axis import ConfigField
from phenomon.registry import Phenomenon, Toggle, Verdict, register

INTERPOLATES = 0.01  # train error at or below this counts as interpolating (the noisy labels included)
MIN_HEIGHT = 0.02  # a peak must rise this far above both sides (and beyond twice the seed spread)
SECOND_DESCENT = 0.02  # epoch-wise: a fall of this much after the epoch-wise maximum


def _rf_widths(n: int = 1000) -> tuple[int, ...]:
    """15 log-spaced feature counts from n/10 to 10n, n among them (Belkin et al.'s random-features sweep)."""
    return tuple(round(n * 10 ** (-1 + 2 * k / 14)) for k in range(15))


@dataclass(frozen=True)
class DoubleDescentConfig:
    model: Literal["mlp", "random_features"] = "mlp"
    data: Literal["mnist1d", "teacher"] = "mnist1d"
    width: int = 0  # hidden units (mlp) or random features; 0 = the whole sweep over `widths`
    widths: tuple[int, ...] = (8, 12, 16, 24, 32, 40, 48, 56, 64, 96, 128, 256, 384)
    depth: int = 2  # hidden layers (mlp)
    train_size: int = 4000
    train_pool: int = 4000  # generated samples before validation and test: train sizes up to it share one test set
    val_size: int = 2000  # clean; for early stopping only
    test_size: int = 10000  # clean; large, so the curve is smooth
    label_noise: float = 0.2  # exactly this fraction of train labels changed to a wrong class
    data_seed: int = 42
    teacher_dim: int = 40  # data=teacher
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0  # mlp (SGD)
    ridge: float = 0.0  # random_features (the head's ℓ2 penalty; 0 = minimum-norm least squares)
    batch_size: int = 100
    epochs: int = 500
    eval_every: int = 10  # epochs
    early_stopping: bool = False  # report the evaluation with the lowest validation error instead of the last
    seeds: tuple[int, ...] = (0, 1, 2)  # the sweep's seeds (`phenomon run` with width 0)
    seed: int = 0

    @property
    def steps_per_epoch(self) -> int:
        return 1 if self.model == "random_features" else max(1, self.train_size // self.batch_size)

    @property
    def max_steps(self) -> int:
        return 1 if self.model == "random_features" else self.epochs * self.steps_per_epoch

    def validate(self) -> None:
        if self.width < 0:
            raise ValueError(f"width must be a positive integer (0: the whole sweep), got {self.width}")
        if any(w < 1 for w in self.widths):
            raise ValueError(f"widths must be positive integers, got {','.join(map(str, self.widths))}")
        if len(set(self.widths)) < 2:
            raise ValueError(f"a sweep needs at least 2 distinct widths, got {','.join(map(str, self.widths))}")
        if not 0.0 <= self.label_noise < 1.0:
            raise ValueError(f"label_noise must be in [0, 1), got {self.label_noise}")
        for k in ("train_size", "train_pool", "test_size", "depth", "batch_size", "epochs", "eval_every",
                  "teacher_dim"):
            if getattr(self, k) < 1:
                raise ValueError(f"{k} must be a positive integer, got {getattr(self, k)}")
        if self.train_size > self.train_pool:
            raise ValueError(f"train_size ({self.train_size}) is larger than the data: the train pool holds "
                             f"{self.train_pool} samples (raise train_pool to generate more)")
        if self.val_size < 0:
            raise ValueError(f"val_size must be >= 0, got {self.val_size}")
        if self.early_stopping and self.val_size == 0:
            raise ValueError("early_stopping needs a validation split (val_size > 0)")
        if self.model == "mlp" and self.batch_size > self.train_size:
            raise ValueError(f"batch_size ({self.batch_size}) exceeds train_size ({self.train_size})")
        if not self.lr > 0 or self.weight_decay < 0 or self.ridge < 0 or not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"need lr > 0, weight_decay >= 0, ridge >= 0, momentum in [0, 1); got {self.lr}, "
                             f"{self.weight_decay}, {self.ridge}, {self.momentum}")


# ------------------------------------------------------------------------------------------ verdicts


def epoch_curve(evals: pl.DataFrame) -> dict | None:
    """Epoch-wise shape of one test-error curve (columns `epochs`, `test/error`, mean over seeds already taken)."""
    e = evals.drop_nulls().sort("epochs")
    if e.height < 3:
        return None
    i_min = int(e["test/error"].arg_min())
    after = e.slice(i_min)
    i_max = int(after["test/error"].arg_max())
    mx, end = after["test/error"][i_max], e["test/error"][-1]
    return {"min": e["test/error"][i_min], "min_epoch": e["epochs"][i_min], "max_after": mx,
            "max_epoch": after["epochs"][i_max], "end": end,
            "second_descent": bool(mx - end >= SECOND_DESCENT and i_max < after.height - 1
                                   and mx - e["test/error"][i_min] >= SECOND_DESCENT)}


def _describe_epochs(w: int, c: dict) -> str:
    shape = "second descent" if c["second_descent"] else ("rise, no second descent" if c["max_after"] - c["min"]
                                                          >= SECOND_DESCENT else "no epoch-wise peak")
    return (f"{w}: {c['min']:.3f}@ep{c['min_epoch']:.0f} → {c['max_after']:.3f}@ep{c['max_epoch']:.0f} → "
            f"{c['end']:.3f} ({shape})")


def judge(table: pl.DataFrame, evals: pl.DataFrame | None = None) -> Verdict:
    """The model-wise verdict on one variant's sweep.

    `table`: one row per (width, seed) with `width`, `seed`, `test_error`, `train_error` (the run's reported values);
    `evals`: optional per-evaluation rows `width`, `seed`, `epochs`, `test/error` for the epoch-wise description.
    """
    per = (table.group_by("width").agg(
        pl.col("test_error").mean().alias("test"), pl.col("test_error").std().fill_null(0).alias("sd"),
        pl.col("train_error").mean().alias("train"), pl.len().alias("n")).sort("width"))
    if per.height < 3:
        return Verdict(None, f"{per.height} width(s) finished; the verdict needs at least 3")
    w, m, s, tr = (per[c].to_list() for c in ("width", "test", "sd", "train"))
    seeds = int(per["n"].min())
    # the peak: the width rising furthest above the best error at any narrower width
    rise = [(m[i] - min(m[:i]), i) for i in range(1, len(m))]
    h_under, p = max(rise)
    u = min(range(p), key=lambda i: m[i])
    h_wide = m[p] - m[-1]
    thr = next((i for i, t in enumerate(tr) if t <= INTERPOLATES), None)
    clear_under = h_under >= MIN_HEIGHT and h_under > 2 * math.hypot(s[p], s[u])
    clear_wide = h_wide >= MIN_HEIGHT and h_wide > 2 * math.hypot(s[p], s[-1])
    at_thr = thr is not None and abs(p - thr) <= 1
    nums = {"peak_width": w[p], "peak_error": m[p], "peak_sd": s[p], "under_width": w[u], "under_error": m[u],
            "under_sd": s[u], "widest_width": w[-1], "widest_error": m[-1], "widest_sd": s[-1],
            "height_over_under": h_under, "height_over_widest": h_wide,
            "threshold_width": w[thr] if thr is not None else None, "peak_at_threshold": at_thr, "seeds": seeds,
            "curve": per.select("width", "test", "sd", "train").rows()}
    thr_text = (f"train error first ≤ {INTERPOLATES:.0%} at width {w[thr]}" if thr is not None
                else f"no width interpolates (train error ≥ {min(tr):.3f})")
    body = (f"test error {m[p]:.3f} ± {s[p]:.3f} at width {w[p]}, {100 * h_under:+.1f} pts over the best narrower "
            f"({m[u]:.3f} ± {s[u]:.3f} at {w[u]}) and {100 * h_wide:+.1f} over the widest ({m[-1]:.3f} ± {s[-1]:.3f} "
            f"at {w[-1]}); {thr_text}" + (f" ({'within' if at_thr else 'not within'} a grid step of the peak)" if thr is not None else "")
            + f"; {seeds} seed{'s' if seeds != 1 else ''}")
    if evals is not None and evals.height:
        near = sorted({w[i] for i in ((p, thr, thr + 1) if thr is not None else (p, len(w) - 1)) if i < len(w)})
        mean = evals.group_by("width", "epochs").agg(pl.col("test/error").mean())
        curves = {x: epoch_curve(mean.filter(pl.col("width") == x).select("epochs", "test/error")) for x in near}
        curves = {x: c for x, c in curves.items() if c is not None}
        if curves:
            nums["epochwise"] = curves
            body += "; epoch-wise test error " + "; ".join(_describe_epochs(x, c) for x, c in curves.items())
    if clear_under and clear_wide and at_thr:
        return Verdict(True, "double descent: peak " + body, nums)
    why = [t for t, bad in (("no rise over the narrower widths", not clear_under),
                            ("no second descent to the widest", not clear_wide),
                            ("the peak is not at the interpolation threshold", clear_under and clear_wide
                             and not at_thr)) if bad]
    return Verdict(False, f"no double descent ({'; '.join(why)}): largest bump " + body, nums)


VARIANT = pl.when(pl.col("toggles") == "").then(pl.lit("baseline")).otherwise(pl.col("toggles")).alias("variant")


def best_validation(evals: pl.DataFrame) -> pl.DataFrame:
    """Per (width, seed): the evaluation with the lowest validation error, as a `judge` table: the same runs read as
    if they had stopped early."""
    return (evals.filter(pl.col("val/error").is_not_null()).sort("epochs")
            .group_by("width", "seed").agg(pl.col("test/error").sort_by("val/error").first().alias("test_error"),
                                          pl.col("train/error").sort_by("val/error").first().alias("train_error")))


def group_criterion(frame: pl.DataFrame, cfg: DoubleDescentConfig) -> Verdict:
    """Each variant's sweep judged over its widths and seeds (frame: the group's wide rows with `toggles`, `seed`,
    `width`); the effect is the baseline's when it ran, else the only variant's. Variants trained without early
    stopping are also read at their best validation epoch (free: the rows are there)."""
    need = {"final/test_error", "final/train_error", "width", "toggles"}
    if frame.height == 0 or not need <= set(frame.columns):
        return Verdict(None, "no finished run in the group yet")
    f = frame.with_columns(VARIANT)
    table = f.filter(pl.col("final/test_error").is_not_null()).select(
        "variant", "width", "seed", pl.col("final/test_error").alias("test_error"),
        pl.col("final/train_error").alias("train_error"))
    cols = [c for c in ("epochs", "test/error", "train/error", "val/error") if c in f.columns]
    evals = f.filter(pl.col("epochs").is_not_null() & pl.col("test/error").is_not_null()).select(
        "variant", "width", "seed", *cols) if {"epochs", "test/error"} <= set(cols) else None
    variants = sorted(table["variant"].unique().to_list(), key=lambda v: (v != "baseline", v))
    if not variants:
        return Verdict(None, "no finished run in the group yet")
    out = {}
    for v in variants:
        ev = evals.filter(pl.col("variant") == v) if evals is not None else None
        r = judge(table.filter(pl.col("variant") == v), ev)
        if (ev is not None and "val/error" in ev.columns and "early_stopping" not in v
                and ev["val/error"].drop_nulls().len() and ev["epochs"].n_unique() > 1):  # a closed form has one
            es = judge(best_validation(ev))
            if es.effect is not None:
                keys = ("peak_width", "peak_error", "height_over_under", "height_over_widest")
                r = Verdict(r.effect, f"{r.line}; read at the best validation epoch: "
                                      f"{'peak' if es.effect else 'no peak'} (largest bump {es.numbers['peak_error']:.3f} "
                                      f"at {es.numbers['peak_width']}, {100 * es.numbers['height_over_under']:+.1f} / "
                                      f"{100 * es.numbers['height_over_widest']:+.1f} pts)",
                            {**r.numbers, "early_stopped": {"effect": es.effect,
                                                            **{k: es.numbers[k] for k in keys}}})
        out[v] = r
    head = out[variants[0]]
    if len(out) == 1:
        return Verdict(head.effect, (f"{variants[0]}: " if variants[0] != "baseline" else "") + head.line,
                       head.numbers)
    nums = {**head.numbers, "variants": {v: {k: x for k, x in r.numbers.items() if k != "curve"}
                                         for v, r in out.items()}}
    return Verdict(head.effect, " | ".join(f"{v}: {r.line}" for v, r in out.items()), nums)


def criterion(frame: pl.DataFrame, cfg: DoubleDescentConfig) -> Verdict:
    """One width: its reported errors and the epoch-wise shape of its test error (a single run cannot show the
    model-wise peak: that is the group's verdict)."""
    if frame.height == 0 or "test/error" not in frame.columns or "epochs" not in frame.columns:
        return Verdict(None, "no evaluations yet")
    ev = frame.filter(pl.col("test/error").is_not_null() & pl.col("epochs").is_not_null())
    if ev.height == 0:
        return Verdict(None, "no evaluations yet")
    done = "final/test_error" in frame.columns and frame["final/test_error"].drop_nulls().len() > 0
    last = ev.sort("step").row(-1, named=True)
    te = frame["final/test_error"].drop_nulls()[-1] if done else last["test/error"]
    tr = frame["final/train_error"].drop_nulls()[-1] if done else last["train/error"]
    nums = {"width": cfg.width, "test_error": te, "train_error": tr}
    line = (f"width {cfg.width}: train error {tr:.3f}, test error {te:.3f}"
            + (" (best validation epoch)" if cfg.early_stopping and done else ""))
    c = epoch_curve(ev.select("epochs", "test/error"))
    if c is not None and cfg.model == "mlp":
        nums["epochwise"] = c
        line += "; epoch-wise " + _describe_epochs(cfg.width, c).partition(": ")[2]
    return Verdict(None, line + ("" if done else " so far"), nums)


# ------------------------------------------------------------------------------------------ training


def datamodule(cfg: DoubleDescentConfig):
    from phenomon.datamodules.mnist1d import MNIST1DDataModule
    from phenomon.datamodules.teacher import TeacherDataModule

    kw = dict(train_size=cfg.train_size, test_size=cfg.test_size, val_size=cfg.val_size, seed=cfg.seed,
              batch_size=None if cfg.model == "random_features" else cfg.batch_size, data_seed=cfg.data_seed,
              label_noise=cfg.label_noise, train_pool=cfg.train_pool, noise_seed=1000 + cfg.seed, exact_noise=True)
    if cfg.data == "teacher":
        return TeacherDataModule(dim=cfg.teacher_dim, **kw)
    return MNIST1DDataModule(standardize=False, **kw)  # mnist1d already standardised the whole set


def build_module(cfg: DoubleDescentConfig, train_x, num_classes: int, eval_x=None):
    import torch

    from phenomon.models.double_descent import MLP, ClosedFormModule, RandomFeatures, WidthModule

    torch.manual_seed(cfg.seed)
    d_in = train_x.shape[1]
    if cfg.model == "random_features":
        return ClosedFormModule(RandomFeatures(d_in, cfg.width, num_classes, seed=cfg.seed), train_x, cfg.ridge,
                                num_classes, eval_x=eval_x)
    return WidthModule(MLP(d_in, cfg.width, num_classes, cfg.depth), cfg.lr, cfg.momentum, cfg.weight_decay,
                       steps_per_epoch=cfg.steps_per_epoch, num_classes=num_classes)


def execute(cfg: DoubleDescentConfig, ctx) -> None:
    if cfg.width == 0:
        raise ValueError("width 0 is the whole sweep: `phenomon run double_descent` starts one run per width")
    dm = datamodule(cfg)
    held_out = (dm.val if dm.val is not None else dm.test)[0][:512]  # inputs only: p̂ of the effective-parameters signal
    module = build_module(cfg, dm.train[0], dm.num_classes, eval_x=held_out)
    steps = cfg.max_steps
    every = cfg.eval_every * cfg.steps_per_epoch if cfg.model == "mlp" else 1
    # 20,000 steps: norms and counts at every evaluation (50), gradients, ranks and margins 10 times, sharpness 4
    schedule = {"cheap": every, "medium": max(1, steps // 10), "expensive": max(1, steps // 4)}
    ctx.fit(module, dm, max_steps=steps, eval_every=every, signal_every=schedule)
    if ctx.writer is not None:
        ctx.writer.log(summary(module.evals, cfg.early_stopping, module), step=steps)


def summary(evals: list[dict], early_stopping: bool, module=None) -> dict[str, float]:
    """The run's reported point: its last evaluation, or with early stopping the one with the lowest validation
    error (the test error a practitioner would see); parameters trained."""
    ev = [e for e in evals if "test/error" in e]
    if not ev:
        return {}
    pick = min(ev, key=lambda e: e.get("val/error", math.inf)) if early_stopping else ev[-1]
    out = {f"final/{k.replace('/', '_')}": v for k, v in pick.items() if k != "step"}
    out["final/step"] = float(pick["step"])
    if module is not None:
        out["params"] = float(sum(p.numel() for p in module.parameters() if p.requires_grad))
    return out


PHENOMENON = register(Phenomenon(
    name="double_descent",
    summary="test error falls, peaks where the model just fits the noisy train labels, and falls again as width "
            "grows (MNIST-1D MLP width sweep)",
    config_cls=DoubleDescentConfig,
    toggles=(
        Toggle("weight_decay", "w", {"weight_decay": 5e-3},
               "SGD weight decay 0 → 5e-3: the peak disappears, the curve flattens and no width interpolates "
               "(Nakkiran et al. 2020: optimal ℓ2 regularisation mitigates double descent)"),
        Toggle("label_noise", "N", {"label_noise": 0.0},
               "label noise 0.2 → 0: the MLP's peak shrinks to a shoulder (Nakkiran et al. 2019: noise makes it "
               "visible); the random-features peak at N = n stays, higher relative to its sides"),
        Toggle("early_stopping", "e", {"early_stopping": True},
               "report the best-validation epoch: the peak flattens (Nakkiran et al. 2019; the position paper's "
               "'proper regularisation')"),
        Toggle("train_size", "T", {"train_size": 2000},
               "train size 4,000 → 2,000: the peak moves to a narrower width (parameters ≈ samples; 48 → 32 "
               "here), the shift behind 'more data can hurt' (Nakkiran et al. 2019)"),
        Toggle("ridge", "R", {"ridge": 0.1},
               "random_features/teacher presets: ridge 0 → 0.1 removes the peak at N = n (the closed-form analogue "
               "of weight decay; 1e-4 suffices without label noise); no effect on the MLP"),
    ),
    criterion=criterion,
    execute=execute,
    presets={
        "quick": {"widths": (12, 24, 48, 64, 128, 256), "seeds": (0,)},
        "random_features": {"model": "random_features", "train_size": 1000, "widths": _rf_widths(1000)},
        "teacher": {"model": "random_features", "data": "teacher", "train_size": 100, "train_pool": 100,
                    "val_size": 0, "test_size": 10000, "teacher_dim": 20,
                    "widths": (20, 40, 60, 80, 100, 125, 200, 400, 1000), "seeds": (0,)},
    },
    headline=("train/error", "test/error"),
    notes="defaults: MNIST-1D 4,000 train (20% of labels wrong) / 2,000 val / 10,000 test, MLP 40-h-h-10, CE, SGD "
          "0.01 momentum 0.9, batch 100, 500 epochs, widths 8…384 × seeds 0,1,2; `phenomon run double_descent` runs "
          "the sweep (`--set width=N`: one width); `phenomon experiment double_descent` adds the weight-decay sweep.",
    x_axis=ConfigField("width"),
    experiment={"baseline": (), "weight_decay": ("weight_decay",)},
    group_criterion=group_criterion,
    outcome="final/test_error",
    outcome_moves=0.03,  # a sweep's error moves by points, not by the 0→1 of an accuracy jump
    sweep=lambda cfg: cfg.widths,
))
