"""Chart series from the store's frame queries: each configuration or label a `Series` of numpy arrays to draw."""

from __future__ import annotations

from dataclasses import dataclass

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


def _series(label: str, band: pl.DataFrame, x: str, color: int) -> Series:
    spread = bool((band["n"] > 1).any())
    return Series(label, band[x].to_numpy().astype(float), band["mean"].to_numpy(),
                  band["lo"].to_numpy() if spread else None, band["hi"].to_numpy() if spread else None, color)


def step_series(frames: store.queries.RunFrames, manifests: dict[str, dict], metric: str, *, alpha: float = 0.0,
                buckets: int = 200, log_x: bool = True, rows: dict[str, int] | None = None,
                cache: dict | None = None) -> list[Series]:
    """One series per configuration (seeds pooled: mean with a min–max band), in the order runs are given.

    With `rows` (run id -> rows read) and a `cache` dict, a configuration whose runs got no new rows is not
    recomputed: finished runs cost nothing while live ones stream in.
    """
    out = []
    for n, rids in enumerate(store.by_configuration(manifests).values()):
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
        band = store.seeds_over_steps(rows_in, alpha=alpha, buckets=buckets, log_x=log_x)
        label = store.label_of(manifests[rids[0]]) + (f" ({len(rows_in)} seeds)" if len(rows_in) > 1 else "")
        out.append(_series(label, band, "step", n))
        if cache is not None and ck is not None:
            cache[ck] = out[-1]
    return out


def sweep_series(frames: store.queries.RunFrames, manifests: dict[str, dict], metric: str,
                 axis: ConfigField | RoundMetric) -> list[Series]:
    """One series per label against a sweep field (a point per run) or a round metric (a point per round)."""
    pts = store.sweep_points(frames, manifests, metric, axis)
    labels = pts["label"].unique(maintain_order=True).to_list()
    return [_series(label, pts.filter(pl.col("label") == label), "x", n) for n, label in enumerate(labels)]
