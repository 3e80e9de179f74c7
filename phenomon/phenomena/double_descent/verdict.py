"""Double-descent verdicts: one width's errors and epoch-wise shape, and a sweep's model-wise peak over widths and
seeds."""

from __future__ import annotations

import math

import polars as pl

from phenomon.phenomena.double_descent.config import DoubleDescentConfig
from phenomon.registry import Verdict

INTERPOLATES = 0.01  # train error at or below this counts as interpolating (the noisy labels included)
MIN_HEIGHT = 0.02  # a peak must rise this far above both sides (and beyond twice the seed spread)
SECOND_DESCENT = 0.02  # epoch-wise: a fall of this much after the epoch-wise maximum


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
