"""The scorecard: which explanation signals are worth anything, in pure polars.

Per signal × unit (a run's training curve, a sweep's runs, or a run's pruning rounds):
  tracking   Spearman ρ between the signal and the outcome metric (e.g. test accuracy) along the unit's x axis;
  lead       the x of the outcome's largest change point minus the signal's (mean-shift CUSUM), as a fraction of
             the x range: > 0 means the signal moves first (useful for prediction);
  partial    Spearman partial correlation with the outcome given the weight norm (the broad baseline): a signal
             whose partial is near 0 adds nothing beyond the norm;
then aggregated per signal × phenomenon and overall, with generality (in how many phenomenon/toggle conditions it
keeps tracking) and intervention (when a toggle changes the outcome, does the signal change the way its tracking
predicts?).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from phenomon import store

BASELINE = "signal/weight_norm"
TRACKS = 0.5  # |ρ| at or above this counts as tracking
ADDS_NOTHING = 0.2  # |partial ρ| below this: nothing beyond the norm
OUTCOME_CHANGED = 0.1  # a toggle changed the outcome when the final outcome moved by this much


@dataclass(frozen=True)
class Unit:
    """How one phenomenon's runs become series: x axis and outcome metric."""

    phenomenon: str
    x_axis: str
    outcome: str


def _unit_of(phenomenon: str) -> Unit:
    from phenomon import registry
    from phenomon.config import UsageError

    try:
        ph = registry.get(phenomenon)
        return Unit(phenomenon, ph.x_axis, ph.outcome)
    except UsageError:
        return Unit(phenomenon, "step", "test/acc")


def _config_x(r: store.RunInfo) -> float | None:
    axis = _unit_of(r.phenomenon).x_axis
    if not axis.startswith("config:"):
        return None
    v = (r.manifest.get("config") or {}).get(axis.split(":", 1)[1])
    return float(v) if isinstance(v, (int, float)) else None


def _scan_run(info: store.RunInfo) -> pl.LazyFrame | None:
    chain = store.cover(store.list_segments(info.dir), 0)
    if not chain:
        return None
    return pl.scan_parquet([str(p) for _, _, p in chain]).select(list(store.ROW_SCHEMA))


def series(runs: list[store.RunInfo], problems: list[str] | None = None) -> pl.DataFrame:
    """Long frame: phenomenon, group, toggles, seed, unit, run, x, signal, value, outcome — one row per point."""
    out = []
    meta = pl.DataFrame({
        "run": [r.id for r in runs], "phenomenon": [r.phenomenon for r in runs], "group": [r.group for r in runs],
        "toggles": [",".join(r.manifest.get("toggles") or []) for r in runs],
        "seed": [r.manifest.get("seed") for r in runs],
        "xconf": [_config_x(r) for r in runs],
    }, schema={"run": pl.String, "phenomenon": pl.String, "group": pl.String, "toggles": pl.String,
               "seed": pl.Int64, "xconf": pl.Float64}) if runs else None
    by_ph: dict[str, list[store.RunInfo]] = {}
    for r in runs:
        by_ph.setdefault(r.phenomenon, []).append(r)
    for ph, rs in by_ph.items():
        u = _unit_of(ph)
        scans = []
        for r in rs:
            try:
                lf = _scan_run(r)
            except Exception as e:  # noqa: BLE001 - one bad run must not hide the others
                if problems is not None:
                    problems.append(f"{r.id}: {e}")
                continue
            if lf is not None:
                scans.append(lf.with_columns(pl.lit(r.id).alias("run")))
        if not scans:
            continue
        rows = (pl.concat(scans)
                .filter((pl.col("name") == u.outcome) | (pl.col("name").str.starts_with("signal/")
                                                         & ~pl.col("name").str.contains("@", literal=True))))
        try:
            df = rows.collect()
        except Exception as e:  # noqa: BLE001 - a corrupt segment: fall back to the careful reader
            if problems is not None:
                problems.append(f"{ph}: {e.__class__.__name__} while scanning; reading run by run")
            df = pl.concat([store.read_metrics(r.dir, problems=problems).with_columns(pl.lit(r.id).alias("run"))
                            for r in rs]).filter(
                (pl.col("name") == u.outcome) | (pl.col("name").str.starts_with("signal/")
                                                 & ~pl.col("name").str.contains("@", literal=True)))
        out.append(_to_units(df, u, meta.filter(pl.col("run").is_in([r.id for r in rs]))))
    if not out:
        return pl.DataFrame(schema={"phenomenon": pl.String, "group": pl.String, "toggles": pl.String,
                                    "seed": pl.Int64, "unit": pl.String, "x": pl.Float64, "signal": pl.String,
                                    "value": pl.Float64, "outcome": pl.Float64})
    return pl.concat(out, how="vertical_relaxed")


