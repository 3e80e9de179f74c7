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


def _series(label: str, band, x: str, color: int, key: str = "") -> Series:
    """A band is drawn only where at least two seeds have a value: one seed's own value is no spread. `band`: a
    frame or a dict of arrays with the columns x, mean, lo, hi, n."""
    two = np.asarray(band["n"]) > 1
    lo = np.where(two, np.asarray(band["lo"]), np.nan) if two.any() else None
    hi = np.where(two, np.asarray(band["hi"]), np.nan) if two.any() else None
    return Series(label, np.asarray(band[x]).astype(float), np.asarray(band["mean"]), lo, hi, color, key)


BAND_SCHEMA = {"step": pl.Int64, "mean": pl.Float64, "lo": pl.Float64, "hi": pl.Float64, "n": pl.UInt32}


@dataclass(frozen=True)
class Grid:
    """Fixed thinning bins on the step axis: 2^k bins per decade (log x) or 2^k steps wide (linear x).

    Fixed, not fitted to the data's range, so a bin whose rows are all final stays thinned while a run grows: a
    chart then rasterises ~4 points per bin however many rows a run has. Bins are finer than the chart's pixel
    columns (`for_width`), so what is drawn is what the rows say, spikes included."""

    log: bool
    per: float  # log: bins per decade; linear: steps per bin

    @classmethod
    def for_width(cls, columns: int, log_x: bool, last_step: float) -> "Grid":
        """Bins for a chart `columns` wide: log, ≥ `columns` per decade (≥ 2 per braille pixel over the ~4 decades
        of a long run); linear, ≥ 2 per braille pixel over steps 0..`last_step` (coarser as the run doubles)."""
        if log_x:
            return cls(True, float(2 ** math.ceil(math.log2(max(16, columns)))))
        return cls(False, float(2 ** math.floor(math.log2(max(1.0, last_step / (4 * max(16, columns)))))))

    def bins(self, step: np.ndarray) -> np.ndarray:
        s = np.maximum(step.astype(float), 1.0)
        return np.floor(np.log10(s) * self.per if self.log else s / self.per).astype(np.int64)


Band = dict  # column -> numpy array: step (int64), mean, lo, hi (float64), n (uint32), rows in step order
_DTYPES = {"step": np.int64, "mean": np.float64, "lo": np.float64, "hi": np.float64, "n": np.uint32}


def _empty() -> Band:
    return {c: np.empty(0, dtype=t) for c, t in _DTYPES.items()}


def _cat(*parts: Band) -> Band:
    return {c: np.concatenate([p[c] for p in parts]) for c in _DTYPES}


def _take(band: Band, idx) -> Band:
    return {c: v[idx] for c, v in band.items()}


def thin(band: Band, grid: Grid | None) -> tuple[Band, np.ndarray]:
    """Rows kept per bin of `grid`: the first, last, lowest and highest mean (spikes and ends stay); the band of a
    kept row is its bin's envelope over the rows pooled from ≥ 2 seeds (per bin: thinning part of a curve gives the
    rows thinning all of it does). Also returns the bin of each kept row. Without a grid every row is kept."""
    step = band["step"]
    if grid is None or len(step) == 0:
        return band, step
    b = grid.bins(step)
    starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
    mean, lo, hi, n = band["mean"], band["lo"], band["hi"], band["n"]
    ends = np.r_[starts[1:], len(step)] - 1
    low = np.lexsort((np.nan_to_num(mean, nan=np.inf), b))[starts]  # rows arrive sorted by step, so by bin
    high = np.lexsort((-np.nan_to_num(mean, nan=-np.inf), b))[starts]
    keep = np.unique(np.concatenate([starts, ends, low, high]))
    multi = n > 1
    env_lo = np.fmin.reduceat(np.where(multi, lo, np.nan), starts)
    env_hi = np.fmax.reduceat(np.where(multi, hi, np.nan), starts)
    at = np.searchsorted(starts, keep, side="right") - 1
    mk = multi[keep]
    out = _take(band, keep)
    out["lo"], out["hi"] = np.where(mk, env_lo[at], lo[keep]), np.where(mk, env_hi[at], hi[keep])
    return out, b[keep]


@dataclass
class Pool:
    """One configuration's pooled curve of one metric, kept between refreshes: rows up to `done` are final.

    `final`: the thinned rows of the bins that lie wholly at or below `done` (never thinned again); `rest`: the
    pooled rows up to `done` in later bins, at full resolution (at most one bin's worth)."""

    done: float = -math.inf  # every run of the configuration has passed this step (live ones) or ended
    final: Band = field(default_factory=_empty)
    rest: Band = field(default_factory=_empty)
    ema: dict[str, float] = field(default_factory=dict)  # each run's smoothed value at its last row up to `done`
    heights: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)  # each run's first row after `done`: where the next tail starts
    ended: frozenset[str] = frozenset()  # runs that were not live: rows of theirs after this are a reason to start over

    @property
    def head(self) -> pl.DataFrame:
        return pl.DataFrame(self.final, schema=BAND_SCHEMA)


