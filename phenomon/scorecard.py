"""The scorecard: which explanation signals are worth anything, in pure polars.

Per signal × unit (a run's training curve, a sweep's runs, or a run's pruning rounds):
  tracking   Spearman ρ between the signal and the outcome metric (e.g. test accuracy) along the unit's x axis;
  lead       the x of the outcome's largest change point minus the signal's (mean-shift CUSUM), as a fraction of
             the x range: > 0 means the signal moves first (useful for prediction);
  partial    Spearman partial correlation with the outcome given the weight norm (the broad baseline): a signal
             whose partial is near 0 adds nothing beyond the norm; `partial_mag` is the smallest |partial| given
             any weight-magnitude statistic (norm, mean |w|, count of |w| >= 1.5: the prime count's confounders);
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
# the magnitude family: the broad baseline and the prime count's confounders (mean |w|, how many |w| >= 1.5)
MAGNITUDE = {"signal/weight_norm": "norm", "signal/magnitude/mean_abs": "mean|w|",
             "signal/magnitude/n_ge_1.5": "#|w|≥1.5"}
TRACKS = 0.5  # |ρ| at or above this counts as tracking
ADDS_NOTHING = 0.2  # |partial ρ| below this: nothing beyond the norm
OUTCOME_CHANGED = 0.1  # a toggle changed the outcome when the final outcome moved by this much


@dataclass(frozen=True)
class Unit:
    """How one phenomenon's runs become series: x axis and outcome metric."""

    phenomenon: str
    x_axis: str
    outcome: str
    moves: float = OUTCOME_CHANGED  # the outcome's largest mean shift within a unit must reach this to count


def _unit_of(phenomenon: str) -> Unit:
    from phenomon import registry
    from phenomon.config import UsageError

    try:
        ph = registry.get(phenomenon)
        return Unit(phenomenon, str(ph.x_axis), ph.outcome, ph.outcome_moves)
    except UsageError:
        return Unit(phenomenon, "step", "test/acc")


def _config_x(r: store.RunInfo) -> float | None:
    axis = _unit_of(r.phenomenon).x_axis
    if not axis.startswith("config:"):
        return None
    v = (r.manifest.get("config") or {}).get(axis.split(":", 1)[1])
    return float(v) if isinstance(v, (int, float)) else None


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
        names = (pl.col("name") == u.outcome) | (pl.col("name").str.starts_with("signal/")
                                                 & ~pl.col("name").str.contains("@", literal=True))
        reduced = [d for d in (_reduce_run(r, u, names, problems) for r in rs) if d is not None]
        if not reduced:
            continue
        df = pl.concat(reduced)
        out.append(_to_units(df, u, meta.filter(pl.col("run").is_in([r.id for r in rs]))))
    if not out:
        return pl.DataFrame(schema={"phenomenon": pl.String, "group": pl.String, "toggles": pl.String,
                                    "seed": pl.Int64, "unit": pl.String, "x": pl.Float64, "signal": pl.String,
                                    "value": pl.Float64, "outcome": pl.Float64, "n_null": pl.UInt32,
                                    "moves": pl.Float64})
    return pl.concat(out, how="vertical_relaxed")


BUCKETS = 256  # a run's curve is scored on at most this many points (the last value in each step bucket)


def _reduce_run(r: store.RunInfo, u: Unit, names: pl.Expr, problems: list[str] | None) -> pl.DataFrame | None:
    """One run's rows -> the last finite value per (round, name, bucket), with the count of non-finite values.

    On the step axis a bucket is 1/BUCKETS of the run's steps: statistics over 256 points are as good as over
    7,700, and reducing run by run (small frames, one group-by each) keeps 10M rows under 2 s on 2 cores.
    Other axes keep final values only.
    """
    cols = ["step", "name", "value", "round"]
    try:
        chain = store.cover(store.list_segments(r.dir), 0)
        parts = [pl.read_parquet(p, columns=cols) for _, _, p in chain]
        d = pl.concat(parts) if parts else None
    except Exception:  # noqa: BLE001 - a corrupt or vanished segment: the careful reader reports and skips it
        d = store.read_metrics(r.dir, problems=problems).select(cols)
    if d is None or d.height == 0:
        return None
    d = d.with_columns(pl.col("round").cast(pl.Int64).fill_null(0))
    if u.x_axis == "step":
        b = pl.col("step") * BUCKETS // (pl.col("step").max().over("round") + 1)
    else:
        b = pl.lit(0, pl.Int64)
    # reduce first, then pick names: the string tests run on a few thousand rows, not a hundred thousand
    return d.with_columns(b=b).group_by("round", "name", "b").agg(
        pl.col("step").max(), pl.col("value").drop_nulls().last(), pl.col("value").null_count().alias("n_null"),
    ).filter(names).with_columns(run=pl.lit(r.id))