def _to_units(df: pl.DataFrame, u: Unit, meta: pl.DataFrame) -> pl.DataFrame:
    df = df.with_columns(pl.col("round").fill_null(0))
    outc = df.filter(pl.col("name") == u.outcome).select("run", "round", "step", pl.col("value").alias("outcome"))
    sig = df.filter(pl.col("name") != u.outcome).select("run", "round", "step", pl.col("name").alias("signal"),
                                                        "value")
    m = meta.select("run", "phenomenon", "group", "toggles", "seed", pl.col("xconf").alias("x")) \
        if u.x_axis.startswith("config:") else meta.select("run", "phenomenon", "group", "toggles", "seed")
    if u.x_axis == "step":
        # each outcome point takes every signal's latest value at or before its step
        pts = (outc.join(sig.select("run", "signal").unique(), on="run").sort("step")
               .join_asof(sig.sort("step"), on="step", by=["run", "round", "signal"], strategy="backward",
                          check_sortedness=False))
        pts = pts.join(m, on="run").with_columns(
            unit=pl.col("run") + pl.when(pl.col("round") > 0).then(pl.format("#r{}", "round")).otherwise(pl.lit("")),
            x=pl.col("step").cast(pl.Float64))
    elif u.x_axis.startswith("metric:"):
        fo = outc.sort("step").group_by("run", "round").agg(pl.col("outcome").drop_nulls().last())
        fs = sig.sort("step").group_by("run", "round", "signal").agg(pl.col("value").drop_nulls().last())
        pts = fo.join(fs, on=["run", "round"]).join(m, on="run").with_columns(
            unit=pl.col("run"), x=pl.col("round").cast(pl.Float64))
    elif u.x_axis.startswith("config:"):
        fo = outc.sort("step").group_by("run").agg(pl.col("outcome").drop_nulls().last())
        fs = sig.sort("step").group_by("run", "signal").agg(pl.col("value").drop_nulls().last())
        pts = fo.join(fs, on="run").join(m, on="run").with_columns(
            unit=pl.format("{}|{}|{}", "group", "toggles", "seed"))
    else:
        raise ValueError(f"unknown x axis {u.x_axis!r}")
    return pts.select("phenomenon", "group", "toggles", pl.col("seed").cast(pl.Int64), "unit", "x", "signal",
                      pl.col("value").cast(pl.Float64), pl.col("outcome").cast(pl.Float64))


def _spearman(a: str, b: str) -> pl.Expr:
    return pl.corr(pl.col(a).rank(), pl.col(b).rank())


def _cusum(value: str):
    v = pl.col(value)
    n = v.count()
    k = pl.int_range(1, pl.len() + 1)
    s_k = v.cum_sum()
    shift = (s_k / k - (v.sum() - s_k) / (n - k)).abs()
    stat = ((k * (n - k) / n).sqrt() * shift).fill_nan(None)
    return stat.arg_max().fill_null(0), shift


def change_point(value: str = "value") -> pl.Expr:
    """x at the largest mean shift of `value` along x (CUSUM), for use in a group_by over sorted points."""
    at, _ = _cusum(value)
    # the change happens between point k and k+1: report the x of the first point after the shift
    return pl.col("x").shift(-1).get(at).alias("cp")


def shift_size(value: str = "value") -> pl.Expr:
    """|mean after − mean before| at the change point: how big the change is, in the value's units."""
    at, shift = _cusum(value)
    return shift.get(at).alias("shift")


def per_unit(pts: pl.DataFrame) -> pl.DataFrame:
    """Tracking, lead, partial correlation and null counts per signal × unit."""
    clean = pts.filter(pl.col("value").is_not_null() & pl.col("outcome").is_not_null()).sort("unit", "x")
    nulls = pts.group_by("unit", "signal").agg(pl.col("value").null_count().alias("n_null"))
    base = clean.filter(pl.col("signal") == BASELINE).select("unit", "x", pl.col("value").alias("norm"))
    j = clean.join(base, on=["unit", "x"], how="left")
    stats = j.group_by("phenomenon", "group", "toggles", "seed", "unit", "signal", maintain_order=True).agg(
        pl.len().alias("n"),
        _spearman("value", "outcome").alias("rho"),
        _spearman("value", "norm").alias("r_sn"),
        _spearman("outcome", "norm").alias("r_on"),
        change_point("value").alias("cp_signal"),
        change_point("outcome").alias("cp_outcome"),
        shift_size("outcome").alias("outcome_shift"),
        (pl.col("x").max() - pl.col("x").min()).alias("span"),
        pl.col("value").first().alias("first"),
        pl.col("value").last().alias("last"),
        pl.col("outcome").last().alias("final_outcome"),
    )
    partial = ((pl.col("rho") - pl.col("r_sn") * pl.col("r_on"))
               / ((1 - pl.col("r_sn") ** 2) * (1 - pl.col("r_on") ** 2)).sqrt())
    return stats.with_columns(
        rho=pl.col("rho").fill_nan(None),
        # a lead needs an outcome transition to lead: none when the outcome barely moved
        lead=pl.when((pl.col("outcome_shift") >= OUTCOME_CHANGED) & pl.col("rho").is_not_nan()
                     & pl.col("rho").is_not_null())
        .then((pl.col("cp_outcome") - pl.col("cp_signal")) / pl.col("span")).fill_nan(None),
        # a monotone function of the norm has the norm's ranks: it adds nothing by definition (the formula is 0/0)
        partial=pl.when(pl.col("signal") == BASELINE).then(None)
        .when(pl.col("r_sn").abs() > 0.999).then(0.0).otherwise(partial.fill_nan(None)),
        movement=((pl.col("last") - pl.col("first")) / (pl.col("first").abs() + pl.col("last").abs() + 1e-12)),
    ).join(nulls, on=["unit", "signal"], how="left").drop("r_sn", "r_on")


