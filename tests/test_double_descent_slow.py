"""The full double descent reproduction (about 15 minutes on 2 cores): `./phenomon.sh slow`."""

from __future__ import annotations

import pytest

from phenomon import experiment, registry
from tests.conftest import phenomon

pytestmark = pytest.mark.slow


def test_default_sweep_peaks_at_the_threshold_and_weight_decay_removes_the_peak(runs):
    ph = registry.get("double_descent")
    r = phenomon("experiment", "double_descent", "--runs", str(runs), timeout=3600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    v = experiment.group_verdict(ph, runs, ph.group_of(ph.defaults()))
    base, wd = v.numbers["variants"]["baseline"], v.numbers["variants"]["weight_decay"]
    assert v.effect is True, v.line
    assert base["seeds"] == 3 and base["peak_at_threshold"] and 40 <= base["peak_width"] <= 64
    assert base["height_over_under"] >= 0.05 and base["height_over_widest"] >= 0.05
    assert "| weight_decay: no double descent" in v.line
    assert wd["height_over_widest"] < 0.02 and wd["peak_error"] < base["peak_error"] - 0.05
