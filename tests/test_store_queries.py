"""The store's frame queries and shared helpers: pooling, thinning, sweep points, identity, labels, atomic writes."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from phenomon import registry, store
from phenomon.config import to_dict
from phenomon.store.axis import ConfigField, RoundMetric


def _rows(steps, values, rnd=None) -> pl.DataFrame:
    return pl.DataFrame({"step": steps, "value": values, "round": [rnd] * len(steps)},
                        schema={"step": pl.Int64, "value": pl.Float64, "round": pl.Int64})


# pooling -------------------------------------------------------------------------------------------------------
def test_mean_band_pools_per_key_without_nulls():
    df = pl.DataFrame({"step": [2, 1, 1, 2, 2], "value": [4.0, 1.0, 3.0, None, 6.0]})
    got = store.mean_band(df, "step").collect()
    want = pl.DataFrame({"step": [1, 2], "mean": [2.0, 5.0], "lo": [1.0, 4.0], "hi": [3.0, 6.0], "n": [2, 2]},
                        schema_overrides={"n": pl.UInt32})
    assert_frame_equal(got, want)


def test_seeds_over_steps_is_the_mean_band_of_the_smoothed_runs():
    a, b = _rows([1, 2, 3], [0.0, 1.0, None]), _rows([1, 2, 3], [2.0, 3.0, 4.0])
    got = store.seeds_over_steps([a, b])
    want = pl.DataFrame({"step": [1, 2, 3], "mean": [1.0, 2.0, 4.0], "lo": [0.0, 1.0, 4.0],
                         "hi": [2.0, 3.0, 4.0], "n": [2, 2, 1]}, schema_overrides={"n": pl.UInt32})
    assert_frame_equal(got, want)
    one = store.seeds_over_steps([b], alpha=0.5)
    smoothed = [2.0, 2.5, 3.25]  # EMA with weight 0.5 on the new value
    assert_frame_equal(one.select("step", "mean", "lo", "hi"),
                       pl.DataFrame({"step": [1, 2, 3], "mean": smoothed, "lo": smoothed, "hi": smoothed}))


def test_ema_zero_is_the_column_itself():
    df = pl.DataFrame({"v": [1.0, 3.0]})
    assert_frame_equal(df.select(store.ema("v", 0.0)), df)
    assert df.select(store.ema("v", 0.5))["v"].to_list() == [1.0, 2.0]


def test_thin_keeps_spikes_and_ends():
    n = 100_000
    df = pl.DataFrame({"step": np.arange(1, n + 1), "y": np.zeros(n)}).with_columns(
        pl.when(pl.col("step") == 54_321).then(9.0).when(pl.col("step") == 77_777).then(-3.0)
        .otherwise(pl.col("y")).alias("y"))
    for log_x in (False, True):
        t = store.thin(df.lazy(), "step", "y", 100, log_x=log_x).collect()
        assert t.height <= 4 * 101
        assert t["y"].max() == 9.0 and t["y"].min() == -3.0
        assert t["step"][0] == 1 and t["step"][-1] == n
    small = df.head(3)
    assert_frame_equal(store.thin(small.lazy(), "step", "y", 100).collect(), small)


def test_long_curves_are_thinned_after_pooling():
    n = 5_000
    runs = [_rows(list(range(n)), [float(s)] * n) for s in (0, 2)]
    got = store.seeds_over_steps(runs, buckets=50, log_x=False)
    assert got.height <= 4 * 51 and got["mean"].unique().to_list() == [1.0]
    assert got["step"][0] == 0 and got["step"][-1] == n - 1


# sweeps and rounds ---------------------------------------------------------------------------------------------
def test_sweep_points_over_a_config_field_pool_runs_at_each_width():
    manifests = {
        "a": {"config": {"width": 8, "seed": 0}, "toggles": []},
        "b": {"config": {"width": 8, "seed": 1}, "toggles": []},
        "c": {"config": {"width": 16, "seed": 0}, "toggles": []},
        "d": {"config": {"width": 8, "seed": 0}, "toggles": ["weight_decay"]},
    }
    frames = {"a": {"test/acc": _rows([1, 2], [0.1, 0.5])}, "b": {"test/acc": _rows([1, 2], [0.2, 0.7])},
              "c": {"test/acc": _rows([1, 2], [0.3, 0.9])}, "d": {"test/acc": _rows([1, 2], [0.4, None])}}
    got = store.sweep_points(frames, manifests, "test/acc", ConfigField("width"))
    want = pl.DataFrame({"label": ["baseline", "baseline", "weight_decay"], "x": [8.0, 16.0, 8.0],
                         "mean": [0.6, 0.9, 0.4], "lo": [0.5, 0.9, 0.4], "hi": [0.7, 0.9, 0.4], "n": [2, 1, 1]},
                        schema_overrides={"n": pl.UInt32})
    assert_frame_equal(got, want)


def test_sweep_points_over_a_round_metric_take_each_rounds_last_values():
    f = {"test/acc": pl.concat([_rows([1, 2], [0.5, 0.9], 0), _rows([1, 2], [0.4, 0.8], 1)]),
         "weights_remaining": pl.concat([_rows([0], [1.0], 0), _rows([0], [0.8], 1)])}
    got = store.sweep_points({"r": f}, {"r": {"config": {}, "toggles": ["reinit"]}}, "test/acc",
                             RoundMetric("weights_remaining"))
    assert_frame_equal(got.select("label", "x", "mean"),
                       pl.DataFrame({"label": ["reinit", "reinit"], "x": [0.8, 1.0], "mean": [0.8, 0.9]}))
    empty = store.sweep_points({}, {"r": {}}, "test/acc", RoundMetric("weights_remaining"))
    assert empty.height == 0 and empty.columns == ["label", "x", "mean", "lo", "hi", "n"]


# identity and labels -------------------------------------------------------------------------------------------
def test_config_id_is_stable():
    cfg = {"b": [1, 2], "a": 0.5, "seed": 3}
    assert store.config_id(cfg) == "f21457c3"  # these values are in run ids and manifests on disk: never change
    assert store.config_id(cfg, without=("seed",), n=6) == "61c62d"
    assert store.config_id({"a": 0.5, "b": (1, 2)}) == store.config_id({"b": [1, 2], "a": 0.5}), "order, tuple"
    assert store.config_key({"config": cfg}) == store.config_key({"config": {**cfg, "seed": 9}})


@pytest.mark.parametrize("name, run_hash, group", [
    ("grokking", "bb4ee2ac", "grokking-855f9f"),
    ("double_descent", "100bf443", "double_descent-0e4c28"),
    ("lottery_ticket", "529c9c7c", "lottery_ticket-d2b21a"),
])
def test_persisted_identities_of_the_defaults_are_unchanged(name, run_hash, group):
    """Run ids, manifests' `config_hash` and `group`, and the monitor's seed pooling all come from config_id."""
    ph = registry.get(name)
    cfg = to_dict(ph.defaults())
    assert store.config_id(cfg) == run_hash
    assert ph.group_of(ph.defaults()) == group
    sweep = ph.sweep_field()
    assert group == f"{name}-{store.config_id(to_dict(ph.baseline_of(ph.defaults())), without=('seed', sweep), n=6)}"
    assert store.config_key({"config": cfg}) == store.config_id(cfg, without=("seed",))


def test_toggles_label():
    assert store.toggles_label([]) == store.toggles_label(None) == "baseline"
    assert store.label_of({"toggles": ["weight_decay", "dropout"]}) == "weight_decay+dropout"
    df = pl.DataFrame({"toggles": ["", "weight_decay", "a,b", None]})
    assert df.select(store.toggles_label_expr())["label"].to_list() == ["baseline", "weight_decay", "a+b",
                                                                           "baseline"]


def test_headline_and_missing_numbers():
    s = {"test/acc": 0.95312, "train/acc": 1.0, "other": 2.0}
    assert store.headline(s, ("train/acc", "test/acc", "absent")) == "train/acc 1.000  test/acc 0.953"
    assert store.headline(s, (), limit=2) == "test/acc 0.953  train/acc 1.000", "accuracies before other names"
    foreign = {"signal/effective_rank": 3.0, "null/step": 9.0, "train_loss_step": 0.5, "val_loss": 0.4,
               "train_acc_epoch": 0.8, "lr": 0.1}
    assert store.text.pick_headline(foreign) == ["val_loss", "train_loss_step", "train_acc_epoch", "lr"]
    assert store.fmt_value(None) == store.fmt_value(float("nan")) == "–"
    assert store.fmt_value(0.5) == "+0.50" and store.fmt_value(0.5, "{:.1f}") == "0.5"


# atomic writes -------------------------------------------------------------------------------------------------
def test_atomic_path_renames_on_success_and_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "data.npz"
    with store.atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".") and tmp.suffix == ".npz"
        np.savez(tmp, x=np.arange(3))
    assert np.load(target)["x"].tolist() == [0, 1, 2]
    with pytest.raises(RuntimeError):
        with store.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("crash mid-write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.npz"], "the old file stays, no temporary left"
    store.atomic_write_json(tmp_path / "m.json", {"b": 1, "a": 2})
    assert (tmp_path / "m.json").read_text() == '{\n "a": 2,\n "b": 1\n}\n'
