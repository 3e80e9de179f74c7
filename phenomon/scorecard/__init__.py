"""The scorecard: which explanation signals are worth anything, judged the way a methods reviewer would.

Per signal × unit (a run's training curve, a sweep, a run's pruning rounds), then per signal × phenomenon:

  tracking     Spearman ρ of the signal's *changes* with the outcome's (first differences along the unit's axis),
               mean over units where the outcome moves, with a bootstrap interval over units; p from circular
               shifts (which keep autocorrelation), Benjamini–Hochberg across the table → `tracks`;
  nulls        every run logs `null/step` and `null/random_walk`: `beats_null` when the signal's |Δ-ρ| exceeds
               the best null's in the same unit, interval clear of 0;
  partials     on increments given each magnitude statistic (norm, mean |w|, #|w|≥1.5), on levels given the step;
               undefined (with the reason) where the confound is a monotone function of the signal or outcome;
  lead         onset (first passage of 5% / 10% of the eventual change) of the outcome minus the signal's, as a
               fraction of the run: step axes only;
  prediction   leave-one-out R² of the signal read at 10% / 25% of training → the unit's outcome summary, within
               groups of ≥ 4 units, beside the same for the weight norm and the nulls;
  intervention (baseline, toggled) pairs whose effect moved: does the signal move as its association predicts (k/n);
  invariance   from each run's invariance.json: does the signal move under function-preserving ReLU rescalings?
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from phenomon import store
from phenomon.scorecard.points import BUCKETS, Unit, series, unit_of
from phenomon.scorecard.table import aggregate, read_invariance
from phenomon.scorecard.units import per_unit

__all__ = ["BUCKETS", "Unit", "aggregate", "per_unit", "read_invariance", "score", "scorecard", "series", "unit_of"]


def score(runs: list[store.RunInfo], problems: list[str] | None = None,
          pts: pl.DataFrame | None = None) -> pl.DataFrame:
    """The table for `runs` (their points, if already read, as `pts`), invariance included."""
    pts = series(runs, problems) if pts is None else pts
    if pts.height == 0:
        return pl.DataFrame()
    return aggregate(per_unit(pts), read_invariance({r.id: r.dir for r in runs}))


def scorecard(root: Path | str, problems: list[str] | None = None) -> pl.DataFrame:
    runs = [r for r in store.list_runs(Path(root)) if r.state in ("finished", "running", "killed", "dead")]
    return score(runs, problems)