def _smoothed_tail(f: pl.DataFrame, after: float, alpha: float, prev: float | None,
                   start: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(steps, values) of one run after step `after`, nulls left out, its EMA continued from `prev` (its value at
    `after`); then the raw steps of that tail and the row it starts at. `start`: the first row after `after` when
    known (the last refresh's), so only the new rows are searched: polars' `search_sorted` on a frame of many
    chunks costs O(rows) per call, which made the monitor's CPU grow with the runs' length (issue 12)."""
    if start is None:
        start = 0 if after == -math.inf else f["step"].search_sorted(int(after), side="right")
    t = f.slice(start)
    raw, value = t["step"].to_numpy(), t["value"].to_numpy()  # a null value reads as NaN (the writer stores no NaN)
    ok = ~np.isnan(value)
    step, value = raw[ok], value[ok]
    if alpha <= 0 or len(value) == 0:
        return step, value, raw, start
    # adjust=False EMA continued from the state: a first value equal to it continues it exactly
    sm = pl.Series(np.r_[prev, value] if prev is not None else value).ewm_mean(alpha=1.0 - alpha, adjust=False)
    return step, sm.to_numpy()[1:] if prev is not None else sm.to_numpy(), raw, start


def _mean_band(parts: list[tuple[np.ndarray, np.ndarray]]) -> Band:
    """`store.mean_band` of (step, value) parts, in numpy: these small per-refresh pools cost ~20 polars calls."""
    if len(parts) == 1:
        s, v = parts[0]
        return {"step": s, "mean": v, "lo": v, "hi": v, "n": np.ones(len(s), dtype=np.uint32)}
    s = np.concatenate([p[0] for p in parts])
    v = np.concatenate([p[1] for p in parts])
    o = np.argsort(s, kind="stable")
    s, v = s[o], v[o]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    n = np.diff(np.r_[starts, len(s)])
    return {"step": s[starts], "mean": np.add.reduceat(v, starts) / n, "lo": np.minimum.reduceat(v, starts),
            "hi": np.maximum.reduceat(v, starts), "n": n.astype(np.uint32)}


def pool_band(runs: dict[str, pl.DataFrame], live: set[str], alpha: float, pool: Pool | None = None,
              grid: Grid | None = None) -> tuple[Band, Pool]:
    """`store.seeds_over_steps` incrementally and thinned on a fixed `grid`: with the `pool` of the last refresh,
    only rows after the step every live run has passed are pooled and thinned again, so a streamed row costs the
    same at 1k or 100k rows, and the curve holds ~4 points per bin, not one per row. Numpy throughout.

    Returns the curve (step, mean, lo, hi, n) and the pool for the next call.
    """
    if pool is None or pool.done == math.inf or any(
            runs[r].height < h or (r in pool.ended and runs[r].height != h)
            for r, h in pool.heights.items() if r in runs):
        pool = Pool()  # first call, or rows went missing, or a run that had ended grew: start over
    last = {rid: f["step"][-1] if f.height else -math.inf for rid, f in runs.items()}
    tails = {rid: _smoothed_tail(f, pool.done, alpha, pool.ema.get(rid), pool.after.get(rid))
             for rid, f in runs.items() if last[rid] > pool.done}  # a run that ended at or before `done`: nothing new
    parts = [t[:2] for t in tails.values() if len(t[0])]
    cur = _cat(pool.rest, _mean_band(parts)) if parts else pool.rest  # every row of the bins not yet final
    lasts = [last[rid] for rid in runs if rid in live]
    done = max(pool.done, min(lasts)) if lasts else math.inf
    ema = dict(pool.ema)
    if alpha > 0:
        for rid, (s, v, _, _) in tails.items():
            upto = v[s <= done]
            if len(upto):
                ema[rid] = float(upto[-1])
    after = {rid: runs[rid].height for rid in runs}  # a run with no tail has no rows after `done`
    for rid, (_, _, raw, start) in tails.items():
        after[rid] = start + int(np.searchsorted(raw, done, side="right"))
    # bins below the one holding `done` can get no more rows: they are thinned, once; the rows after them are drawn
    # as they are (a bin or so of them), so a refresh thins nothing most of the time
    if done == math.inf:
        now_final = np.ones(len(cur["step"]), dtype=bool)
    else:
        cut = int(grid.bins(np.array([done]))[0]) if grid is not None else math.floor(done) + 1
        now_final = (grid.bins(cur["step"]) if grid is not None else cur["step"]) < cut
    final = _cat(pool.final, thin(_take(cur, now_final), grid)[0]) if now_final.any() else pool.final
    live_part = _take(cur, ~now_final)
    # usually a bin or so; many rows where a seed still runs far behind the others (then thinned for the chart only)
    full = _cat(final, live_part if len(live_part["step"]) <= 1024 else thin(live_part, grid)[0])
    rest = _take(live_part, live_part["step"] <= done)
    return full, Pool(done, final, rest, ema, {rid: f.height for rid, f in runs.items()}, after,
                      frozenset(runs) - live)


def pooled(runs: dict[str, pl.DataFrame], live: set[str], alpha: float, pool: Pool | None = None,
           grid: Grid | None = None) -> tuple[pl.DataFrame, Pool]:
    """`pool_band` as a frame (step, mean, lo, hi, n)."""
    band, pool = pool_band(runs, live, alpha, pool, grid)
    return pl.DataFrame(band, schema=BAND_SCHEMA), pool


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
    runs got no new rows is not recomputed at all. Curves are thinned on a `Grid` for a chart `buckets` columns
    wide on a log (`log_x`) or linear step axis.
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
            end = max(float(f["step"][-1]) for f in runs_in.values() if f.height)
            grid = Grid.for_width(buckets, log_x, end)
            pkey = ("pool", tuple(runs_in), metric, alpha, grid)
            if cache is not None:  # one pool per configuration, metric and smoothing: a superseded grid is dropped
                where = ("pool of", tuple(rids), metric, alpha)
                if cache.get(where, pkey) != pkey:
                    cache.pop(cache[where], None)
                cache[where] = pkey
            live = {r for r in runs_in if states.get(r) in ("running", "skew")}
            band, pool = pool_band(runs_in, live, alpha, cache.get(pkey) if cache is not None else None, grid)
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
