"""Chart series from the store's frame queries: each configuration or label a `Series` of numpy arrays to draw."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from phenomon import store
from phenomon.store.axis import ConfigField, RoundMetric


@dataclass(frozen=True, eq=False)  # arrays inside: compared by identity, so a new series always redraws
class Series:
    """One labelled line of a chart: x, y and an optional spread band (lo, hi), as numpy arrays."""

    label: str
    x: np.ndarray
    y: np.ndarray
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    color: int = 0  # index into the chart palette
    key: str = ""  # the configuration (or sweep label) it draws: what hiding one configuration hides


def _series(label: str, band: pl.DataFrame, x: str, color: int, key: str = "") -> Series:
    """A band is drawn only where at least two seeds have a value: one seed's own value is no spread."""
    two = band["n"].to_numpy() > 1
    lo = np.where(two, band["lo"].to_numpy(), np.nan) if two.any() else None
    hi = np.where(two, band["hi"].to_numpy(), np.nan) if two.any() else None
    return Series(label, band[x].to_numpy().astype(float), band["mean"].to_numpy(), lo, hi, color, key)


BAND_SCHEMA = {"step": pl.Int64, "mean": pl.Float64, "lo": pl.Float64, "hi": pl.Float64, "n": pl.UInt32}


@dataclass
class Pool:
    """One configuration's pooled curve of one metric, kept between refreshes: rows up to `done` are final."""

    done: float = -math.inf  # every run of the configuration has passed this step (live ones) or ended
    head: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=BAND_SCHEMA))
    ema: dict[str, float] = field(default_factory=dict)  # each run's smoothed value at its last row up to `done`
    heights: dict[str, int] = field(default_factory=dict)


def _smoothed_tail(f: pl.DataFrame, after: float, alpha: float, prev: float | None) -> pl.DataFrame:
    """(step, value) of one run after step `after`, its EMA continued from `prev` (its value at `after`)."""
    i = 0 if after == -math.inf else f["step"].search_sorted(int(after), side="right")
    t = f.slice(i).select("step", "value").drop_nulls("value")
    if alpha <= 0 or t.height == 0:
        return t
    if prev is not None:  # adjust=False EMA: a first row equal to the state continues it exactly
        t = pl.concat([pl.DataFrame({"step": [int(after)], "value": [prev]}, schema=t.schema), t])
    t = t.select("step", store.ema("value", alpha))
    return t.slice(1) if prev is not None else t


def pooled(runs: dict[str, pl.DataFrame], live: set[str], alpha: float, pool: Pool | None = None
           ) -> tuple[pl.DataFrame, Pool]:
    """`store.seeds_over_steps` without thinning, incrementally: with the `pool` of the last refresh, only rows
    after the step every live run has passed are read again, so a streamed row costs the same at 1k or 100k rows.

    Returns (step, mean, lo, hi, n) and the pool for the next call (the chart rasterises every point: spikes stay).
    """
    if pool is None or any(runs[r].height < h for r, h in pool.heights.items() if r in runs):
        pool = Pool()  # first call, or rows went missing (a run directory rewritten): start over
    tails = {rid: _smoothed_tail(f, pool.done, alpha, pool.ema.get(rid)) for rid, f in runs.items()}
    parts = [t for t in tails.values() if t.height]
    if not parts:
        tail = pl.DataFrame(schema=BAND_SCHEMA)
    elif len(runs) == 1:
        v = pl.col("value")
        tail = parts[0].select("step", v.alias("mean"), v.alias("lo"), v.alias("hi"), pl.lit(1, pl.UInt32).alias("n"))
    else:
        tail = store.mean_band(pl.concat(parts), "step").collect()
    full = pl.concat([pool.head, tail.cast(BAND_SCHEMA)], rechunk=True)
    lasts = [f["step"][-1] if f.height else -math.inf for rid, f in runs.items() if rid in live]
    done = max(pool.done, min(lasts)) if lasts else math.inf
    ema = dict(pool.ema)
    if alpha > 0:
        for rid, t in tails.items():
            upto = t.filter(pl.col("step") <= done) if done < math.inf else t
            if upto.height:
                ema[rid] = upto["value"][-1]
    head = (full if done == math.inf else full.filter(pl.col("step") <= done)).rechunk()
    return full, Pool(done, head, ema, {rid: f.height for rid, f in runs.items()})


