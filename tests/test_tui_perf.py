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


def test_live_seeds_streamed_in_many_chunks_give_the_curve_of_all_rows_and_search_only_new_rows(monkeypatch):
    """Two live seeds growing in uneven appends (frames of many chunks, as the watcher holds them, with null values):
    the streamed curve equals pooling all rows at once, and after the first refresh no refresh searches a whole run
    (polars' search_sorted over many chunks costs O(rows): the monitor's CPU grew with the runs' length)."""
    rng = np.random.default_rng(1)
    n = 6_000
    va, vb = rng.random(n), rng.random(n)
    va[::97] = np.nan  # nulls: left out of the curve
    full_a, full_b = _run(np.arange(1, n + 1), va), _run(np.arange(1, n + 1) * 2, vb)
    full_a = full_a.with_columns(pl.when(pl.col("value").is_nan()).then(None).otherwise(pl.col("value")).alias("value"))
    searched = []
    real = pl.Series.search_sorted

    def counted(self, *a, **kw):
        searched.append(len(self))
        return real(self, *a, **kw)

    monkeypatch.setattr(pl.Series, "search_sorted", counted)
    for alpha in (0.0, 0.8):
        grid = frames.Grid.for_width(80, True, 2 * n)
        pool, parts_a, parts_b, ea, eb = None, [], [], 0, 0
        searched.clear()
        for k, (da, db) in enumerate([(7, 3), (500, 120), (1, 900), (1_300, 1_000), (2_000, 2_500), (2_192, 1_477)]):
            parts_a.append(full_a.slice(ea, da))
            parts_b.append(full_b.slice(eb, db))
            ea, eb = ea + da, eb + db
            a, b = pl.concat(parts_a, rechunk=False), pl.concat(parts_b, rechunk=False)
            live = {"a", "b"} if (ea, eb) != (n, n) else set()
            band, pool = frames.pooled({"a": a, "b": b}, live, alpha, pool, grid)
        once = frames.pooled({"a": full_a, "b": full_b}, set(), alpha, None, grid)[0]
        assert_frame_equal(band, once)
        assert all(m < 100 for m in searched[2:]), searched  # two first searches at most, then only new rows


def test_a_run_that_had_ended_and_grows_again_is_pooled_again():
    """A run seen as dead (a late heartbeat) that writes again: its new rows are in the curve (the pool starts
    over instead of failing or dropping them)."""
    a, b = _run([1, 2, 3], [1.0, 2.0, 3.0]), _run([1, 2, 3], [1.0, 2.0, 3.0])
    band, pool = frames.pooled({"a": a, "b": b}, set(), 0.0)
    grown = _run([1, 2, 3, 4], [1.0, 2.0, 3.0, 9.0])
    band, pool = frames.pooled({"a": grown, "b": b}, {"a"}, 0.0, pool)
    assert band["step"].to_list() == [1, 2, 3, 4] and band["mean"][-1] == 9.0


# the app -------------------------------------------------------------------------------------------------------
from phenomon import store  # noqa: E402
from phenomon.tui.screens import compare  # noqa: E402
from tests.test_tui_app import SIZE, FakeLauncher, app_for, until  # noqa: E402
from tests.test_tui_fixtures import make_run  # noqa: E402


def _pools(monkeypatch) -> list[tuple[str, ...]]:
    """The run ids of each configuration pooled from now on."""
    calls: list[tuple[str, ...]] = []
    real = frames.pool_band

    def counted(runs, *a, **kw):
        calls.append(tuple(sorted(runs)))
        return real(runs, *a, **kw)

    monkeypatch.setattr(frames, "pool_band", counted)
    return calls


async def _flush(pilot, app, run_dir, step: int) -> None:
    writer = store.RunWriter(run_dir, store.read_manifest(run_dir), background=False)
    rows = app.snapshot.rows[run_dir.name]
    writer.log({"test/acc": 0.5, "train/acc": 0.5, "train/loss": 1.0, "test/loss": 1.0, "weight_norm": 30.0}, step)
    writer.flush()
    if run_dir.name in app.compare_ids:  # the app has read the flush's rows
        await until(pilot, lambda: app.snapshot.rows[run_dir.name] > rows)
    else:  # rows are read only for the runs compare shows, and a manifest that only counts rows posts nothing
        await pilot.pause(1.0)  # there: let the watcher poll a few times (every 0.2 s while compare is shown)


