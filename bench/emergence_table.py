"""The emergence sweeps in a runs directory as a table: every metric's mean ± sd over seeds per width and variant,
Π per-position accuracy beside exact match, seconds per run (wall and CPU-free wall from the manifests), and the
group verdict.

    python bench/emergence_table.py RUNS          # after `phenomon experiment emergence --runs RUNS`
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

from phenomon import experiment, registry, store
from phenomon.phenomena.emergence.figure import final_table

COLS = ("exact_match", "exact_pred", "token_acc", "edit_distance", "answer_ll")


def main(root: Path) -> int:
    ph = registry.get("emergence")
    runs = [r for r in store.list_runs(root) if r.phenomenon == "emergence" and r.state == "finished"]
    if not runs:
        print(f"no finished emergence runs in {root}")
        return 1
    t = final_table(runs)
    secs = {r.id: (r.manifest.get("ended") or 0) - (r.manifest.get("started") or 0) for r in runs}
    t = t.with_columns(pl.col("run").replace_strict(secs, return_dtype=pl.Float64).alias("seconds"))
    agg = t.group_by("label", "k", "width").agg(
        *[pl.concat_str(pl.col(c).mean().round(3).cast(pl.String), pl.lit(" ± "),
                        pl.col(c).std().round(3).cast(pl.String).fill_null("–")).alias(c) for c in COLS],
        pl.col("params").first().cast(pl.Int64), pl.len().alias("seeds"), pl.col("seconds").median().round(1)
    ).sort("label", "width")
    with pl.Config(tbl_rows=200, tbl_cols=20, fmt_str_lengths=40, tbl_width_chars=250):
        print(agg)
    print(f"{len(runs)} runs; wall seconds per run: median {t['seconds'].median():.1f}, max {t['seconds'].max():.1f}, "
          f"sum {t['seconds'].sum():.0f}")
    for group in sorted({r.group for r in runs}):
        v = experiment.group_verdict(ph, root, group)
        print(f"\n{group}: {v.line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs")))
