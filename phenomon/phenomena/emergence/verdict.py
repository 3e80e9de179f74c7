"""Emergence verdicts: how abrupt each metric's curve over model sizes is, and whether the metric explains it.

Abruptness of a curve over the sizes of a sweep (in order): the largest change between adjacent sizes as a share
of the curve's total variation Σ|Δ| — 1.0 for a step, 1/(n − 1) for a straight line over n sizes, undefined for a
flat curve. It is computed per seed (each seed's curve over widths) and reported as mean, sd, n and a t interval.
"Explained by the metric" (Schaeffer et al. 2023): exact match is more abrupt than per-token accuracy on the same
models (the paired difference over seeds has its interval above 0), and the product of the per-position token
accuracies — exact match if the k tokens erred independently — reproduces the measured exact match.
"""

from __future__ import annotations

import math
from typing import Sequence

import polars as pl

from phenomon.registry import Verdict

METRICS = ("exact_match", "token_acc", "edit_distance", "answer_ll")  # what `metric` may choose; all are logged
SMOOTH = ("token_acc", "edit_distance", "answer_ll")
EXPLAIN_TOL = 0.05  # |measured exact match − Π per-position accuracy| at every width (mean over seeds)
EMERGES_AT = 0.5  # the apparent emergence: the first width whose mean exact match reaches this


def abruptness(values: Sequence[float]) -> float | None:
    """Largest |change| between adjacent points as a share of the total variation; None if flat or < 2 points."""
    v = [float(x) for x in values]
    if len(v) < 2 or any(not math.isfinite(x) for x in v):
        return None
    steps = [abs(b - a) for a, b in zip(v, v[1:])]
    total = sum(steps)
    return max(steps) / total if total > 0 else None


def _stats(xs: list[float | None]) -> dict:
    """mean, sd, n and a 95% t interval over seeds; undefined entries are left out (and counted out)."""
    from phenomon.scorecard.stats import mean_ci  # the scorecard's own interval: one definition

    x = [v for v in xs if v is not None]
    n = len(x)
    if n == 0:
        return {"mean": None, "sd": None, "n": 0, "lo": None, "hi": None}
    m = sum(x) / n
    sd = math.sqrt(sum((v - m) ** 2 for v in x) / (n - 1)) if n > 1 else None
    lo, hi = mean_ci(x)
    return {"mean": m, "sd": sd, "n": n, "lo": lo, "hi": hi}


def _text(s: dict | None) -> str:
    if s is None:
        return "not logged"
    if s["mean"] is None:
        return "undefined (flat curve)"
    ci = f" [{s['lo']:.2f}, {s['hi']:.2f}]" if s["lo"] is not None else " (no interval: n < 3)"
    sd = f" ± {s['sd']:.2f}" if s["sd"] is not None else ""
    return f"{s['mean']:.2f}{sd}{ci}"


def judge(table: pl.DataFrame, k: int) -> Verdict:
    """One variant's sweep. `table`: one row per (width, seed) with `width`, `seed` and the final test metrics
    (`exact_match`, `token_acc`, `edit_distance`, `answer_ll`, `exact_pred`, optional `exact_match_<j>`)."""
    widths = sorted(table["width"].unique().to_list())
    if len(widths) < 3:
        return Verdict(None, f"{len(widths)} width(s) finished; the verdict needs at least 3")
    # abruptness per seed, over the widths every seed of the variant has
    seeds = sorted(table["seed"].unique().to_list())
    full = [s for s in seeds if table.filter(pl.col("seed") == s).height == len(widths)]
    cols = [c for c in (*METRICS, "exact_pred") if c in table.columns]
    prefix = sorted((c for c in table.columns if c.startswith("exact_match_")), key=lambda c: int(c.rsplit("_", 1)[1]))
    per_seed = {c: [abruptness(table.filter(pl.col("seed") == s).sort("width")[c].to_list()) for s in full]
                for c in (*cols, *prefix)}
    if not full:
        return Verdict(None, "no seed has finished every width yet")
    ab = {c: _stats(v) for c, v in per_seed.items()}
    gap = [None if a is None or b is None else a - b for a, b in zip(per_seed["exact_match"], per_seed["token_acc"])]
    gap_s = _stats(gap)
    mean = table.group_by("width").agg(pl.col(cols).mean()).sort("width")
    em, pred = mean["exact_match"].to_list(), mean["exact_pred"].to_list()
    tok = mean["token_acc"].to_list()
    miss = max(abs(a - b) for a, b in zip(em, pred))
    naive = max(abs(a - t ** k) for a, t in zip(em, tok))
    i_jump = max(range(len(em) - 1), key=lambda i: abs(em[i + 1] - em[i]))
    at = next((w for w, v in zip(widths, em) if v >= EMERGES_AT), None)
    n = len(full)
    # exact match more abrupt than token accuracy: decided by the interval of the paired gap; undecided (None) while
    # it straddles 0, and while n < 3 gives no interval (a point estimate from one or two seeds decides nothing)
    if gap_s["mean"] is None or gap_s["lo"] is None:
        more_abrupt = None
    else:
        more_abrupt = True if gap_s["lo"] > 0 else False if gap_s["hi"] <= 0 else None
    explained = miss <= EXPLAIN_TOL
    nums = {"k": k, "seeds": n, "widths": widths, "abruptness": ab, "gap_exact_vs_token": gap_s,
            "max_abs_exact_minus_product": miss, "max_abs_exact_minus_token_acc_pow_k": naive,
            "largest_exact_jump": [widths[i_jump], widths[i_jump + 1], em[i_jump], em[i_jump + 1]],
            "emerges_at_width": at, "curve": mean.rows()}
    body = (f"k={k}, {len(widths)} widths × {n} seed{'s' if n != 1 else ''}; abruptness (largest step between "
            f"adjacent widths / total variation; a straight line is {1 / (len(widths) - 1):.2f}): exact match "
            f"{_text(ab['exact_match'])}, token accuracy {_text(ab['token_acc'])}, edit distance "
            f"{_text(ab.get('edit_distance'))}, answer log-likelihood {_text(ab.get('answer_ll'))}; exact − token "
            f"{_text(gap_s)}; exact match jumps {em[i_jump]:.3f} → {em[i_jump + 1]:.3f} between widths "
            f"{widths[i_jump]} and {widths[i_jump + 1]} (first ≥ {EMERGES_AT}: "
            f"{at if at is not None else 'none'}); Π per-position accuracy predicts it within {miss:.3f} at every "
            f"width (token accuracy^k: {naive:.3f})")
    line_ab = 1 / (len(widths) - 1)
    tok_ab = ab["token_acc"]["mean"]
    if tok_ab is not None and tok_ab >= 2 * line_ab:  # the smooth metric is not smooth here: say so, not hide it
        body += (f"; per-token accuracy itself is {tok_ab / line_ab:.1f}× as abrupt as a straight line: the metric "
                 f"sharpens a change that is partly real")
        nums["token_acc_vs_straight_line"] = tok_ab / line_ab
    if prefix:
        body += "; exact match of the first j tokens, abruptness " + ", ".join(
            f"j={c.rsplit('_', 1)[1]} {ab[c]['mean']:.2f}" for c in prefix if ab[c]["mean"] is not None)
    nums["gaps_per_seed"] = gap
    if more_abrupt and explained:
        return Verdict(True, "emergence is a metric artefact: exact match is more abrupt than per-token accuracy "
                             "on the same models, and the per-token accuracies predict it — " + body, nums)
    if more_abrupt is None and explained:
        signs = sum(1 for g in gap if g is not None and g > 0)
        why = ("the interval of the gap includes 0" if gap_s["lo"] is not None
               else f"{n} seed{'s' if n != 1 else ''} give{'s' if n == 1 else ''} no interval (n < 3)")
        return Verdict(None, f"undecided: the per-token accuracies predict exact match, and exact match is more "
                             f"abrupt in {signs} of {n} seeds, but {why} (more seeds decide) — " + body, nums)
    why = [t for t, bad in (("exact match is not more abrupt than token accuracy", more_abrupt is False),
                            (f"the per-token product misses exact match by {miss:.3f} > {EXPLAIN_TOL}",
                             not explained)) if bad]
    return Verdict(False, f"not explained by the metric ({'; '.join(why)}): " + body, nums)


