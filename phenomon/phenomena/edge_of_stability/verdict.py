"""Edge-of-stability verdicts: one run's late sharpness against 2/η and its loss over short and long windows; a
group's variants over seeds, with n and intervals.

Definitions (the README states them too):
- late phase: steps ≥ LATE · max_steps (the last third of the run);
- in band: a late measurement with sharpness within ±BAND of 2/η (2/η of the η in force at that step);
- short windows: the late per-step losses cut into consecutive SHORT-step windows; a window oscillates when the loss
  rises (by more than RISE_TOL, relative) at any step inside it;
- long windows: the late per-step losses cut into LONG_WINDOWS equal windows; a pair of neighbours decreases when the
  later window's mean loss is below the earlier's.
The run shows the edge of stability when at least IN_BAND_OK of its late measurements are in band, at least
OSCILLATES_OK of its short windows oscillate, and at least DECREASES_OK of its long-window pairs decrease.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from phenomon.phenomena.edge_of_stability.config import EdgeOfStabilityConfig
from phenomon.registry import Verdict

LATE = 2 / 3
BAND = 0.10
SHORT = 10
LONG_WINDOWS = 6
RISE_TOL = 1e-6
# a stable descent (sharpness < 2/η) never raises the loss: no short window oscillates. 0.05 rather than a first
# choice of 0.25, which called η-halved runs with 94% of late measurements in band and the loss rising in 5-11 of 50
# windows "no edge": near the edge the rises come in bursts, not in every window
IN_BAND_OK, OSCILLATES_OK, DECREASES_OK = 0.5, 0.05, 0.75


def sharpness_late(frame: pl.DataFrame, late_from: float) -> dict | None:
    """Late measurements of sharpness against 2/η: how many, how many in band, the median ratio λη/2 and λ."""
    need = {"eos/sharpness", "eos/threshold"}
    if frame.height == 0 or not need <= set(frame.columns):
        return None
    s = (frame.filter((pl.col("step") >= late_from) & pl.col("eos/sharpness").is_not_null()
                      & pl.col("eos/threshold").is_not_null() & pl.col("eos/sharpness").is_finite())
         .select("step", "eos/sharpness", "eos/threshold")
         .with_columns((pl.col("eos/sharpness") / pl.col("eos/threshold")).alias("ratio")))
    if s.height == 0:
        return None
    return s.select(pl.len().alias("n"), ((pl.col("ratio") - 1).abs() <= BAND).sum().alias("k"),
                    pl.col("ratio").median().alias("ratio"), pl.col("eos/sharpness").median().alias("sharpness"),
                    pl.col("eos/threshold").last().alias("threshold")).row(0, named=True)


def reached_step(frame: pl.DataFrame) -> int | None:
    """The first step at which the sharpness came within BAND below 2/η (None: never)."""
    if not {"eos/sharpness", "eos/threshold"} <= set(frame.columns):
        return None
    hit = frame.filter(pl.col("eos/sharpness") >= (1 - BAND) * pl.col("eos/threshold")).sort("step")
    return int(hit["step"][0]) if hit.height else None


def loss_windows(loss: np.ndarray) -> dict:
    """Counts over the windows of a loss sequence (one value per step, in step order): short windows that oscillate,
    long-window pairs that decrease. A count's denominator is 0 when the sequence is too short for it."""
    loss = np.asarray(loss, dtype=float)
    m = len(loss) // SHORT
    short = loss[:m * SHORT].reshape(m, SHORT) if m else np.zeros((0, SHORT))
    rises = (np.diff(short, axis=1) > RISE_TOL * np.abs(short[:, :-1])).any(axis=1) if m else np.zeros(0, bool)
    size = len(loss) // LONG_WINDOWS
    means = loss[:size * LONG_WINDOWS].reshape(LONG_WINDOWS, size).mean(1) if size >= SHORT else np.zeros(0)
    falls = np.diff(means) < 0
    return {"short_n": int(m), "short_oscillating": int(rises.sum()), "long_pairs": int(len(falls)),
            "long_decreasing": int(falls.sum()), "long_size": int(size)}


def _share(k: int, n: int) -> float | None:
    return k / n if n else None


