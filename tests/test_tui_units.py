"""Pure pieces of the monitor: seed pooling into chart series, log ticks, the paired run's command."""

from __future__ import annotations

import dataclasses

import numpy as np

from phenomon import registry
from tests.test_tui_fixtures import make_run
from phenomon.tui import frames, launches
from phenomon.tui.watcher import StoreWatcher
from phenomon.tui.widgets.axes import fmt_log, log_ticks


def test_seeds_pool_into_mean_and_band(runs):
    ids = [make_run(runs, seed=s, grok_at=150 + 20 * s).name for s in (0, 1)] + [
        make_run(runs, toggles=("weight_decay",), grok_at=None).name]
    w = StoreWatcher(runs)
    snap = w.poll()
    assert w.poll() is None  # nothing changed: no snapshot
    manifests = {r.id: r.manifest for r in snap.runs}
    series = frames.step_series(dict(snap.frames), manifests, "test/acc")
    assert [s.label for s in series] == ["weight decay 1 (2 seeds)", "weight decay 0"]
    base = series[0]
    a = snap.frames[ids[0]]["test/acc"]["value"].to_numpy()
    b = snap.frames[ids[1]]["test/acc"]["value"].to_numpy()
    np.testing.assert_allclose(base.y, (a + b) / 2)
    np.testing.assert_allclose(base.lo, np.minimum(a, b))


def test_log_ticks_are_powers_of_ten():
    majors, minors = log_ticks(1, 1e5)
    assert majors == [1, 10, 100, 1e3, 1e4, 1e5] and 2000 in minors
    assert [fmt_log(t) for t in majors] == ["1", "10", "10²", "10³", "10⁴", "10⁵"]
    assert 20 in log_ticks(10, 400)[0]  # a short span also labels 2× and 5×


def test_paired_spec_resolves_to_the_flipped_config():
    ph = registry.get("grokking")
    cfg = dataclasses.replace(ph.defaults(), p=23, hidden=32, seed=3)
    target = launches.flipped(ph, cfg, "weight_decay")
    spec = launches.spec_for(ph, target, None)
    assert spec.toggles == ("weight_decay",) and spec.seed == 3 and set(spec.sets) == {"p=23", "hidden=32"}
    assert launches.flipped(ph, target, "weight_decay") == cfg  # flipping twice is the baseline again


def _run(steps, values):
    import polars as pl
    return pl.DataFrame({"step": steps, "value": values, "round": [None] * len(steps)},
                        schema={"step": pl.Int64, "value": pl.Float64, "round": pl.Int64})


def test_incremental_pool_equals_pooling_everything_at_once():
    """Rows streamed in pieces (one seed live, seeds stopping at different steps, EMA on) give the same curve as the
    store's seeds_over_steps over all rows at the end."""
    import polars as pl
    from polars.testing import assert_frame_equal

    from phenomon import store

    rng = np.random.default_rng(0)
    a, b = _run(list(range(1, 301)), rng.random(300)), _run(list(range(1, 201)), rng.random(200))
    for alpha in (0.0, 0.8):
        pool = None
        for end in (10, 50, 51, 120, 200, 250, 300):
            live = {"a"} if end < 300 else set()
            band, pool = frames.pooled({"a": a.head(end), "b": b}, live, alpha, pool)
        want = store.seeds_over_steps([a, b], alpha=alpha, buckets=10_000)
        assert_frame_equal(band, want.cast(band.schema), check_exact=False)
        assert pool.done == float("inf") and pool.head.height == 300


def test_band_only_where_two_seeds_have_data():
    band = frames.pooled({"a": _run([1, 2, 3], [1.0, 1.0, 0.5]), "b": _run([1, 2], [1.0, 0.8])}, set(), 0.0)[0]
    s = frames._series("x", band, "step", 0)
    assert np.isnan(s.lo[2]) and np.isnan(s.hi[2]), "one seed at step 3: no band"
    assert s.lo[1] == 0.8 and s.hi[1] == 1.0


async def test_equal_seeds_draw_no_band():
    """Two seeds both at exactly 1.0: the spread is zero, so no band cell is drawn (it used to take 1-2 cells)."""
    from phenomon.tui.widgets.chart import LineChart

    x = np.arange(1, 101, dtype=float)
    flat = frames.Series("two seeds", x, np.ones(100), np.ones(100), np.ones(100))
    other = frames.Series("other", x, np.linspace(0, 1, 100), color=1)
    chart = LineChart("t")
    chart.series = (flat, other)
    lim = (0.0, 2.0, -0.05, 1.05)
    _, band = chart._raster(flat, lim, 60, 12)
    assert not band.any()
    wide = frames.Series("spread", x, np.full(100, 0.5), np.zeros(100), np.ones(100))
    assert chart._raster(wide, lim, 60, 12)[1].sum() > 60


def test_legends_name_the_settings_that_differ(runs):
    ids = [make_run(runs, sets={"lr": lr}, seed=s).name for lr in (1e-3, 3e-3) for s in (0, 1)]
    ids.append(make_run(runs, toggles=("weight_decay",), seed=0).name)
    w = StoreWatcher(runs)
    snap = w.poll()
    manifests = {r.id: r.manifest for r in snap.runs if r.id in ids}
    labels = sorted(s.label for s in frames.step_series(dict(snap.frames), manifests, "test/acc"))
    assert labels == ["lr 0.001, weight decay 1 (2 seeds)", "lr 0.003, weight decay 0",  # 0.003: the default
                      "lr 0.003, weight decay 1 (2 seeds)"]
    one = {ids[0]: manifests[ids[0]]}
    assert [s.label for s in frames.step_series(dict(snap.frames), one, "test/acc")] == ["baseline"]
    killed = {i: {**m, "status": "killed"} if i == ids[4] else m for i, m in manifests.items()}
    assert any(s.label.endswith("[killed]") for s in frames.step_series(dict(snap.frames), killed, "test/acc"))


async def test_legend_wraps_instead_of_hiding_configurations():
    from phenomon.tui.widgets.chart import LineChart

    x = np.arange(1, 11, dtype=float)
    chart = LineChart("test/acc")
    chart.series = tuple(frames.Series(f"lr 0.00{i}, weight decay {i % 2} (4 seeds)", x, x, color=i) for i in range(5))
    lines = chart._legend_lines(80, 3)
    text = ["".join(s.text for s in line) for line in lines]
    assert len(lines) == 3 and all(len(t) <= 80 for t in text[:-1])
    shown = sum(t.count("━") for t in text)
    assert shown + int(text[-1].rsplit("+", 1)[-1].split()[0] if "more" in text[-1] else 0) == 5
    assert len(chart._legend_lines(400, 3)) == 1


def test_main_panels_open_on_the_phenomenons_outcome_when_it_is_not_accuracy_or_loss():
    """dd_regularised logs final/test_error and per-grid losses: its panels open on the outcome and its family, not on
    'wd0.001/val/loss'; runs with phenomon's four standard metrics keep them; foreign runs keep their own order."""
    from phenomon.tui.screens.compare import PANELS, panel_metrics

    names = {"final/test_error", "final/train_error", "final/val_error", "wd0.001/val/loss", "wd0.001/test/loss",
             "untuned/test_error", "params"}
    assert panel_metrics(names, "final/test_error")[:3] == ("final/test_error", "final/train_error", "final/val_error")
    assert panel_metrics(set(PANELS) | {"final/test_error"}, "test/acc") == PANELS
    assert panel_metrics({"val_loss", "train_loss", "val_acc"}) == ("val_acc", None, "train_loss", "val_loss")
