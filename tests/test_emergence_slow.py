"""The full emergence reproduction (78 runs; about 35–75 minutes on 2 shared cores): `./phenomon.sh slow`."""

from __future__ import annotations

import pytest

from phenomon import experiment, registry
from tests.conftest import phenomon

pytestmark = pytest.mark.slow


def test_exact_match_is_abrupt_token_metrics_are_not_and_the_product_predicts_it(runs):
    ph = registry.get("emergence")
    r = phenomon("experiment", "emergence", "--runs", str(runs), timeout=6000)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    v = experiment.group_verdict(ph, runs, ph.group_of(ph.defaults()))
    base, short = v.numbers["variants"]["baseline"], v.numbers["variants"]["k"]
    assert v.effect is True, v.line
    ab = base["abruptness"]
    assert base["seeds"] == 3 and base["gap_exact_vs_token"]["lo"] > 0
    for smooth in ("token_acc", "edit_distance", "answer_ll"):
        assert ab[smooth]["mean"] < ab["exact_match"]["mean"], smooth
    assert base["max_abs_exact_minus_product"] <= 0.05
    # shorter answers: exact match is closer to per-token accuracy, so its curve is less abrupt
    assert short["abruptness"]["exact_match"]["mean"] < ab["exact_match"]["mean"]
