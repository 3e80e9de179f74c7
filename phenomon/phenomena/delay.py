"""Grokking delay over a data-size sweep: per run, per point (with seed spread), and the sweep's verdict.

The delay of one run is (first step with test accuracy ≥ `test_ok`) / (first step with train accuracy ≥ `train_ok`):
the grokking criterion's own ratio. A run that never reaches either bar within its budget has no delay: it stays
null (reported as "undefined", with how far the run got), never a number.
"""

from __future__ import annotations

import math

import polars as pl

GROKKED = 2.0  # the grokking criterion's threshold: test reaches its bar at least this many times later than train


def run_delays(frame: pl.DataFrame, axis: str, train_ok: float, test_ok: float) -> pl.DataFrame:
    """One row per run: toggles, seed, x (the sweep field), t_train, t_test, last step, best test acc, delay."""
    need = {"run", "step", "train/acc", "test/acc", axis}
    if frame.height == 0 or not need <= set(frame.columns):
        return pl.DataFrame(schema={"run": pl.String, "toggles": pl.String, "seed": pl.Int64, "x": pl.Float64,
                                    "t_train": pl.Int64, "t_test": pl.Int64, "last": pl.Int64,
                                    "best_test": pl.Float64, "delay": pl.Float64})
    f = frame.filter(pl.col("train/acc").is_not_null() & pl.col("test/acc").is_not_null())
    if "toggles" not in f.columns:
        f = f.with_columns(toggles=pl.lit(""))
    if "seed" not in f.columns:
        f = f.with_columns(seed=pl.lit(None, pl.Int64))
    per = f.sort("step").group_by("run").agg(
        pl.col("toggles").first(), pl.col("seed").first().cast(pl.Int64), pl.col(axis).first().cast(pl.Float64).alias("x"),
        pl.col("step").filter(pl.col("train/acc") >= train_ok).first().cast(pl.Int64).alias("t_train"),
        pl.col("step").filter(pl.col("test/acc") >= test_ok).first().cast(pl.Int64).alias("t_test"),
        pl.col("step").max().cast(pl.Int64).alias("last"), pl.col("test/acc").max().cast(pl.Float64).alias("best_test"))
    delay = pl.col("t_test").cast(pl.Float64) / pl.max_horizontal(pl.col("t_train"), pl.lit(1)).cast(pl.Float64)
    return per.with_columns(delay=pl.when(pl.col("t_train").is_not_null() & pl.col("t_test").is_not_null())
                            .then(delay).otherwise(None)).sort("toggles", "x", "seed")


def points(delays: pl.DataFrame) -> pl.DataFrame:
    """Per (toggles, x): n seeds, n with a defined delay, mean/sd/min/max of the defined delays, seeds grokked."""
    d = pl.col("delay")
    return delays.group_by("toggles", "x").agg(
        pl.len().alias("n"), d.is_not_null().sum().alias("n_defined"), d.mean().alias("mean"), d.std().alias("sd"),
        d.min().alias("lo"), d.max().alias("hi"), (d >= GROKKED).sum().alias("n_grokked"),
        pl.col("best_test").mean().alias("best_test"), pl.col("last").max().alias("last"),
        pl.col("t_train").is_null().sum().alias("n_unfit")).sort("toggles", "x")


def _fmt_x(x: float) -> str:
    return f"{x:g}"


def describe_point(r: dict, test_ok: float) -> str:
    """One point: its delay with seed spread and n, or how many seeds left it undefined and why."""
    n, k = r["n"], r["n_defined"]
    parts = []
    if k:
        spread = f" ± {r['sd']:.1f}" if k > 1 and r["sd"] is not None else ""
        rng = f", {r['lo']:.1f}–{r['hi']:.1f}×" if k > 1 else ""
        parts.append(f"delay {r['mean']:.1f}×{spread} (n={k}{rng}), grokked {r['n_grokked']}/{n}")
    if k < n:
        why = (f"test never ≥{test_ok:.0%} within {r['last']:,} steps, best {r['best_test']:.0%}"
               if r["n_unfit"] < n - k else f"train never fitted within {r['last']:,} steps")
        parts.append(f"undefined in {n - k}/{n} ({why})")
    return f"{_fmt_x(r['x'])}: " + "; ".join(parts)


