"""Per-unit statistics → one row per signal × phenomenon: estimates with bootstrap intervals over units, a
circular-shift permutation p-value with Benjamini–Hochberg across the table, comparison with the null signals,
prediction across runs, intervention pairs, invariance, and the verdict in words (with n and the interval)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from phenomon import catalog
from phenomon.scorecard import stats as S
from phenomon.scorecard.units import EARLY, MAG_COLS
from phenomon.store.axis import RoundMetric, Step
from phenomon.store.axis import parse as parse_axis

ALPHA = 0.05  # false-discovery rate across the whole table
MIN_PARTIAL = 0.1  # "beyond the norm" needs the partial ρ's interval beyond ±this, not merely clear of zero
STAT_COLS = ["tracking", "null_margin", "partial_norm", "partial_mean_abs", "partial_n_ge", "partial_step", "lead",
             "lead10"]
NAMES = {"partial_norm": "the weight norm", "partial_mean_abs": "mean |w|", "partial_n_ge": "#|w|≥1.5",
         "partial_step": "the step"}


def _vals(rows: list[dict], key: str) -> np.ndarray:
    return np.array([r[key] for r in rows if r.get(key) is not None], dtype=float)


def _estimate(rows: list[dict], key: str, stat=np.mean) -> dict:
    """Mean with a t interval, or median with a bootstrap interval, over the units where it is defined."""
    v = _vals(rows, key)
    lo, hi = S.mean_ci(v) if stat is np.mean else S.boot_ci(v, stat)
    if lo is not None and key != "lead" and key != "lead10":  # correlations and their differences live in [-1, 1]
        bound = 2.0 if key == "null_margin" else 1.0
        lo, hi = max(lo, -bound), min(hi, bound)
    return {key: float(stat(v)) if len(v) else None, f"{key}_lo": lo, f"{key}_hi": hi, f"{key}_n": int(len(v))}


def _why(rows: list[dict], col: str) -> str | None:
    reasons = [r.get(f"why_{col}") for r in rows if r.get(f"why_{col}")]
    return max(set(reasons), key=reasons.count) if reasons else None


def _null_margin(rows: list[dict], nulls_by_unit: dict[str, float]) -> None:
    """|ρΔ| of the signal minus the largest |ρΔ| of a null signal in the same unit (None where no null is defined)."""
    for r in rows:
        best = nulls_by_unit.get(r["unit"])
        r["null_margin"] = abs(r["rho"]) - best if (r.get("rho") is not None and best is not None) else None


def _prediction(units: pl.DataFrame, sig_rows: dict[tuple, list[dict]]) -> dict[tuple, dict]:
    """Leave-one-out R² of the signal read at an early fraction of training → the unit's outcome summary, within
    comparison groups of ≥ 4 units; the same for the weight norm and the nulls as predictors. Step and round axes (a
    sweep's points are different models: nothing in them is "early")."""
    out: dict[tuple, dict] = {}
    baselines: dict[tuple, float | None] = {}  # a reference predictor's R² over one set of units, computed once

    def r2_of(by_unit: dict[str, dict], rs: list[dict], key: str) -> float | None:
        x = [by_unit[r["unit"]][key] if r["unit"] in by_unit else None for r in rs]
        return S.loo_r2(np.array([np.nan if v is None else v for v in x], float),
                        np.array([np.nan if r["summary"] is None else r["summary"] for r in rs], float))

    for (sig, ph), rows in sig_rows.items():
        res: dict = {}
        by_group: dict[str, list[dict]] = {}
        if isinstance(parse_axis(rows[0]["axis"]), (Step, RoundMetric)):  # one axis per phenomenon
            for r in rows:
                by_group.setdefault(r["group"], []).append(r)
        for f in EARLY:
            key = f"at{int(f * 100)}"
            r2s, ns, ref = [], 0, {}
            for g, rs in by_group.items():
                if len(rs) < 4:
                    continue
                r2 = r2_of({r["unit"]: r for r in rs}, rs, key)
                if r2 is None:
                    continue
                r2s.append(r2)
                ns += len(rs)
                for base in (catalog.BASELINE, *catalog.NULLS):
                    memo = (base, ph, g, key, tuple(r["unit"] for r in rs))
                    if memo not in baselines:
                        baselines[memo] = r2_of({r["unit"]: r for r in sig_rows.get((base, ph), []) if r["group"] == g},
                                                rs, key)
                    if baselines[memo] is not None:
                        ref.setdefault(base, []).append(baselines[memo])
            res[f"r2_{int(f * 100)}"] = float(np.mean(r2s)) if r2s else None
            res[f"r2_{int(f * 100)}_norm"] = float(np.mean(ref[catalog.BASELINE])) if ref.get(catalog.BASELINE) else None
            nulls = [float(np.mean(ref[n])) for n in catalog.NULLS if ref.get(n)]
            res[f"r2_{int(f * 100)}_null"] = max(nulls) if nulls else None
            res["n_pred"] = max(res.get("n_pred", 0), ns)
        out[(sig, ph)] = res
    return out


def _intervention(rows: list[dict]) -> dict:
    """(baseline, toggled) pairs of one group and seed whose effect (the unit summary) moved by at least half the
    phenomenon's `moves`: does the signal's mean move the way its level association with the outcome predicts?"""
    base = {(r["group"], r["seed"]): r for r in rows if r["toggles"] == ""}
    levels = _vals([r for r in rows if r["toggles"] == ""], "rho_level")
    direction = np.median(levels) if len(levels) else None
    k = n = 0
    for r in rows:
        b = base.get((r["group"], r["seed"]))
        if r["toggles"] == "" or b is None or direction is None or r["summary"] is None or b["summary"] is None:
            continue
        effect = r["summary"] - b["summary"]
        if abs(effect) < 0.5 * r["moves"] or r["mean_value"] is None or b["mean_value"] is None:
            continue
        n += 1
        k += int(np.sign(r["mean_value"] - b["mean_value"]) == np.sign(direction) * np.sign(effect))
    lo, hi = S.wilson(k, n)
    return {"intervention": k / n if n else None, "iv_agree": k, "iv_pairs": n, "intervention_lo": lo,
            "intervention_hi": hi}


def read_invariance(run_dirs: dict[str, Path]) -> dict[str, dict]:
    """run id -> its invariance.json (written after training: signals recomputed under ReLU rescalings)."""
    out = {}
    for rid, d in run_dirs.items():
        try:
            obj = json.loads((Path(d) / "invariance.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(obj, dict) and isinstance(obj.get("signals"), dict) and obj.get("function_preserved") is True:
            out[rid] = obj["signals"]
    return out


def _invariance(rows: list[dict], inv: dict[str, dict]) -> dict:
    seen, moved, worst = 0, 0, None
    for rid in {rid for r in rows for rid in r["runs"]}:
        s = inv.get(rid, {}).get(rows[0]["signal"])
        if not isinstance(s, dict) or not isinstance(s.get("rel_change"), (int, float)) or s.get("all_zero"):
            continue  # a signal that is 0 before and after every rescaling is vacuously invariant: no evidence
        seen += 1
        moved += int(not s.get("invariant", False))
        worst = max(worst or 0.0, float(s["rel_change"]))
    return {"invariant": (moved == 0) if seen else None, "inv_runs": seen, "inv_change": worst}


def aggregate(units: pl.DataFrame, invariance: dict[str, dict] | None = None) -> pl.DataFrame:
    """One row per signal × phenomenon, plus an `(all)` row per signal (generality across phenomena)."""
    if units.height == 0:
        return pl.DataFrame()
    all_rows = units.to_dicts()
    sig_rows: dict[tuple, list[dict]] = {}
    for r in all_rows:
        sig_rows.setdefault((r["signal"], r["phenomenon"]), []).append(r)
    # the nulls' |ρΔ| per unit: what any series with the same smoothness reaches
    nulls_by_unit: dict[str, float] = {}
    for r in all_rows:
        if r["signal"] in catalog.NULLS and r["rho"] is not None:
            nulls_by_unit[r["unit"]] = max(nulls_by_unit.get(r["unit"], 0.0), abs(r["rho"]))
    pred = _prediction(units, sig_rows)
    inv = invariance or {}
    out = []
    for (sig, ph), rows in sig_rows.items():
        moving = [r for r in rows if r["moving"]]
        _null_margin(moving, nulls_by_unit)
        scored = [r for r in moving if r["rho"] is not None]
        row = {"signal": sig, "phenomenon": ph, "axis": rows[0]["axis"], "units": len(rows),
               "n_units": len(scored), "nulls": int(sum(r["n_null"] for r in rows))}
        row.update(_estimate(scored, "rho", np.mean))
        row["tracking"], row["tracking_lo"], row["tracking_hi"] = row.pop("rho"), row.pop("rho_lo"), row.pop("rho_hi")
        row.pop("rho_n")
        row["level_rho"] = float(np.median(_vals(moving, "rho_level"))) if len(_vals(moving, "rho_level")) else None
        # one unit: |Δ-ρ| against its surrogates' magnitudes; several: the mean signed Δ-ρ against means of one
        # surrogate draw per unit (agreement in sign across seeds and toggles is the evidence)
        if len(scored) == 1:
            row["p"] = S.perm_p(scored[0]["rho"], np.asarray(scored[0]["rho_null"]))
        else:
            row["p"] = S.pooled_p([r["rho"] for r in scored], [r["rho_null"] for r in scored]) if scored else None
        row["why_tracking"] = None if scored else ("the outcome does not move in any unit" if not moving else
                                                   _why(moving, "rho") or "undefined")
        row.update(_estimate(scored, "null_margin"))
        for col in ("norm", "mean_abs", "n_ge", "step"):
            row.update(_estimate(moving, f"partial_{col}"))
            row[f"why_partial_{col}"] = _why(moving, col) if row[f"partial_{col}"] is None else None
        row.update(_estimate(moving, "lead", np.median))
        row.update(_estimate(moving, "lead10", np.median))
        row.update(pred.get((sig, ph), {}))
        row.update(_intervention(rows))
        row.update(_invariance(rows, inv))
        out.append(row)
    q = S.bh([r["p"] for r in out])
    for r, qv in zip(out, q):
        r["q"] = qv
        r["tracks"] = None if qv is None else bool(qv < ALPHA)
        nm_lo, nm_hi = r["null_margin_lo"], r["null_margin_hi"]
        r["beats_null"] = None if (r["signal"] in catalog.NULLS or nm_lo is None) else bool(nm_lo > 0)
        plo, phi = r["partial_norm_lo"], r["partial_norm_hi"]
        beyond_norm = None if (r["signal"] == catalog.BASELINE or plo is None) else bool(
            plo > MIN_PARTIAL or phi < -MIN_PARTIAL)
        r["beyond_norm"] = beyond_norm
        parts = [r["tracks"], r["beats_null"], beyond_norm]
        r["explains"] = None if r["signal"] in catalog.NULLS else (
            False if any(p is False for p in parts) else True if all(p is True for p in parts) else None)
        r["verdict"] = verdict(r)
        r["short"] = short_verdict(r)
    table = pl.DataFrame(out, infer_schema_length=None)
    # a column that is undefined in every row still has its type (null, not a number)
    bools = {"tracks", "beats_null", "beyond_norm", "explains", "invariant"}
    table = table.with_columns([pl.col(c).cast(pl.Boolean if c in bools else pl.String if c.startswith("why")
                                               else pl.Float64)
                                for c, t in table.schema.items() if t == pl.Null])
    overall = (table.group_by("signal").agg(
        pl.col("n_units").sum(), pl.col("units").sum(), pl.col("nulls").sum(),
        pl.col("tracking").abs().mean(),
        (pl.col("tracks") == True).sum().alias("ph_tracking"),  # noqa: E712 - a null is not a True
        pl.col("tracks").is_not_null().sum().alias("ph_judged"),
        (pl.col("explains") == True).sum().alias("ph_explains"))  # noqa: E712
        .with_columns(phenomenon=pl.lit("(all)"), generality=pl.format("{}/{}", "ph_tracking", "ph_judged"),
                      verdict=pl.format("tracks in {} of {} phenomena judged; explains in {}", "ph_tracking",
                                        "ph_judged", "ph_explains"),
                      short=pl.format("pooled: tracks in {}/{}", "ph_tracking", "ph_judged")))
    table = table.join(overall.select("signal", "ph_tracking", "ph_judged", "generality"), on="signal", how="left")
    table = pl.concat([table, overall.drop("ph_tracking", "ph_judged", "ph_explains")], how="diagonal_relaxed")
    # per phenomenon first; the pooled rows after them, in addition
    return table.sort(pl.col("phenomenon") == "(all)", "phenomenon", pl.col("tracking").abs(),
                      descending=[False, False, True], nulls_last=True)


def _ci(r: dict, key: str, fmt: str = "{:+.2f}") -> str:
    v, lo, hi, n = r.get(key), r.get(f"{key}_lo"), r.get(f"{key}_hi"), r.get(f"{key}_n", r.get("n_units"))
    if v is None:
        return "n/a"
    if lo is None:
        return f"{fmt.format(v)} (n={n}, no interval)"
    return f"{fmt.format(v)} [{fmt.format(lo)}, {fmt.format(hi)}] (n={n})"


def verdict(r: dict) -> str:
    """The words, with n and the interval; undefined parts say why."""
    sig = r["signal"]
    if r["n_units"] == 0:
        return f"no information: {r['why_tracking']}"
    n = r["n_units"]
    head = f"Δ-ρ {_ci({**r, 'tracking_n': n}, 'tracking')}, q={r['q']:.3f}" if r["q"] is not None else "Δ-ρ n/a"
    if sig in catalog.NULLS:
        return f"a null signal ({'tracks' if r['tracks'] else 'does not track'}): {head}"
    if not r["tracks"]:
        return f"does not track (changes): {head}"
    if r["beats_null"] is None:
        nulls = "no interval (fewer than 3 units)" if r["null_margin"] is not None else "no null logged"
        return f"tracks; vs the nulls: {nulls}; {head}"
    if not r["beats_null"]:
        return f"tracks, but no better than the nulls (margin {_ci(r, 'null_margin')}); {head}"
    if sig == catalog.BASELINE:
        return f"the broad baseline: tracks beyond the nulls; {head}"
    if r["beyond_norm"] is None:
        why = r.get("why_partial_norm") or "no interval (fewer than 3 units)"
        return f"tracks beyond the nulls; beyond the norm n/a: {why}; {head}"
    if not r["beyond_norm"]:
        return f"tracks beyond the nulls, adds nothing beyond the norm (partial {_ci(r, 'partial_norm')})"
    return f"explains: tracks beyond the nulls and the norm (partial {_ci(r, 'partial_norm')}); {head}"


def short_verdict(r: dict) -> str:
    """The verdict in a few words, for a narrow column; `verdict` has the numbers."""
    if r["n_units"] == 0:
        return "no information"
    if r["signal"] in catalog.NULLS:
        return "null signal"
    if not r["tracks"]:
        return "does not track"
    if r["beats_null"] is None:
        return "tracks; vs nulls n/a"
    if not r["beats_null"]:
        return "no better than the nulls"
    if r["signal"] == catalog.BASELINE:
        return "the broad baseline"
    if r["beyond_norm"] is None:
        return "beats nulls; vs norm n/a"
    return "explains" if r["beyond_norm"] else "adds nothing beyond the norm"