def _to_units(df: pl.DataFrame, u: Unit, meta: pl.DataFrame) -> pl.DataFrame:
    outc = df.filter(pl.col("name") == u.outcome).select("run", "round", "b", "step", pl.col("value").alias("outcome"))
    sig = df.filter(pl.col("name") != u.outcome).select("run", "round", "b", pl.col("name").alias("signal"), "value",
                                                        "n_null")
    m = meta.select("run", "phenomenon", "group", "toggles", "seed", pl.col("xconf").alias("x")) \
        if u.x_axis.startswith("config:") else meta.select("run", "phenomenon", "group", "toggles", "seed")
    if u.x_axis == "step":
        # every outcome bucket gets every signal's latest value at or before it (signals on sparser schedules)
        grid = outc.join(sig.select("run", "signal").unique(), on="run")
        pts = (grid.join(sig, on=["run", "round", "b", "signal"], how="left")
               .sort("run", "round", "signal", "b")
               .with_columns(pl.col("value").forward_fill().over("run", "round", "signal"),
                             pl.col("n_null").fill_null(0)))
        pts = pts.join(m, on="run").with_columns(
            unit=pl.col("run") + pl.when(pl.col("round") > 0).then(pl.format("#r{}", "round")).otherwise(pl.lit("")),
            x=pl.col("step").cast(pl.Float64))
    elif u.x_axis.startswith("metric:"):
        pts = outc.join(sig, on=["run", "round", "b"]).join(m, on="run").with_columns(
            unit=pl.col("run"), x=pl.col("round").cast(pl.Float64))
    elif u.x_axis.startswith("config:"):
        fo = outc.group_by("run").agg(pl.col("outcome").sort_by("round").last())
        fs = sig.group_by("run", "signal").agg(pl.col("value").sort_by("round").last(), pl.col("n_null").sum())
        pts = fo.join(fs, on="run").join(m, on="run").with_columns(
            unit=pl.format("{}|{}|{}", "group", "toggles", "seed"))
    else:
        raise ValueError(f"unknown x axis {u.x_axis!r}")
    return pts.select("phenomenon", "group", "toggles", pl.col("seed").cast(pl.Int64), "unit", "x", "signal",
                      pl.col("value").cast(pl.Float64), pl.col("outcome").cast(pl.Float64),
                      pl.col("n_null").cast(pl.UInt32), pl.lit(u.moves, pl.Float64).alias("moves"))


def _cusum_cols(v: str) -> list[pl.Expr]:
    """CUSUM statistic and mean shift at each split, from the window columns k, n, S_k, S_n that `per_unit` adds."""
    shift = (pl.col(f"sk_{v}") / pl.col("k") - (pl.col(f"sn_{v}") - pl.col(f"sk_{v}")) / (pl.col("n") - pl.col("k"))).abs()
    stat = (pl.col("k") * (pl.col("n") - pl.col("k")) / pl.col("n")).sqrt() * shift
    return [stat.fill_nan(None).alias(f"stat_{v}"), shift.alias(f"shift_{v}")]