VARIANT = pl.when(pl.col("toggles") == "").then(pl.lit("baseline")).otherwise(pl.col("toggles")).alias("variant")


def group_criterion(frame: pl.DataFrame, cfg) -> Verdict:
    """Each variant's sweep over widths and seeds (frame: the group's wide rows with `toggles`, `seed`, `width`);
    the effect is the baseline's when it ran, else the first variant's. A variant's k is read from its runs."""
    need = {"final/exact_match", "final/token_acc", "final/exact_pred", "width", "toggles"}
    if frame.height == 0 or not need <= set(frame.columns):
        return Verdict(None, "no finished run in the group yet")
    names = [c for c in frame.columns if c.startswith("final/") and not c.startswith("final/train_")]
    f = frame.with_columns(VARIANT).filter(pl.col("final/exact_match").is_not_null())
    table = f.select("variant", "width", "seed", *[pl.col(c).alias(c.removeprefix("final/")) for c in names])
    variants = sorted(table["variant"].unique().to_list(), key=lambda v: (v != "baseline", v))
    if not variants:
        return Verdict(None, "no finished run in the group yet")
    out = {}
    for v in variants:
        t = table.filter(pl.col("variant") == v)
        k = int(t["k"].drop_nulls()[0]) if "k" in t.columns and t["k"].drop_nulls().len() else cfg.k
        out[v] = judge(t.drop([c for c in t.columns if c.startswith("exact_match_") and t[c].null_count()]), k)
    head = out[variants[0]]
    if len(out) == 1:
        return Verdict(head.effect, (f"{variants[0]}: " if variants[0] != "baseline" else "") + head.line,
                       head.numbers)
    nums = {**head.numbers, "variants": {v: {x: y for x, y in r.numbers.items() if x != "curve"}
                                         for v, r in out.items()}}
    return Verdict(head.effect, " | ".join(f"{v}: {r.line}" for v, r in out.items()), nums)


def criterion(frame: pl.DataFrame, cfg) -> Verdict:
    """One width: its final metrics (a single run cannot show a jump over sizes: that is the group's verdict)."""
    if frame.height == 0 or "test/exact_match" not in frame.columns:
        return Verdict(None, "no evaluations yet")
    ev = frame.filter(pl.col("test/exact_match").is_not_null()).sort("step")
    if ev.height == 0:
        return Verdict(None, "no evaluations yet")
    last = ev.row(-1, named=True)
    done = "final/exact_match" in frame.columns and frame["final/exact_match"].drop_nulls().len() > 0
    nums = {m: last.get(f"test/{m}") for m in (*METRICS, "exact_pred")}
    nums.update(width=cfg.width, k=cfg.k)
    line = (f"width {cfg.width}, k={cfg.k}: exact match {nums['exact_match']:.3f} (Π per-position accuracy "
            f"{nums['exact_pred']:.3f}), token accuracy {nums['token_acc']:.3f}, edit distance "
            f"{nums['edit_distance']:.2f}, answer log-likelihood {nums['answer_ll']:.2f} nats")
    return Verdict(None, line + ("" if done else " so far"), nums)
