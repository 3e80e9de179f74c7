"""Scorecard statistics on synthetic runs with planted answers: a lead, a proxy of the norm, a non-tracker."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from phenomon import scorecard, store


def _write(runs, rid, toggles, seed, jump_at, wd_on=True, rng=None, nan_at=()):
    """A planted run; `nan_at`: steps where the leader's value is NaN instead (each with an outcome point)."""
    rng = rng or np.random.default_rng(seed)
    steps = np.arange(0, 1510, 10)
    sig = lambda c, w: 1 / (1 + np.exp(-(steps - c) / w))  # noqa: E731
    test_acc = sig(jump_at, 40) if wd_on else np.zeros_like(steps, dtype=float) + 0.01 * rng.random(len(steps))
    # the norm falls with weight decay, with its own wiggles (so it is not a function of the outcome)
    norm = (100 - 40 * sig(jump_at - 100, 200) if wd_on else 100 + 0.02 * steps) + 2 * rng.standard_normal(len(steps))
    leader = sig(jump_at - 300, 30) + 0.05 * rng.standard_normal(len(steps))
    leader[np.isin(steps, nan_at)] = np.nan
    proxy = (norm / 10) ** 3  # a monotone function of the norm
    # a magnitude statistic with its own shape, and a monotone function of it: the prime count's situation
    big = np.floor(50 * (1 - sig(jump_at - 50, 60)) + 20 * rng.random(len(steps)))
    primes = 0.3 * big + 1
    noise = rng.standard_normal(len(steps))
    w = store.RunWriter(runs / rid, store.new_manifest(rid, "grokking", toggles=toggles, seed=seed,
                                                       group="grokking-g"), background=False)
    for i, s in enumerate(steps):
        w.log({"test/acc": test_acc[i], "signal/weight_norm": norm[i], "signal/leader": leader[i],
               "signal/proxy": proxy[i], "signal/noise": noise[i],
               "signal/magnitude/n_ge_1.5": big[i], "signal/primes": primes[i], "signal/weight_norm@layer": norm[i]}, step=int(s))
    w.log({"signal/leader": float("nan")}, step=1505)
    w.close("finished")


@pytest.fixture
def planted(runs):
    runs.mkdir(parents=True)
    for seed in (0, 1, 2):
        _write(runs, f"base{seed}", [], seed, jump_at=600 + 50 * seed)
        _write(runs, f"nowd{seed}", ["weight_decay"], seed, jump_at=600, wd_on=False)
    return runs


def test_planted_statistics(planted):
    table = scorecard.scorecard(planted)
    row = {r["signal"]: r for r in table.filter(pl.col("phenomenon") == "grokking").iter_rows(named=True)}
    assert set(row) == {"signal/weight_norm", "signal/leader", "signal/proxy", "signal/noise",
                        "signal/magnitude/n_ge_1.5", "signal/primes"}, "per-layer rows left out"
    lead = row["signal/leader"]
    assert lead["lead"] == pytest.approx(300 / 1500, abs=0.03), "the leader moves 300 steps before the outcome"
    assert lead["leads_frac"] == 1.0
    proxy = row["signal/proxy"]
    assert abs(proxy["partial"]) < 0.05, "a monotone function of the norm adds nothing beyond it"
    assert proxy["verdict"] == "tracks, adds nothing beyond the norm"
    assert abs(row["signal/noise"]["tracking"]) < 0.3 and row["signal/noise"]["verdict"] == "does not track"
    assert row["signal/weight_norm"]["verdict"] == "the broad baseline"
    primes = row["signal/primes"]
    assert abs(primes["partial"]) >= 0.2, "beyond the L2 norm it seems to add something..."
    assert primes["partial_mag"] < 0.05 and primes["explained_by"] == "#|w|≥1.5", "...which the count of |w|≥1.5 explains"
    assert primes["verdict"] == "tracks, adds nothing beyond weight magnitude (#|w|≥1.5)"
    assert lead["nulls"] == 0 and row["signal/leader"]["units"] == 6


def test_nonfinite_values_are_counted_and_excluded(runs):
    runs.mkdir(parents=True)
    _write(runs, "clean", [], 0, jump_at=600)
    _write(runs, "holes", [], 0, jump_at=600, nan_at=(300, 700, 1100))  # the same run with three NaN values
    units = scorecard.per_unit(scorecard.series(store.list_runs(runs)))
    leader = {r["unit"]: r for r in units.filter(pl.col("signal") == "signal/leader").iter_rows(named=True)}
    # counted: the three NaN values share their step buckets with outcome points (the trailing NaN at step 1505,
    # alone in the last bucket with no outcome, is never a point and is not counted)
    assert leader["holes"]["n_null"] == 3 and leader["clean"]["n_null"] == 0
    assert units.filter(pl.col("signal") != "signal/leader")["n_null"].sum() == 0
    # excluded: each hole carries the last finite value, so the statistics stay finite and near the clean run's
    assert leader["holes"]["n"] == leader["clean"]["n"]
    assert leader["holes"]["rho"] == pytest.approx(leader["clean"]["rho"], abs=0.01)
    assert leader["holes"]["lead"] == pytest.approx(leader["clean"]["lead"], abs=0.01)
    table = scorecard.aggregate(units)
    assert table.filter((pl.col("signal") == "signal/leader") & (pl.col("phenomenon") == "grokking"))["nulls"][0] == 3


def test_intervention_follows_the_outcome(planted):
    table = scorecard.scorecard(planted)
    row = {r["signal"]: r for r in table.filter(pl.col("phenomenon") == "grokking").iter_rows(named=True)}
    # weight decay off: no jump, the norm grows instead of falling -> changes the way its tracking predicts
    assert row["signal/weight_norm"]["intervention"] == 1.0 and row["signal/weight_norm"]["n_pairs"] == 3
    assert row["signal/proxy"]["intervention"] == 1.0
    assert row["signal/weight_norm"]["generality"] == "1/1", "judged only where the outcome moves"
    assert row["signal/weight_norm"]["units_moving"] == 3


def test_change_point_finds_a_step():
    n = 10
    pts = pl.DataFrame({"phenomenon": ["grokking"] * n, "group": ["g"] * n, "toggles": [""] * n, "seed": [0] * n,
                        "unit": ["u"] * n, "x": [float(i) for i in range(n)], "signal": ["signal/step"] * n,
                        "value": [0.0] * 4 + [1.0] * 6, "outcome": [0.0] * 7 + [1.0] * 3, "n_null": [0] * n},
                       schema_overrides={"n_null": pl.UInt32})
    row = scorecard.per_unit(pts).row(0, named=True)
    assert row["cp_signal"] == 4.0 and row["cp_outcome"] == 7.0
    assert row["lead"] == pytest.approx(3 / 9), "the step moves 3 of the run's 9 steps before the outcome"


def test_empty_store(runs):
    runs.mkdir()
    assert scorecard.scorecard(runs).height == 0