def spearman(xs: list[float], ys: list[float]) -> float | None:
    """Spearman's ρ of paired values (average ranks for ties); None when either side is constant or n < 3."""
    if len(xs) < 3:
        return None
    df = pl.DataFrame({"x": xs, "y": ys}).with_columns(pl.col("x").rank(), pl.col("y").rank())
    if df["x"].n_unique() < 2 or df["y"].n_unique() < 2:
        return None
    r = df.select(pl.corr("x", "y")).item()
    return None if r is None or math.isnan(r) else float(r)


def judge(delays: pl.DataFrame, axis: str, test_ok: float) -> tuple[bool | None, str, dict]:
    """One variant's sweep: does the delay shrink as `axis` grows, and from which value is it no longer grokking?

    Shrinks: the mean delay at the largest value with every seed defined is below the one at the smallest such
    value and their seed ranges do not overlap. Where it stops: the smallest value from which on no seed's delay
    reaches GROKKED (values with undefined delays do not count as "not grokking").
    """
    pts = points(delays)
    rows = pts.to_dicts()
    nums: dict = {"points": [{k: r[k] for k in ("x", "n", "n_defined", "mean", "sd", "lo", "hi", "n_grokked")}
                             for r in rows]}
    if not rows:
        return None, "no finished run yet", nums
    text = "; ".join(describe_point(r, test_ok) for r in rows)
    full = [r for r in rows if r["n_defined"] == r["n"]]
    defined = delays.filter(pl.col("delay").is_not_null())
    rho = spearman(defined["x"].to_list(), defined["delay"].to_list())
    nums["spearman"] = rho
    nums["n_pairs"] = defined.height
    undefined_at = [r["x"] for r in rows if r["n_defined"] < r["n"]]
    nums["undefined_at"] = undefined_at
    stop = None
    for i, r in enumerate(rows):
        if all(q["n_defined"] == q["n"] and q["n_grokked"] == 0 for q in rows[i:]):
            stop = r["x"]
            break
    nums["stops_grokking_at"] = stop
    stop_text = (f"from {axis} {_fmt_x(stop)} on no seed groks (delay < {GROKKED:g}×, the criterion's threshold)"
                 if stop is not None else f"every {axis} tried still has a seed with delay ≥ {GROKKED:g}× or an "
                                          f"undefined delay")
    rho_text = f"Spearman ρ({axis}, delay) = {rho:+.2f} over {defined.height} runs" if rho is not None else \
        f"ρ undefined ({defined.height} runs with a delay)"
    if len(full) < 2:
        return None, (f"fewer than 2 {axis} values with a delay in every seed: cannot tell whether it shrinks; "
                      f"{stop_text}; {text}"), nums
    a, b = full[0], full[-1]
    nums.update(first=a["x"], last=b["x"], first_delay=a["mean"], last_delay=b["mean"])
    if min(a["n"], b["n"]) < 2:  # one seed has no spread: a fall could be seed noise
        return None, (f"{a['mean']:.1f}× at {axis} {_fmt_x(a['x'])} → {b['mean']:.1f}× at {_fmt_x(b['x'])}, but one "
                      f"seed at an end has no spread to judge by (run ≥ 2 seeds); {rho_text}; {stop_text}; "
                      f"per point: {text}"), nums
    shrinks = b["mean"] < a["mean"] and b["hi"] < a["lo"]
    head = (f"the delay shrinks with data: {a['mean']:.1f}× at {axis} {_fmt_x(a['x'])} → {b['mean']:.1f}× at "
            f"{_fmt_x(b['x'])} (seed ranges apart)" if shrinks else
            f"the delay does not clearly shrink: {a['mean']:.1f}× at {axis} {_fmt_x(a['x'])} → {b['mean']:.1f}× at "
            f"{_fmt_x(b['x'])} (seed ranges overlap or it grows)")
    return shrinks, f"{head}; {rho_text}; {stop_text}; per point: {text}", nums


