"""Per signal × unit statistics: association of changes (with its circular-shift null), level ρ for reference,
partial correlations (on increments given each magnitude statistic; on levels given the step), onsets, early values.

Undefined stays undefined: a statistic that cannot be computed is null, and a `why_*` column says why.
"""

from __future__ import annotations

import zlib

import numpy as np
import polars as pl

from phenomon import catalog
from phenomon.scorecard import stats as S
from phenomon.store.axis import Axis, ConfigField, RoundMetric, Step
from phenomon.store.axis import parse as parse_axis

# column-safe names of the magnitude confounds
MAG_COLS = {"signal/weight_norm": "norm", "signal/magnitude/mean_abs": "mean_abs", "signal/magnitude/n_ge_1.5": "n_ge"}
EARLY = (0.10, 0.25)  # fractions of training at which a signal's value is read to predict a run's outcome


def _summary(axis: Axis, x: np.ndarray, o: np.ndarray) -> float | None:
    """The unit's outcome in the phenomenon's own terms (what prediction and intervention are about).

    step: the mean outcome over the run (earlier grokking → higher); config (a sweep of final test error): the peak
    height, how far the error rises above the best narrower model; rounds: the mean outcome over rounds."""
    if len(o) == 0:
        return None
    if isinstance(axis, ConfigField):
        if len(o) < 3:
            return None
        best = np.minimum.accumulate(o)
        return float(np.max(o[1:] - best[:-1]).clip(min=0.0))
    if isinstance(axis, Step) and len(x) > 1 and x[-1] > x[0]:
        return float(np.trapezoid(o, x) / (x[-1] - x[0])) if hasattr(np, "trapezoid") else float(np.trapz(o, x) / (x[-1] - x[0]))
    return float(np.mean(o))


def _why(a: np.ndarray) -> str:
    return "too few points" if len(a) < 4 else "constant"


