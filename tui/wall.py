"""The wall-time x axis: a configuration's curve over steps re-read against the seconds its runs took to get there."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from phenomon import store
from phenomon.tui.frames import Series
from phenomon.tui.watcher import CLOCK


@dataclass(frozen=True)
class WallTime:
    """Seconds since each run's first row; seeds of a configuration at the mean of their times for each step."""

    label: str = "wall time (s)"
    per_run: bool = True


def seconds_at(frames, rid: str, steps: np.ndarray) -> np.ndarray | None:
    """Seconds run `rid` had taken when it logged each of `steps` (interpolated between logged steps)."""
    clock = (frames.get(rid) or {}).get(CLOCK)
    if clock is None or clock.height == 0:
        return None
    s, w = clock["step"].to_numpy().astype(float), clock["value"].to_numpy()
    if (np.diff(s) < 0).any():  # the watcher appends in step order; a resumed run may not
        order = np.argsort(s, kind="stable")
        s, w = s[order], w[order]
    return np.interp(steps, s, w - np.nanmin(w), left=np.nan, right=np.nan)


def mean_over_rows(a: np.ndarray) -> np.ndarray:
    """Column means of `a` ignoring NaN (NaN where a column has none). Not a median: sorting 25k short columns cost
    ~30 ms per configuration on a loaded machine (bench/compare_extras.py), a mean ~1 ms."""
    ok = np.isfinite(a)
    n = ok.sum(axis=0)
    total = np.where(ok, a, 0.0).sum(axis=0)
    return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def over_wall_time(series: list[Series], frames, manifests: dict[str, dict]) -> list[Series]:
    """Each step series with x replaced by the mean over its seeds of the seconds at that step; points no seed
    timed are dropped."""
    groups = store.by_configuration(manifests)
    out = []
    for s in series:
        times = [t for r in groups.get(s.key, ()) if (t := seconds_at(frames, r, s.x)) is not None]
        if not times:
            continue
        x = mean_over_rows(np.vstack(times)) if len(times) > 1 else times[0]
        ok = np.isfinite(x)
        out.append(replace(s, x=x[ok], y=s.y[ok], lo=None if s.lo is None else s.lo[ok],
                           hi=None if s.hi is None else s.hi[ok]))
    return out
