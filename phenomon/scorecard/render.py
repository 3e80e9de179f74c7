"""The scorecard as text (`phenomon score`) and as JSON objects (`phenomon score --json`)."""

from __future__ import annotations

import math

import polars as pl

from phenomon import catalog
from phenomon.store.text import fmt_value

LEGEND = ("Δ-ρ: Spearman ρ of the signal's changes with the outcome's (best lag within ±10% of the run), mean over "
          "units where the outcome moves, [95% bootstrap interval over units]; q: surrogate-null p, "
          "Benjamini–Hochberg across the table; vs null: |Δ-ρ| minus the best null's (null/step, null/random_walk) "
          "in the same unit; |norm, |step: partial ρ given the weight norm (changes) and given the step (levels); "
          "lead: outcome onset minus the signal's (5% of the eventual change), fraction of the run; R²@25%: "
          "leave-one-out R² predicting a run's outcome from the signal at 25% of training (norm's in brackets); "
          "interv: pairs where the signal moved as predicted / pairs whose effect moved; invar: unchanged under ReLU "
          "rescaling; n/a: undefined (the reason is in --json)")


def ci_text(r: dict, key: str, *, compact: bool = False) -> str | None:
    """`key`'s estimate with its interval ("+0.56 [+0.22,+0.90]"); `compact` drops the interval's leading zeros
    (the monitor's columns); None when the estimate is undefined."""
    v, lo, hi = r.get(key), r.get(f"{key}_lo"), r.get(f"{key}_hi")
    if v is None:
        return None
    c = (lambda x: f"{x:+.2f}".replace("0.", ".", 1)) if compact else (lambda x: f"{x:+.2f}")  # noqa: E731
    return f"{v:+.2f}" + (f" [{c(lo)},{c(hi)}]" if lo is not None else "")


def ci_cell(r: dict, key: str) -> str:
    """A table cell: the estimate with its interval, or "n/a"."""
    return ci_text(r, key) or "n/a"


def _yn(v) -> str:
    return "–" if v is None else "yes" if v else "no"


def text_rows(table: pl.DataFrame) -> list[str]:
    rows = [("SIGNAL", "PHENOMENON", "N", "Δ-ρ", "Q", "VS NULL", "|NORM", "|STEP", "LEAD", "R²@25%", "INTERV",
             "INVAR", "EXPLAINS")]
    for r in table.filter(pl.col("phenomenon") != "(all)").iter_rows(named=True):
        iv = f"{r['iv_agree']}/{r['iv_pairs']}" if r.get("iv_pairs") else "–"
        r2 = fmt_value(r.get("r2_25"), "{:.2f}") + (f" ({r['r2_25_norm']:.2f})" if r.get("r2_25_norm") is not None else "")
        rows.append((r["signal"], r["phenomenon"], str(r["n_units"]), ci_cell(r, "tracking"),
                     fmt_value(r["q"], "{:.3f}"), ci_cell(r, "null_margin"), ci_cell(r, "partial_norm"),
                     ci_cell(r, "partial_step"), ci_cell(r, "lead"), r2, iv,
                     _yn(r.get("invariant")), _yn(r.get("explains"))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    out.append("")
    for r in table.filter(pl.col("phenomenon") != "(all)").iter_rows(named=True):
        out.append(f"{r['signal']} · {r['phenomenon']}: {r['verdict']}")
    overall = table.filter(pl.col("phenomenon") == "(all)")
    if overall.height and table.filter(pl.col("phenomenon") != "(all)")["phenomenon"].n_unique() > 1:
        out.append("")
        for r in overall.iter_rows(named=True):
            out.append(f"{r['signal']} · across phenomena: {r['verdict']}")
    return out


def json_rows(table: pl.DataFrame) -> list[dict]:
    """One object per signal × phenomenon: the booleans (null when undefined), every statistic with its interval."""
    out = []
    for r in table.filter(pl.col("phenomenon") != "(all)").iter_rows(named=True):
        o = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        o["is_null_signal"] = r["signal"] in catalog.NULLS
        out.append(o)
    return out