async def test_a_flush_recomputes_only_the_configuration_it_touched(runs, monkeypatch):
    """Compare shows a live baseline and a finished ablation; a flush on a run outside the comparison pools
    nothing, a flush on the baseline pools the baseline's configuration only (the ablation's curve is reused)."""
    monkeypatch.setattr(compare, "LIVE_EVERY_S", 0.05)
    live = make_run(runs, status="running")
    make_run(runs, toggles=("weight_decay",))
    other = make_run(runs, status="running", sets={"p": 23})  # another group: not compared
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot is not None and len(app.snapshot.runs) == 3)
        app.compare_ids = (live.name, next(r.id for r in app.snapshot.runs if r.id not in (live.name, other.name)))
        app.action_show_compare()
        await until(pilot, lambda: isinstance(app.screen, compare.CompareScreen) and app.screen.is_mounted)
        chart = app.screen.query_one("#chart-test-acc")
        await until(pilot, lambda: len(chart.series) == 2)
        await pilot.pause(0.3)
        calls = _pools(monkeypatch)
        await _flush(pilot, app, other, 500)
        await pilot.pause(0.3)
        assert calls == [], "a run outside the comparison was pooled"
        await _flush(pilot, app, live, 500)
        await until(pilot, lambda: any(s.x.max() == 500 for s in chart.series))
        await pilot.pause(0.3)
        assert calls and set(calls) == {(live.name,)}, calls


async def test_series_cache_stays_bounded_while_rows_stream(runs, monkeypatch):
    """Streamed rows replace the cached series and pools of the configuration; the cache does not grow."""
    monkeypatch.setattr(compare, "LIVE_EVERY_S", 0.05)
    live = make_run(runs, status="running")
    make_run(runs, toggles=("weight_decay",))
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot is not None and len(app.snapshot.runs) == 2)
        app.action_show_compare()
        await until(pilot, lambda: isinstance(app.screen, compare.CompareScreen) and app.screen.is_mounted)
        screen = app.screen
        chart = screen.query_one("#chart-test-acc")
        sizes = []
        for step in range(410, 530, 10):
            await _flush(pilot, app, live, step)
            await until(pilot, lambda: any(s.x.max() == step for s in chart.series))
            await until(pilot, lambda: not screen._busy)
            sizes.append(len(screen._cache))
        assert sizes[-1] == sizes[2], sizes


async def test_every_screens_footer_shows_the_scorecard_key_at_160_columns(runs):
    """The footer used to end in "v Compare v" at 160 columns, cutting "S Scorecard" off."""
    from textual.widgets._footer import FooterKey

    make_run(runs)
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot is not None and len(app.snapshot.runs) == 1)
        for key in ("r", "c", "S"):
            await pilot.press(key)
            await pilot.pause(0.3)
            keys = {k.key: k for k in app.screen.query(FooterKey)}
            s = keys.get("S")
            assert s is not None and s.region.width > 0, (app.screen, sorted(keys))
            palette = [k for k in keys.values() if k.has_class("-command-palette")]
            assert s.region.right <= min([p.region.x for p in palette] + [SIZE[0]]), (app.screen, s.region)


def test_a_seed_far_behind_the_others_still_draws_a_thinned_curve():
    """A new seed of a finished configuration: every row of the others after its step is redrawn on each refresh;
    the curve stays thinned (a few points per bin), not one point per row."""
    a, b = _curves()
    grid = frames.Grid.for_width(160, True, 30_000)
    band, pool = frames.pooled({"a": a, "new": b.head(50)}, {"new"}, 0.0, None, grid)
    assert band.height < 3_000 and band["step"][-1] == 30_000 and band["mean"].max() == a["value"].max()