def per_unit(pts: pl.DataFrame) -> pl.DataFrame:
    """Tracking, lead, partial correlation and null counts per signal × unit (window expressions, one group-by)."""
    g = ["unit", "signal"]
    nulls = pts.group_by(g).agg(pl.col("n_null").sum())
    clean = pts.filter(pl.col("value").is_not_null() & pl.col("outcome").is_not_null())
    mags = {name: f"m{i}" for i, name in enumerate(MAGNITUDE)}
    base = (clean.filter(pl.col("signal").is_in(list(mags)))
            .with_columns(pl.col("signal").replace_strict(mags, return_dtype=pl.String))
            .pivot(on="signal", index=["unit", "x"], values="value", aggregate_function="last"))
    for col in mags.values():
        if col not in base.columns:
            base = base.with_columns(pl.lit(None, pl.Float64).alias(col))
    # window columns first, arithmetic after: nested windows inside one expression are evaluated many times over
    j = clean.join(base, on=["unit", "x"], how="left").sort(*g, "x").with_columns(
        rv=pl.col("value").rank().over(g), ro=pl.col("outcome").rank().over(g),
        *[pl.col(c).rank().over(g).alias(f"r{c}") for c in mags.values()],
        x_next=pl.col("x").shift(-1).over(g), k=pl.int_range(1, pl.len() + 1).over(g), n=pl.len().over(g),
        sk_value=pl.col("value").cum_sum().over(g), sn_value=pl.col("value").sum().over(g),
        sk_outcome=pl.col("outcome").cum_sum().over(g), sn_outcome=pl.col("outcome").sum().over(g),
    ).with_columns(*_cusum_cols("value"), *_cusum_cols("outcome"))
    stats = j.group_by("phenomenon", "group", "toggles", "seed", *g).agg(
        pl.len().alias("n"),
        pl.corr("rv", "ro").alias("rho"),
        *[pl.corr("rv", f"r{c}").alias(f"s_{c}") for c in mags.values()],
        *[pl.corr("ro", f"r{c}").alias(f"o_{c}") for c in mags.values()],
        pl.col("x_next").get(pl.col("stat_value").arg_max().fill_null(0)).alias("cp_signal"),
        pl.col("x_next").get(pl.col("stat_outcome").arg_max().fill_null(0)).alias("cp_outcome"),
        pl.col("shift_outcome").get(pl.col("stat_outcome").arg_max().fill_null(0)).alias("outcome_shift"),
        (pl.col("x").max() - pl.col("x").min()).alias("span"),
        pl.col("value").first().alias("first"),
        pl.col("value").last().alias("last"),
        pl.col("outcome").last().alias("final_outcome"),
        (pl.col("moves").first() if "moves" in clean.columns else pl.lit(OUTCOME_CHANGED)).alias("moves"),
    )
    # NaN compares greater than every number in polars: undefined correlations must be null before any test
    stats = stats.with_columns(pl.col("rho", "^s_m.*$", "^o_m.*$").fill_nan(None))

    def partial(c: str) -> pl.Expr:
        rs, ro = pl.col(f"s_{c}"), pl.col(f"o_{c}")
        p = (pl.col("rho") - rs * ro) / ((1 - rs ** 2) * (1 - ro ** 2)).sqrt()
        # a monotone function of the baseline has its ranks: it adds nothing by definition (the formula is 0/0)
        return pl.when(rs.abs() > 0.999).then(0.0).otherwise(p.fill_nan(None))

    stats = stats.with_columns(*[partial(c).alias(f"p_{c}") for c in mags.values()])
    # beyond magnitude: the partial given whichever magnitude statistic (other than the signal itself) explains most
    others = [pl.when(pl.col("signal") != name).then(pl.col(f"p_{c}").abs()) for name, c in mags.items()]
    best = pl.min_horizontal(others)
    which = pl.coalesce([pl.when(pl.col("signal") != name).then(
        pl.when(pl.col(f"p_{c}").abs() == best).then(pl.lit(label))) for (name, c), label in
        zip(mags.items(), MAGNITUDE.values())])
    stats = stats.with_columns(partial_mag=best, explained_by=which)
    return stats.with_columns(
        rho=pl.col("rho").fill_nan(None),
        # a lead needs an outcome transition to lead: none when the outcome barely moved
        lead=pl.when((pl.col("outcome_shift") >= pl.col("moves")) & pl.col("rho").is_not_nan()
                     & pl.col("rho").is_not_null())
        .then((pl.col("cp_outcome") - pl.col("cp_signal")) / pl.col("span")).fill_nan(None),
        partial=pl.when(pl.col("signal") == BASELINE).then(None).otherwise(pl.col("p_m0")),
        movement=((pl.col("last") - pl.col("first")) / (pl.col("first").abs() + pl.col("last").abs() + 1e-12)),
    ).join(nulls, on=g, how="left").drop(pl.selectors.matches("^[sop]_m\\d$"))


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
    moved = pl.col("outcome_shift") >= pl.col("moves")
    cond = pl.format("{}:{}", "phenomenon", "toggles")
    agg = [
        pl.len().alias("units"),
        moved.sum().alias("units_moving"),
        pl.col("rho").filter(moved).median().alias("tracking"),
        pl.col("lead").median().alias("lead"),
        (pl.col("lead") > 0).filter(pl.col("lead").is_not_null()).mean().alias("leads_frac"),
        pl.col("partial").filter(moved).median().alias("partial"),
        pl.col("partial_mag").filter(moved).median().alias("partial_mag"),
        pl.col("explained_by").filter(moved).drop_nulls().mode().first().alias("explained_by"),
        pl.col("n_null").sum().alias("nulls"),
        cond.filter(moved & (pl.col("rho").abs() >= TRACKS)).n_unique().alias("cond_tracking"),
        cond.filter(moved).n_unique().alias("conditions"),
    ]
    per_ph = units.group_by("signal", "phenomenon").agg(agg)
    # across phenomena a signal may track with opposite signs (the norm falls as grokking succeeds and as pruning
    # fails): the overall row reports magnitudes
    overall = units.with_columns(pl.col("rho", "partial").abs()).group_by("signal").agg(agg).with_columns(
        phenomenon=pl.lit("(all)"))
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
    nothing_mag = pl.col("partial_mag") < ADDS_NOTHING
    return (pl.when(pl.col("signal") == BASELINE).then(pl.lit("the broad baseline"))
            .when(pl.col("tracking").is_null()).then(pl.lit("no information (constant or too few points)"))
            .when(~tracks).then(pl.lit("does not track"))
            .when(nothing).then(pl.lit("tracks, adds nothing beyond the norm"))
            .when(pl.col("signal").is_in(list(MAGNITUDE))).then(pl.lit("a magnitude baseline"))
            .when(nothing_mag).then(pl.format("tracks, adds nothing beyond weight magnitude ({})", "explained_by"))
            .when(pl.col("lead") > 0).then(pl.lit("tracks, adds to the norm, leads"))
            .otherwise(pl.lit("tracks, adds to the norm, lags")))


def scorecard(root: Path | str, problems: list[str] | None = None) -> pl.DataFrame:
    runs = [r for r in store.list_runs(Path(root)) if r.state in ("finished", "running", "killed", "dead")]
    pts = series(runs, problems)
    if pts.height == 0:
        return pl.DataFrame()
    return aggregate(per_unit(pts))