def intervention(units: pl.DataFrame) -> pl.DataFrame:
    """Per signal × phenomenon: among (baseline, toggled) pairs of the same group and seed whose outcome moved by at
    least OUTCOME_CHANGED, the fraction where the signal's movement changed the way its baseline tracking predicts."""
    base = units.filter(pl.col("toggles") == "").select(
        "phenomenon", "group", "seed", "signal", pl.col("final_outcome").alias("o0"), pl.col("movement").alias("m0"),
        pl.col("rho").alias("rho0"))
    tog = units.filter(pl.col("toggles") != "").select(
        "phenomenon", "group", "seed", "signal", "toggles", pl.col("final_outcome").alias("o1"),
        pl.col("movement").alias("m1"))
    pairs = tog.join(base, on=["phenomenon", "group", "seed", "signal"]).filter(
        (pl.col("o1") - pl.col("o0")).abs() >= OUTCOME_CHANGED)
    predicted = (pl.col("rho0").sign() * (pl.col("o1") - pl.col("o0")).sign())
    return pairs.with_columns(agree=(pl.col("m1") - pl.col("m0")).sign() == predicted).group_by(
        "phenomenon", "signal").agg(pl.col("agree").mean().alias("intervention"), pl.len().alias("n_pairs"))


def aggregate(units: pl.DataFrame) -> pl.DataFrame:
    """Signal × phenomenon rows plus an `(all)` row per signal."""
    # tracking is judged where the outcome moves; where it stays flat, the intervention column speaks
    moved = pl.col("outcome_shift") >= OUTCOME_CHANGED
    cond = pl.format("{}:{}", "phenomenon", "toggles")
    agg = [
        pl.len().alias("units"),
        moved.sum().alias("units_moving"),
        pl.col("rho").filter(moved).median().alias("tracking"),
        pl.col("lead").median().alias("lead"),
        (pl.col("lead") > 0).filter(pl.col("lead").is_not_null()).mean().alias("leads_frac"),
        pl.col("partial").filter(moved).median().alias("partial"),
        pl.col("n_null").sum().alias("nulls"),
        cond.filter(moved & (pl.col("rho").abs() >= TRACKS)).n_unique().alias("cond_tracking"),
        cond.filter(moved).n_unique().alias("conditions"),
    ]
    per_ph = units.group_by("signal", "phenomenon").agg(agg)
    overall = units.group_by("signal").agg(agg).with_columns(phenomenon=pl.lit("(all)"))
    iv = intervention(units)
    iv_all = iv.group_by("signal").agg(
        ((pl.col("intervention") * pl.col("n_pairs")).sum() / pl.col("n_pairs").sum()).alias("intervention"),
        pl.col("n_pairs").sum()).with_columns(phenomenon=pl.lit("(all)"))
    table = pl.concat([per_ph, overall.select(per_ph.columns)]).join(
        pl.concat([iv, iv_all.select(iv.columns)]), on=["signal", "phenomenon"], how="left")
    return table.with_columns(
        generality=pl.format("{}/{}", "cond_tracking", "conditions"),
        verdict=_verdict_expr(),
    ).sort("phenomenon", pl.col("tracking").abs(), descending=[False, True], nulls_last=True)


def _verdict_expr() -> pl.Expr:
    tracks = pl.col("tracking").abs() >= TRACKS
    nothing = pl.col("partial").abs() < ADDS_NOTHING
    return (pl.when(pl.col("signal") == BASELINE).then(pl.lit("the broad baseline"))
            .when(pl.col("tracking").is_null()).then(pl.lit("no information (constant or too few points)"))
            .when(~tracks).then(pl.lit("does not track"))
            .when(nothing).then(pl.lit("tracks, adds nothing beyond the norm"))
            .when(pl.col("lead") > 0).then(pl.lit("tracks, adds to the norm, leads"))
            .otherwise(pl.lit("tracks, adds to the norm, lags")))


def scorecard(root: Path | str, problems: list[str] | None = None) -> pl.DataFrame:
    runs = [r for r in store.list_runs(Path(root)) if r.state in ("finished", "running", "killed", "dead")]
    pts = series(runs, problems)
    if pts.height == 0:
        return pl.DataFrame()
    return aggregate(per_unit(pts))