def criterion(frame: pl.DataFrame, cfg: EdgeOfStabilityConfig) -> Verdict:
    """One run: its late sharpness against 2/η and its late per-step training loss over short and long windows."""
    if frame.height == 0 or "eos/sharpness" not in frame.columns:
        return Verdict(None, "no sharpness measured yet")
    last = int(frame["step"].max())
    late_from = LATE * cfg.max_steps
    if last < late_from:
        return Verdict(None, f"step {last} of {cfg.max_steps}: the late phase (from step {late_from:.0f}) has not "
                             f"begun", {"last_step": last, "reached_step": reached_step(frame)})
    sl = sharpness_late(frame, late_from)
    nums: dict = {"last_step": last, "reached_step": reached_step(frame), "threshold": 2 / cfg.eta,
                  "max_ratio": None, "final_train_loss": None}
    if sl is None:
        return Verdict(None, "no late sharpness measurement with a defined 2/η", nums)
    in_band = _share(sl["k"], sl["n"])
    nums.update(late_measurements=sl["n"], in_band=sl["k"], share_in_band=in_band, plateau_ratio=sl["ratio"],
                plateau_sharpness=sl["sharpness"], threshold=sl["threshold"])
    ratios = frame.select((pl.col("eos/sharpness") / pl.col("eos/threshold")).alias("r"))["r"].drop_nulls()
    nums["max_ratio"] = float(ratios.max()) if ratios.len() else None
    if "train/loss" in frame.columns and frame["train/loss"].drop_nulls().len():
        nums["final_train_loss"] = float(frame["train/loss"].drop_nulls()[-1])
    w = None
    if "train/step_loss" in frame.columns:
        lo = frame.filter((pl.col("step") >= late_from) & pl.col("train/step_loss").is_not_null()).sort("step")
        w = loss_windows(lo["train/step_loss"].to_numpy())
        nums.update(w)
    osc = _share(w["short_oscillating"], w["short_n"]) if w else None
    dec = _share(w["long_decreasing"], w["long_pairs"]) if w else None
    reached = nums["reached_step"]
    line = (f"late sharpness {sl['sharpness']:.2f} (median) vs 2/η = {sl['threshold']:.2f} "
            f"(ratio {sl['ratio']:.2f}); {sl['k']}/{sl['n']} late measurements within ±{BAND:.0%}; "
            + (f"first within {BAND:.0%} below 2/η at step {reached}" if reached is not None else "never reached 2/η"))
    if w:
        line += (f"; loss oscillates in {w['short_oscillating']}/{w['short_n']} {SHORT}-step windows, falls between "
                 f"{w['long_decreasing']}/{w['long_pairs']} pairs of {w['long_size']}-step windows"
                 + ("" if cfg.full_batch else " (minibatch losses)"))
    done = last >= cfg.max_steps
    at_edge = in_band >= IN_BAND_OK
    if osc is None or dec is None:  # the loss half of the verdict is undefined: say so, decide nothing on it
        effect = (None if at_edge else False) if done else None
    else:
        effect = at_edge and osc >= OSCILLATES_OK and dec >= DECREASES_OK
        effect = effect if done else (True if effect else None)
    head = ("edge of stability: " if effect else "no edge of stability: " if effect is False else
            "undecided so far: " if not done else "undecided: ")
    return Verdict(effect, head + line, nums)


VARIANT = pl.when(pl.col("toggles") == "").then(pl.lit("baseline")).otherwise(pl.col("toggles")).alias("variant")


def _ci_text(x: list[float], fmt: str, bounds: tuple[float, float] | None = None
             ) -> tuple[str, float | None, float | None, float | None]:
    """Mean over seeds with its 95% t-interval (clipped to `bounds`: a share stays in [0, 1]); "[–]" under 3."""
    from phenomon.scorecard.stats import mean_ci

    x = [v for v in x if v is not None and math.isfinite(v)]
    if not x:
        return "–", None, None, None
    m = float(np.mean(x))
    lo, hi = mean_ci(np.asarray(x))
    if lo is not None and bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    text = fmt.format(m) + (f" [{fmt.format(lo)}, {fmt.format(hi)}]" if lo is not None else " [–]")
    return text, m, lo, hi


def group_criterion(frame: pl.DataFrame, cfg: EdgeOfStabilityConfig) -> Verdict:
    """Each variant's runs judged one by one (with that run's own config: η differs between variants), then summed
    over seeds: runs at the edge k/n (Wilson interval), mean share of late measurements in band and mean plateau
    ratio λη/2 with 95% t-intervals (none under 3 seeds). The effect is the baseline's (else the only variant's):
    True when most of its seeds show the edge."""
    import dataclasses

    from phenomon.scorecard.stats import wilson

    if frame.height == 0 or "toggles" not in frame.columns or "eos/sharpness" not in frame.columns:
        return Verdict(None, "no finished run in the group yet")
    from phenomon import registry

    ph = registry.get("edge_of_stability")
    f = frame.with_columns(VARIANT)
    out, nums = {}, {"variants": {}}
    for v in sorted(f["variant"].unique().to_list(), key=lambda v: (v != "baseline", v)):
        runs = []
        for (run,), g in f.filter(pl.col("variant") == v).group_by("run"):
            c = cfg
            for t in filter(None, g["toggles"][0].split(",")):
                c = dataclasses.replace(c, **ph.toggle(t).changes)
            runs.append(criterion(g.drop("run", "toggles", "seed", "variant").sort("step"), c))
        decided = [r for r in runs if r.effect is not None]
        k = sum(bool(r.effect) for r in decided)
        share, *_ = _ci_text([r.numbers.get("share_in_band") for r in runs], "{:.2f}", (0.0, 1.0))
        ratio, m_ratio, *_ = _ci_text([r.numbers.get("plateau_ratio") for r in runs], "{:.2f}")
        sharp, *_ = _ci_text([r.numbers.get("plateau_sharpness") for r in runs], "{:.1f}")
        thr = next((r.numbers.get("threshold") for r in runs if r.numbers.get("threshold")), None)
        lo, hi = wilson(k, len(decided))
        n = len(runs)
        out[v] = (k, len(decided), n)
        nums["variants"][v] = {"n": n, "at_edge": k, "decided": len(decided), "at_edge_ci": [lo, hi],
                               "share_in_band": [r.numbers.get("share_in_band") for r in runs],
                               "plateau_ratio": [r.numbers.get("plateau_ratio") for r in runs],
                               "plateau_sharpness": [r.numbers.get("plateau_sharpness") for r in runs],
                               "reached_step": [r.numbers.get("reached_step") for r in runs], "threshold": thr}
        edge = (f"{k}/{len(decided)} at the edge" + (f" [{lo:.2f}, {hi:.2f}]" if lo is not None else "")
                + (f" ({n - len(decided)} undecided)" if len(decided) < n else ""))
        thr_text = f"{thr:.1f}" if thr else "–"
        nums["variants"][v]["line"] = (f"{v}: {edge}; late sharpness {sharp} vs 2/η {thr_text} (ratio {ratio}); "
                                       f"share in ±{BAND:.0%} band {share}; n={n}")
    head = next(iter(out))
    k, d, n = out[head]
    effect = None if d == 0 else k * 2 > d
    return Verdict(effect, " | ".join(nums["variants"][v]["line"] for v in out), nums)