def _pc(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson correlation (of rank scores already computed on the whole series)."""
    if len(a) < 4:
        return None
    a, b = a - a.mean(), b - b.mean()
    d = float(np.sqrt((a @ a) * (b @ b)))
    return float(a @ b / d) if d > 0 else None


def _cz(za: np.ndarray | None, zb: np.ndarray | None) -> float | None:
    """Spearman ρ from standardised ranks."""
    if za is None or zb is None or len(za) < 4:
        return None
    return float(za @ zb / len(za))


def _aligned(dv: np.ndarray, do: np.ndarray, dz: np.ndarray, lag: int):
    m = len(dv)
    if lag >= 0:
        return dv[:m - lag], do[lag:], dz[:m - lag]
    return dv[-lag:], do[:m + lag], dz[-lag:]


def _seed(unit: str, sig: str) -> int:
    return zlib.crc32(f"{unit}|{sig}".encode())


def _increments(sig: str, v: np.ndarray) -> np.ndarray:
    if sig == catalog.NULL_STEP:
        # time itself: any smooth monotone transform of the step has increments ranked like the step index
        # (convex) or its reverse (concave); Spearman only sees ranks, so one ramp stands for all of them
        return np.arange(len(v) - 1, dtype=float)
    return np.diff(v)


def _associations(unit: str, zinc: dict[str, np.ndarray | None], zo: np.ndarray | None) -> dict[str, tuple]:
    """Δ-ρ, lag and surrogate null of every signal logged at every point of the unit, in one batch: `zinc` holds
    those signals' standardised increment ranks, `zo` the outcome's."""
    names = [sig for sig, zd in zinc.items() if zd is not None]
    if zo is None or len(zo) < 4 or not names:
        return {}
    obs, lags, null = S.association_many(np.stack([zinc[n] for n in names]), zo, [_seed(unit, n) for n in names])
    return {n: (float(obs[i]), int(lags[i]), null[i]) for i, n in enumerate(names)}


def per_unit(pts: pl.DataFrame) -> pl.DataFrame:
    """One row per signal × unit (see the module docstring); `rho_null` holds the shifted correlations."""
    rows: list[dict] = []
    if pts.height == 0:
        return pl.DataFrame()
    pts = pts.filter(pl.col("outcome").is_not_null())
    nnull = pts.group_by("unit", "signal").agg(pl.col("n_null").sum())
    nnull = {(a, b): c for a, b, c in nnull.iter_rows()}
    # every unit's points as one wide frame (x, outcome, one column per signal), split once: a few queries in all,
    # not a handful per unit
    meta = pts.group_by("unit", maintain_order=True).agg(
        pl.col("phenomenon", "group", "toggles", "seed", "axis", "moves").first(), pl.col("run").unique(),
        pl.col("signal").unique()).sort("unit")  # a fixed order: resampling and pooled draws go by position
    wide_all = (pts.pivot(on="signal", index=["unit", "x"], values="value", aggregate_function="last")
                .join(pts.group_by("unit", "x").agg(pl.col("outcome").last().alias("__outcome")), on=["unit", "x"])
                .sort("unit", "x"))
    parts = wide_all.partition_by("unit", as_dict=True, maintain_order=True)
    for meta in meta.iter_rows(named=True):
        unit = meta["unit"]
        wide = parts[(unit,)]
        axis_name = meta["axis"]
        axis = parse_axis(axis_name)  # the points frame carries the axis in its stored string form
        x = wide["x"].to_numpy().astype(float)
        o = wide["__outcome"].to_numpy().astype(float)
        runs = sorted(meta["run"])
        cols = {c: wide[c].to_numpy().astype(float) for c in sorted(meta["signal"])}
        moving = bool(len(o) and (np.nanmax(o) - np.nanmin(o)) >= meta["moves"])
        summary = _summary(axis, x, o)
        on_out = {f: S.onset(x, o, f) for f in (0.05, 0.10)} if isinstance(axis, Step) else {}
        span = (x[-1] - x[0]) if len(x) > 1 else 0.0
        # standardised ranks of the unit's full-length series, computed once: the outcome's increments, and those
        # of every signal logged at every point (which also get their Δ-ρ in one batch)
        cache: dict[str, np.ndarray | None] = {"do": S.zrank(np.diff(o))}
        zinc = {sig: S.zrank(_increments(sig, v)) for sig, v in cols.items() if np.isfinite(v).all()}
        assoc = _associations(unit, zinc, cache["do"])
        for sig, v in cols.items():
            ok = np.isfinite(v)
            xs, vs, os_ = x[ok], v[ok], o[ok]
            full = bool(ok.all())

            def z(key: str | None, arr: np.ndarray) -> np.ndarray | None:
                if not (full and key):
                    return S.zrank(arr)
                if key not in cache:
                    cache[key] = S.zrank(arr)
                return cache[key]

            r: dict = {"phenomenon": meta["phenomenon"], "group": meta["group"], "toggles": meta["toggles"],
                       "seed": meta["seed"], "unit": unit, "runs": runs, "axis": axis_name, "signal": sig,
                       "n": int(ok.sum()), "moving": moving, "summary": summary,
                       "n_null": int(nnull.get((unit, sig), 0)), "moves": meta["moves"],
                       "mean_value": float(vs.mean()) if len(vs) else None,
                       "final_outcome": float(os_[-1]) if len(os_) else None}
            zv = S.zrank(vs)
            r["rho_level"] = _cz(zv, z("o", os_))
            dv, do = _increments(sig, vs), np.diff(os_)
            zdv, zdo = (zinc[sig] if full else S.zrank(dv)), z("do", do)
            if sig in assoc:
                rho, lag, null = assoc[sig]
            else:
                rho, lag, null = S.association(dv, do, seed=_seed(unit, sig), zs=zdv, zo=zdo)
            r["rho"], r["lag"], r["rho_null"] = rho, lag, (null.tolist() if null is not None else None)
            r["why_rho"] = None if rho is not None else _why(dv) if len(dv) < 4 or S.standardise(dv) is None \
                else "outcome constant"
            # beyond each magnitude statistic: partial ρ on increments
            for name, col in MAG_COLS.items():
                conf = cols.get(name)
                if conf is None:
                    r[f"partial_{col}"], r[f"why_{col}"] = None, "not logged"
                    continue
                if name == sig:
                    r[f"partial_{col}"], r[f"why_{col}"] = None, "itself"
                    continue
                okz = np.isfinite(conf[ok])
                dz = np.diff(conf[ok]) if okz.all() else None
                if dz is None:
                    r[f"partial_{col}"], r[f"why_{col}"] = None, "not logged at every point"
                    continue
                # at the signal's own lag, the confound aligned with the signal
                zz = z(f"d{name}", dz)
                if not lag:
                    p, why = S.partial(_cz(zdv, zdo), _cz(zdv, zz), _cz(zdo, zz))
                elif zdv is None or zdo is None or zz is None:
                    p, why = None, "too few points"
                else:  # the ranks' correlation over the overlap of the lagged series
                    x_, y_, z_ = _aligned(zdv, zdo, zz, lag)
                    p, why = S.partial(_pc(x_, y_), _pc(x_, z_), _pc(y_, z_))
                r[f"partial_{col}"] = p
                r[f"why_{col}"] = None if p is not None else (
                    f"the signal's changes are a monotone function of {name}'s" if why == "signal" else
                    f"the outcome's changes are a monotone function of {name}'s" if why == "outcome" else
                    "undefined (constant or too few points)")
            # beyond time: partial ρ on levels given the step (detrended by rank)
            zx = z("x", xs)
            p, why = S.partial(r["rho_level"], _cz(zv, zx), _cz(z("o", os_), zx))
            r["partial_step"] = p
            r["why_step"] = None if p is not None else (
                "the signal is a monotone function of step" if why == "signal" else
                "the outcome is a monotone function of step" if why == "outcome" else
                "undefined (constant or too few points)")
            r["lead"] = r["lead10"] = None
            if isinstance(axis, Step) and span > 0:
                for f, key in ((0.05, "lead"), (0.10, "lead10")):
                    so, oo = S.onset(xs, vs, f), on_out.get(f)
                    r[key] = (oo - so) / span if (so is not None and oo is not None and moving) else None
            for f in EARLY:
                # the signal early in training (steps) or early in the pruning lineage (rounds); a sweep has no
                # "early": its points are different models
                key = f"at{int(f * 100)}"
                r[key] = None
                if isinstance(axis, (Step, RoundMetric)) and span > 0 and len(xs):
                    i = int(np.searchsorted(xs, xs[0] + f * span))
                    r[key] = float(vs[i]) if i < len(vs) else None
            rows.append(r)
    return pl.DataFrame(rows, infer_schema_length=None)

