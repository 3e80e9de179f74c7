"""The monitor's cost does not grow with a run's length or the app's uptime: thinned, incrementally pooled curves,
panels recomputed only for the runs that changed, bounded caches."""

from __future__ import annotations

import numpy as np
import polars as pl
from polars.testing import assert_frame_equal

from phenomon.tui import frames
from phenomon.tui.widgets.chart import LineChart


def _run(steps, values) -> pl.DataFrame:
    return pl.DataFrame({"step": steps, "value": values, "round": [None] * len(steps)},
                        schema={"step": pl.Int64, "value": pl.Float64, "round": pl.Int64})


def _curves(n: int = 30_000):
    rng = np.random.default_rng(0)
    x = np.arange(1, n + 1)
    ya = 1 / (1 + np.exp(-(x - 8_000) / 1_000)) + 0.02 * rng.random(n)
    ya[12_345] = 5.0  # one spike of one row
    yb = 1 / (1 + np.exp(-(x[:20_000] - 9_000) / 1_000)) + 0.02 * rng.random(20_000)
    return _run(x, ya), _run(x[:20_000], yb)


def test_streamed_thinned_curve_equals_thinning_all_rows_at_once_and_keeps_spikes():
    """Rows arriving in pieces (one seed live, EMA on or off, log or linear x) give exactly the curve of thinning all
    rows at the end; the curve has a few points per bin, not one per row; the spike, the ends and the band stay."""
    a, b = _curves()
    for log_x in (True, False):
        for alpha in (0.0, 0.8):
            grid = frames.Grid.for_width(80, log_x, a["step"][-1])
            pool = None
            for end in (10, 500, 501, 7_000, 20_000, 25_000, a.height):
                live = {"a"} if end < a.height else set()
                band, pool = frames.pooled({"a": a.head(end), "b": b}, live, alpha, pool, grid)
            once = frames.pooled({"a": a, "b": b}, set(), alpha, None, grid)[0]
            assert_frame_equal(band, once)
            full = frames.pooled({"a": a, "b": b}, set(), alpha, None, None)[0]
            assert full.height == 30_000 and band.height < 2_500
            for col, agg in (("mean", "max"), ("mean", "min"), ("lo", "min"), ("hi", "max")):
                assert getattr(band[col], agg)() == getattr(full[col], agg)(), (col, agg, log_x, alpha)
            assert band["step"][0] == 1 and band["step"][-1] == 30_000


def test_thinned_curve_draws_what_all_rows_draw():
    """The chart's braille dots from the thinned curve and from every row differ in a few noise-level dots."""
    a, b = _curves()
    for log_x in (True, False):
        full = frames._series("all", frames.pooled({"a": a, "b": b}, set(), 0.0)[0], "step", 0)
        grid = frames.Grid.for_width(160, log_x, 30_000)
        thin = frames._series("thin", frames.pooled({"a": a, "b": b}, set(), 0.0, None, grid)[0], "step", 0)
        chart = LineChart("t")
        chart.log_x = log_x
        chart.series = (full,)
        lim = chart._limits()
        d_full, _ = chart._raster(full, lim, 73, 15)
        d_thin, _ = chart._raster(thin, lim, 73, 15)
        assert (d_full != d_thin).sum() <= 0.06 * d_full.sum(), (log_x, (d_full != d_thin).sum(), d_full.sum())
        top = lambda d: int(np.flatnonzero(d.any(axis=1))[0])  # noqa: E731
        assert top(d_thin) == top(d_full) < 30, (top(d_thin), top(d_full))


def test_a_run_that_had_ended_and_grows_again_is_pooled_again():
    """A run seen as dead (a late heartbeat) that writes again: its new rows are in the curve (the pool starts
    over instead of failing or dropping them)."""
    a, b = _run([1, 2, 3], [1.0, 2.0, 3.0]), _run([1, 2, 3], [1.0, 2.0, 3.0])
    band, pool = frames.pooled({"a": a, "b": b}, set(), 0.0)
    grown = _run([1, 2, 3, 4], [1.0, 2.0, 3.0, 9.0])
    band, pool = frames.pooled({"a": grown, "b": b}, {"a"}, 0.0, pool)
    assert band["step"].to_list() == [1, 2, 3, 4] and band["mean"][-1] == 9.0
