"""Frame expressions behind the charts: EMA smoothing, spike-keeping thinning, seeds as mean and spread, sweep axes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from phenomon.config import config_hash


@dataclass(frozen=True, eq=False)  # arrays inside: compared by identity, so a new series always redraws
class Series:
    """One labelled line of a chart: x, y and an optional spread band (lo, hi), as numpy arrays."""

    label: str
    x: np.ndarray
    y: np.ndarray
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    color: int = 0  # index into the chart palette


def config_key(manifest: dict, drop: tuple[str, ...] = ("seed",)) -> str:
    """Runs with the same key are seeds of one configuration."""
    cfg = {k: v for k, v in (manifest.get("config") or {}).items() if k not in drop}
    return config_hash(cfg, 10)


def label_of(manifest: dict) -> str:
    return "+".join(manifest.get("toggles") or []) or "baseline"


def ema(col: str, alpha: float) -> pl.Expr:
    """Exponential moving average; alpha 0 means no smoothing (the expression is the column itself)."""
    if alpha <= 0:
        return pl.col(col)
    return pl.col(col).ewm_mean(alpha=1.0 - alpha, adjust=False, ignore_nulls=True)


def thin(df: pl.DataFrame, x: str, y: str, buckets: int, *, log_x: bool = False) -> pl.DataFrame:
    """Keep, per x bucket, the first, last, min and max point: spikes survive, the count drops to ~4 per bucket."""
    if df.height <= 4 * buckets:
        return df
    return thin_lazy(df.lazy(), x, y, buckets, log_x=log_x).collect(engine="in-memory")


def thin_lazy(lf: pl.LazyFrame, x: str, y: str, buckets: int, *, log_x: bool = False) -> pl.LazyFrame:
    xs = pl.col(x).cast(pl.Float64)
    xs = xs.clip(lower_bound=1.0).log10() if log_x else xs
    b = ((xs - xs.min()) / (xs.max() - xs.min() + 1e-12) * buckets).floor().cast(pl.Int64).alias("_b")
    lf = lf.with_columns(b, pl.int_range(pl.len()).alias("_i"))
    # one group-by picks the rows to keep (half the CPU of four window expressions over the whole frame)
    keep = lf.group_by("_b").agg(
        pl.col("_i").first().alias("k0"), pl.col("_i").last().alias("k1"),
        pl.col("_i").get(pl.col(y).arg_max()).alias("k2"), pl.col("_i").get(pl.col(y).arg_min()).alias("k3"),
    ).select(pl.concat_list("k0", "k1", "k2", "k3").explode().alias("_i"))
    return lf.join(keep, on="_i", how="semi").drop("_b", "_i")


def metric_over_steps(rows: pl.DataFrame, alpha: float) -> pl.LazyFrame:
    """(step, value) of one metric of one run, smoothed; rows arrive in step order from the store."""
    return rows.lazy().filter(pl.col("value").is_not_null()).select("step", ema("value", alpha).alias("value"))


def step_series(frames: dict[str, dict[str, pl.DataFrame]], manifests: dict[str, dict], metric: str, *, alpha: float = 0.0,
                buckets: int = 200, log_x: bool = True, rows: dict[str, int] | None = None,
                cache: dict | None = None) -> list[Series]:
    """One series per configuration (seeds pooled: mean with a min–max band), in the order runs are given.

    With `rows` (run id -> rows read) and a `cache` dict, a configuration whose runs got no new rows is not
    recomputed: finished runs cost nothing while live ones stream in.
    """
    by_cfg: dict[str, list[str]] = {}
    for rid, m in manifests.items():
        by_cfg.setdefault(config_key(m), []).append(rid)
    out = []
    for n, (key, rids) in enumerate(by_cfg.items()):
        ck = (tuple((r, rows.get(r)) for r in rids), metric, alpha, buckets, log_x, n) if rows is not None else None
        if cache is not None and ck in cache:
            if cache[ck] is not None:
                out.append(cache[ck])
            continue
        if cache is not None and ck is not None:
            cache[ck] = None
        rows_in = [frames[r][metric] for r in rids if metric in frames.get(r, {})]
        rows_in = [f for f in rows_in if f.height > f["value"].null_count()]
        if not rows_in:
            continue
        # one lazy query per configuration (a collect per step costs more than the work on a live run)
        parts = [metric_over_steps(f, alpha) for f in rows_in]
        if len(parts) == 1:
            lf = parts[0].rename({"value": "y"})
        else:
            lf = (pl.concat(parts).group_by("step")
                  .agg(pl.col("value").mean().alias("y"), pl.col("value").min().alias("lo"),
                       pl.col("value").max().alias("hi"))
                  .sort("step"))
        if max(f.height for f in rows_in) > 4 * buckets:
            lf = thin_lazy(lf, "step", "y", buckets, log_x=log_x)
        agg = lf.collect(engine="in-memory")  # the streaming engine's threads cost more than these small queries
        label = label_of(manifests[rids[0]]) + (f" ({len(parts)} seeds)" if len(parts) > 1 else "")
        band = len(parts) > 1
        out.append(Series(label, agg["step"].to_numpy().astype(float), agg["y"].to_numpy(),
                          agg["lo"].to_numpy() if band else None, agg["hi"].to_numpy() if band else None, n))
        if cache is not None and ck is not None:
            cache[ck] = out[-1]
    return out


def _final_points(frames: dict[str, pl.DataFrame], manifests: dict[str, dict], metric: str,
                  x_of) -> pl.DataFrame:
    rows = []
    for rid, m in manifests.items():
        f = frames.get(rid)
        if f is None:
            continue
        part = x_of(rid, m, f, metric)
        if part is not None and part.height:
            rows.append(part.with_columns(pl.lit(label_of(m)).alias("label")))
    if not rows:
        return pl.DataFrame(schema={"x": pl.Float64, "y": pl.Float64, "label": pl.String})
    return pl.concat(rows, how="vertical_relaxed")


def sweep_series(frames: dict[str, pl.DataFrame], manifests: dict[str, dict], metric: str, x_axis: str) -> list[Series]:
    """x_axis 'config:<field>' (one point per run, at its last value) or 'metric:<name>' (one point per round)."""
    kind, _, name = x_axis.partition(":")

    def by_config(rid, m, f, metric):
        x = (m.get("config") or {}).get(name)
        last = f[metric].drop_nulls("value").tail(1) if metric in f else None
        if x is None or last is None or last.height == 0:
            return None
        return pl.DataFrame({"x": [float(x)], "y": [last["value"][0]]})

    def by_round(rid, m, f, metric):
        if metric not in f or name not in f:
            return None
        last = lambda col: f[col].drop_nulls("value").group_by("round").agg(pl.col("value").last().alias(col))  # noqa: E731
        return last(name).join(last(metric), on="round").select(pl.col(name).alias("x"), pl.col(metric).alias("y"))

    pts = _final_points(frames, manifests, metric, by_config if kind == "config" else by_round)
    agg = (pts.group_by("label", "x", maintain_order=True)
           .agg(pl.col("y").mean().alias("y"), pl.col("y").min().alias("lo"), pl.col("y").max().alias("hi"),
                pl.len().alias("n"))
           .sort("x"))
    out = []
    for n, label in enumerate(dict.fromkeys(pts["label"].to_list())):
        s = agg.filter(pl.col("label") == label)
        band = bool((s["n"] > 1).any())
        out.append(Series(label, s["x"].to_numpy().astype(float), s["y"].to_numpy(),
                          s["lo"].to_numpy() if band else None, s["hi"].to_numpy() if band else None, n))
    return out
