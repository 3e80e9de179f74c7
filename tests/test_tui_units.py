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
    assert [s.label for s in series] == ["baseline (2 seeds)", "weight_decay"]
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