def config_labels(manifests: dict[str, dict]) -> dict[str, str]:
    """Configuration key -> what sets it apart from the others compared: the settings that differ ("weight decay 0,
    lr 0.003"), not the toggle's name; a single configuration is named by its toggles ("baseline")."""
    groups = store.by_configuration(manifests)
    cfgs = {k: manifests[rids[0]].get("config") or {} for k, rids in groups.items()}
    keys = sorted({f for c in cfgs.values() for f in c} - {"seed"})
    differ = [f for f in keys if len({json.dumps(c.get(f), sort_keys=True, default=str) for c in cfgs.values()}) > 1]
    out = {}
    for k, rids in groups.items():
        settings = ", ".join(f"{f.replace('_', ' ')} {_val(cfgs[k].get(f))}" for f in differ)
        out[k] = settings or store.label_of(manifests[rids[0]])
    return out


def _val(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    return "–" if v is None else str(v)


ENDED_EARLY = ("killed", "failed", "dead")


def step_series(frames: store.queries.RunFrames, manifests: dict[str, dict], metric: str, *, alpha: float = 0.0,
                buckets: int = 200, log_x: bool = True, rows: dict[str, int] | None = None,
                cache: dict | None = None, states: dict[str, str] | None = None) -> list[Series]:
    """One series per configuration (seeds pooled: mean with a band where ≥ 2 seeds have data), in run order.

    `states` (run id -> running / finished / killed / dead ...) marks configurations with runs that ended early and
    says which runs still grow; with a `cache` dict each configuration's pool is kept, so a refresh reads only the
    rows after the step every live run has passed, and (with `rows`, run id -> rows read) a configuration whose
    runs got no new rows is not recomputed at all. `buckets` and `log_x` are kept for callers; the chart
    rasterises every point.
    """
    states = states if states is not None else {r: m.get("status", "") for r, m in manifests.items()}
    labels = config_labels(manifests)
    out = []
    for n, (ck, rids) in enumerate(store.by_configuration(manifests).items()):
        key = (tuple((r, rows.get(r), states.get(r)) for r in rids), metric, alpha, n) if rows is not None else None
        if cache is not None and key is not None and key in cache:
            if cache[key] is not None:
                out.append(cache[key])
            continue
        runs_in = {r: frames[r][metric] for r in rids if metric in frames.get(r, {})}
        runs_in = {r: f for r, f in runs_in.items() if f.height > f["value"].null_count()}
        series = None
        if runs_in:
            pkey = ("pool", tuple(runs_in), metric, alpha)
            live = {r for r in runs_in if states.get(r) == "running"}
            band, pool = pooled(runs_in, live, alpha, cache.get(pkey) if cache is not None else None)
            if cache is not None:
                cache[pkey] = pool
            ended = sorted({states.get(r) for r in rids} & set(ENDED_EARLY))
            label = labels[ck] + (f" ({len(runs_in)} seeds)" if len(runs_in) > 1 else "")
            label += f" [{'/'.join(ended)}]" if ended else ""
            series = _series(label, band, "step", n, ck)
            out.append(series)
        if cache is not None and key is not None:
            last = ("last", tuple(rids), metric, alpha)
            cache.pop(cache.get(last), None)  # the same configuration at fewer rows: never asked for again
            cache[key], cache[last] = series, key
    return out


def sweep_series(frames: store.queries.RunFrames, manifests: dict[str, dict], metric: str,
                 axis: ConfigField | RoundMetric) -> list[Series]:
    """One series per label against a sweep field (a point per run) or a round metric (a point per round)."""
    pts = store.sweep_points(frames, manifests, metric, axis)
    labels = pts["label"].unique(maintain_order=True).to_list()
    return [_series(label, pts.filter(pl.col("label") == label), "x", n, label) for n, label in enumerate(labels)]
