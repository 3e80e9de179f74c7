"""Frame queries over stored runs: configuration identity and labels, EMA, spike-keeping thinning, seeds pooled
as a mean with a min–max band, and the points of a sweep or of pruning rounds. Polars only."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable, Mapping, Sequence

import polars as pl

from phenomon.store.axis import ConfigField, RoundMetric

Frame = pl.DataFrame | pl.LazyFrame
# run id -> metric name -> rows (step, value, round) of that metric, as the monitor's watcher holds them
RunFrames = Mapping[str, Mapping[str, pl.DataFrame]]

BASELINE = "baseline"


# identity and labels -------------------------------------------------------------------------------------------
def config_id(config: Mapping[str, Any], *, without: Iterable[str] = (), n: int = 8) -> str:
    """A configuration's identity: the first `n` hex digits of the SHA-256 of its canonical JSON.

    `without` names the fields that do not count (`"seed"` to pool seeds, the sweep field to group a sweep).
    Run ids (`<phenomenon>-<id>`), the manifests' `config_hash` and comparison `group`s are built from it, so its
    output must never change for a given dict: old runs directories are matched by these values.
    """
    drop = set(without)
    kept = {k: v for k, v in config.items() if k not in drop}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:n]


def config_key(manifest: Mapping[str, Any]) -> str:
    """Runs with the same key are seeds of one configuration."""
    return config_id(manifest.get("config") or {}, without=("seed",))


def by_configuration(manifests: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """Run ids grouped by configuration (seeds together), groups and ids in the order the runs are given."""
    out: dict[str, list[str]] = {}
    for rid, m in manifests.items():
        out.setdefault(config_key(m), []).append(rid)
    return out


def toggles_label(toggles: Sequence[str] | None) -> str:
    """What a run's toggles read as: `weight_decay+dropout`, or `baseline` when none is on."""
    return "+".join(toggles or ()) or BASELINE


def label_of(manifest: Mapping[str, Any]) -> str:
    return toggles_label(manifest.get("toggles"))


def toggles_label_expr(col: str = "toggles") -> pl.Expr:
    """`toggles_label` over a column of comma-joined toggles (the scorecard's and experiments' `toggles`): `label`."""
    c = pl.col(col).fill_null("")
    return pl.when(c == "").then(pl.lit(BASELINE)).otherwise(c.str.replace_all(",", "+", literal=True)).alias("label")


# curves ---------------------------------------------------------------------------------------------------------
def mean_band(frame: Frame, by: str | Sequence[str], value: str = "value") -> pl.LazyFrame:
    """Per `by` key: the mean of `value` with its min–max band and count (`mean`, `lo`, `hi`, `n`), sorted by key.

    The one pooling of seeds (or of runs at one sweep point): nulls are left out of all four.
    """
    keys = [by] if isinstance(by, str) else list(by)
    v = pl.col(value)
    return (frame.lazy().group_by(keys)
            .agg(v.mean().alias("mean"), v.min().alias("lo"), v.max().alias("hi"), v.count().alias("n"))
            .sort(keys))


def ema(col: str, alpha: float) -> pl.Expr:
    """Exponential moving average; alpha 0 means no smoothing (the expression is the column itself)."""
    if alpha <= 0:
        return pl.col(col)
    return pl.col(col).ewm_mean(alpha=1.0 - alpha, adjust=False, ignore_nulls=True)


def thin(lf: pl.LazyFrame, x: str, y: str, buckets: int, *, log_x: bool = False) -> pl.LazyFrame:
    """Keep, per x bucket, the first, last, min and max point: spikes survive, the count drops to ~4 per bucket."""
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


def seeds_over_steps(runs: Sequence[pl.DataFrame], *, alpha: float = 0.0, buckets: int = 200,
                     log_x: bool = True) -> pl.DataFrame:
    """One configuration's curve over steps from its runs' rows of one metric: (step, mean, lo, hi, n).

    Each run is smoothed first; several runs are pooled with `mean_band`; one run is its own mean (lo = hi =
    mean, no group-by). Longer than 4 × `buckets` points, the curve is thinned keeping spikes.
    """
    parts = [metric_over_steps(f, alpha) for f in runs]
    if len(parts) == 1:
        v = pl.col("value")
        lf = parts[0].select("step", v.alias("mean"), v.alias("lo"), v.alias("hi"), pl.lit(1, pl.UInt32).alias("n"))
    else:
        lf = mean_band(pl.concat(parts), "step")
    if max(f.height for f in runs) > 4 * buckets:
        lf = thin(lf, "step", "mean", buckets, log_x=log_x)
    return lf.collect(engine="in-memory")  # the streaming engine's threads cost more than these small queries


def _last(f: pl.DataFrame) -> pl.DataFrame:
    """A metric's last non-null value per round: (round, value)."""
    return f.drop_nulls("value").group_by("round", maintain_order=True).agg(pl.col("value").last())


def sweep_points(frames: RunFrames, manifests: Mapping[str, Mapping[str, Any]], metric: str,
                 axis: ConfigField | RoundMetric) -> pl.DataFrame:
    """A sweep's or pruning rounds' curves: (label, x, mean, lo, hi, n), labels in run order, x ascending.

    `ConfigField(f)`: one point per run at x = its config's `f`, y = its last `metric`; `RoundMetric(m)`: one
    point per round of a run at x = its last `m`, y = its last `metric`. Runs with the same label and x pool.
    """
    pts = []
    for rid, m in manifests.items():
        f = frames.get(rid)
        if f is None or metric not in f:
            continue
        if isinstance(axis, ConfigField):
            x, ys = (m.get("config") or {}).get(axis.name), f[metric]["value"].drop_nulls()
            if x is None or ys.len() == 0:
                continue
            part = pl.DataFrame({"x": [float(x)], "y": [ys[-1]]})
        else:
            if axis.name not in f:
                continue
            part = _last(f[axis.name]).join(_last(f[metric]), on="round").select(
                pl.col("value").alias("x"), pl.col("value_right").alias("y"))
        if part.height:
            pts.append(part.with_columns(pl.lit(label_of(m)).alias("label")))
    if not pts:
        return pl.DataFrame(schema={"label": pl.String, "x": pl.Float64, "mean": pl.Float64, "lo": pl.Float64,
                                    "hi": pl.Float64, "n": pl.UInt32})
    pts = pl.concat(pts, how="vertical_relaxed").with_columns(pl.col("x").cast(pl.Float64))
    order = pts.select("label").unique(maintain_order=True).with_row_index("_o")
    return (mean_band(pts, ["label", "x"], "y").join(order.lazy(), on="label")
            .sort("_o", "x").drop("_o").collect())