def figure(ph_name: str, runs: list, out, plt, axis: str, train_ok: float, test_ok: float, claim: str):
    """One figure: the delay against `axis` (seeds as dots, mean and min–max band, undefined delays as triangles on
    the top edge), and test accuracy over steps for each `axis` value (mean over seeds, min–max band)."""
    from phenomon import store
    from phenomon.experiment import group_frame

    frame = group_frame(runs, [], axis)
    d = run_delays(frame, axis, train_ok, test_ok)
    pts = points(d)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    variants = sorted(d["toggles"].unique().to_list(), key=lambda v: (v != "", v)) if d.height else []
    top = max([GROKKED * 2] + [v for v in d["delay"].drop_nulls().to_list()]) * 1.6 if d.height else 10
    for i, v in enumerate(variants):
        c, lab = colors[i % len(colors)], v or "baseline"
        dv, pv = d.filter(pl.col("toggles") == v), pts.filter((pl.col("toggles") == v) & (pl.col("n_defined") > 0))
        ok, und = dv.filter(pl.col("delay").is_not_null()), dv.filter(pl.col("delay").is_null())
        ax.plot(ok["x"], ok["delay"], "o", ms=4, color=c, alpha=0.6)
        if und.height:
            ax.plot(und["x"], [top] * und.height, "^", ms=7, color=c, mfc="none",
                    label=f"{lab}: undefined (test never ≥{test_ok:.0%}) ×{und.height}")
        ax.plot(pv["x"], pv["mean"], "-", color=c, label=f"{lab}: mean delay of defined seeds")
        ax.fill_between(pv["x"], pv["lo"], pv["hi"], color=c, alpha=0.15)
        for j, x in enumerate(sorted(set(dv["x"].to_list()))):
            rr = frame.filter((pl.col(axis) == x) & (pl.col("toggles") == v))
            if "test/acc" not in rr.columns:
                continue
            cc = plt.get_cmap("viridis")(j / max(1, len(set(dv["x"].to_list())) - 1))
            for col, ls in (("test/acc", "-" if i == 0 else "-."), ("train/acc", "--" if i == 0 else ":")):
                b = store.mean_band(rr.select("step", col).drop_nulls(), "step", col).collect()
                ax2.plot(b["step"], b["mean"], ls, marker="o" if b.height < 3 else None, ms=3, color=cc,
                         label=f"{lab} {axis} {x:g} {col.split('/')[0]}")
                ax2.fill_between(b["step"], b["lo"], b["hi"], color=cc, alpha=0.12)
    ax.axhline(GROKKED, color="k", ls="--", lw=0.8, label=f"grokking threshold {GROKKED:g}×")
    ax.set_yscale("log")
    ax.set_xlabel(axis)
    ax.set_ylabel(f"delay: step(test ≥{test_ok:.0%}) / step(train ≥{train_ok:.0%})")
    ax.legend(fontsize=7)
    ax2.set_xscale("log")
    ax2.set_xlabel("optimiser step (log)")
    ax2.set_ylabel("accuracy (mean over seeds, min–max band)")
    if ax2.has_data():
        ax2.legend(fontsize=6, ncol=2)
    n = d.height
    fig.suptitle(f"{ph_name}: the grokking delay against {axis} ({n} runs)")
    fig.text(0.01, 0.01, "Claim: " + claim + ".", fontsize=7, wrap=True)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    p = out / f"{store.slug(ph_name)}_curves.png"
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return p
