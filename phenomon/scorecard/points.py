"""Runs → scoring points: one row per (unit, x, signal) with the signal's value and the outcome's.

A unit is what one curve is: a run's training curve (or one pruning round's) on the step axis, a run's rounds on a
round axis, one sweep (group × toggles × seed) on a config axis. Everything is read through the store's reader.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import polars as pl

from phenomon import catalog, store
from phenomon.store.axis import Axis, ConfigField, RoundMetric, Step

OUTCOME_CHANGED = 0.1
BUCKETS = 256  # a run's curve is scored on at most this many points (the last value in each step bucket)

POINT_SCHEMA = {"phenomenon": pl.String, "group": pl.String, "toggles": pl.String, "seed": pl.Int64,
                "unit": pl.String, "run": pl.String, "axis": pl.String, "x": pl.Float64, "signal": pl.String,
                "value": pl.Float64, "outcome": pl.Float64, "n_null": pl.UInt32, "moves": pl.Float64}


@dataclass(frozen=True)
class Unit:
    """How one phenomenon's runs become series: x axis and outcome metric."""

    phenomenon: str
    x_axis: Axis
    outcome: str
    moves: float = OUTCOME_CHANGED  # the outcome's range within a unit must reach this for tracking to be judged


def unit_of(phenomenon: str) -> Unit:
    from phenomon import registry
    from phenomon.config import UsageError

    try:
        ph = registry.get(phenomenon)
        return Unit(phenomenon, ph.x_axis, ph.outcome, ph.outcome_moves)
    except UsageError:  # a foreign run (any Lightning module): scored over steps against test/acc
        return Unit(phenomenon, Step(), "test/acc")


def _config_x(r: store.RunInfo, axis: Axis) -> float | None:
    if not isinstance(axis, ConfigField):
        return None
    v = (r.manifest.get("config") or {}).get(axis.name)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def series(runs: list[store.RunInfo], problems: list[str] | None = None) -> pl.DataFrame:
    """Long frame (POINT_SCHEMA): one row per point of every scored signal (and null) of every unit."""
    by_ph: dict[str, list[store.RunInfo]] = {}
    for r in runs:
        by_ph.setdefault(r.phenomenon, []).append(r)
    out = []
    for ph, rs in by_ph.items():
        u = unit_of(ph)
        # runs read and reduced in threads: polars releases the GIL while it reads and groups, and one run's
        # Parquet file is read by one thread
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            reduced = [d for d in pool.map(lambda r: _reduce_run(r, u, problems), rs) if d is not None]
        if not reduced:
            continue
        meta = pl.DataFrame({
            "run": [r.id for r in rs], "phenomenon": [ph] * len(rs), "group": [r.group for r in rs],
            "toggles": [",".join(sorted(r.manifest.get("toggles") or [])) for r in rs],
            "seed": [r.manifest.get("seed") if isinstance(r.manifest.get("seed"), int) else None for r in rs],
            "xconf": [_config_x(r, u.x_axis) for r in rs],
        }, schema={"run": pl.String, "phenomenon": pl.String, "group": pl.String, "toggles": pl.String,
                   "seed": pl.Int64, "xconf": pl.Float64})
        out.append(_to_units(pl.concat(reduced), u, meta))
    if not out:
        return pl.DataFrame(schema=POINT_SCHEMA)
    return pl.concat(out, how="vertical_relaxed").select(list(POINT_SCHEMA))


def _reduce_run(r: store.RunInfo, u: Unit, problems: list[str] | None) -> pl.DataFrame | None:
    """One run's rows -> the last finite value per (round, name, bucket), with the count of non-finite values.

    On the step axis a bucket is 1/BUCKETS of the run's steps: statistics over 256 points are as good as over
    7,700, and reducing run by run keeps 10M rows within the bench's budget. Other axes keep final values only.
    """
    d = store.read_metrics(r.dir, problems=problems, columns=("step", "name", "value", "round"))
    if d.height == 0:
        return None
    d = d.with_columns(pl.col("round").cast(pl.Int64).fill_null(0))
    if isinstance(u.x_axis, Step):
        b = pl.col("step") * BUCKETS // (pl.col("step").max().over("round") + 1)
    else:
        b = pl.lit(0, pl.Int64)
    # reduce first, then pick names: the string tests run on a few thousand rows, not a hundred thousand
    red = d.with_columns(b=b).group_by("round", "name", "b").agg(
        pl.col("step").max(), pl.col("value").drop_nulls().last(), pl.col("value").null_count().alias("n_null"))
    scored = (pl.col("name") == u.outcome) | (pl.col("name").str.starts_with("signal/")
                                              & ~pl.col("name").str.contains("@", literal=True)) \
        | pl.col("name").is_in(list(catalog.NULLS))
    return red.filter(scored).with_columns(run=pl.lit(r.id))


def _to_units(df: pl.DataFrame, u: Unit, meta: pl.DataFrame) -> pl.DataFrame:
    outc = df.filter(pl.col("name") == u.outcome).select("run", "round", "b", "step", pl.col("value").alias("outcome"))
    sig = df.filter(pl.col("name") != u.outcome).select("run", "round", "b", pl.col("name").alias("signal"), "value",
                                                        "n_null")
    m = meta.select("run", "phenomenon", "group", "toggles", "seed", pl.col("xconf").alias("x"))
    if isinstance(u.x_axis, Step):
        # every outcome bucket gets every signal's latest value at or before it (signals on sparser schedules)
        grid = outc.join(sig.select("run", "signal").unique(), on="run")
        pts = (grid.join(sig, on=["run", "round", "b", "signal"], how="left")
               .sort("run", "round", "signal", "b")
               .with_columns(pl.col("value").forward_fill().over("run", "round", "signal"),
                             pl.col("n_null").fill_null(0)))
        pts = pts.join(m.drop("x"), on="run").with_columns(
            unit=pl.col("run") + pl.when(pl.col("round") > 0).then(pl.format("#r{}", "round")).otherwise(pl.lit("")),
            x=pl.col("step").cast(pl.Float64))
    elif isinstance(u.x_axis, RoundMetric):
        pts = outc.join(sig, on=["run", "round", "b"]).join(m.drop("x"), on="run").with_columns(
            unit=pl.col("run"), x=pl.col("round").cast(pl.Float64))
    elif isinstance(u.x_axis, ConfigField):
        fo = outc.group_by("run").agg(pl.col("outcome").sort_by("round").last())
        fs = sig.group_by("run", "signal").agg(pl.col("value").sort_by("round").last(), pl.col("n_null").sum())
        pts = fo.join(fs, on="run").join(m, on="run").filter(pl.col("x").is_not_null()).with_columns(
            unit=pl.format("{}|{}|{}", "group", "toggles", pl.col("seed").cast(pl.String).fill_null("?")))
    else:
        raise ValueError(f"unknown x axis {u.x_axis!r}")
    return pts.with_columns(axis=pl.lit(str(u.x_axis)), moves=pl.lit(u.moves, pl.Float64)).select(
        "phenomenon", "group", "toggles", pl.col("seed").cast(pl.Int64), "unit", "run", "axis", "x", "signal",
        pl.col("value").cast(pl.Float64), pl.col("outcome").cast(pl.Float64), pl.col("n_null").cast(pl.UInt32),
        "moves")
