"""Double descent sweep, as numbers: per variant and width, test/train error mean ± sd over seeds and seconds per run.

    python bench/double_descent_table.py RUNS_DIR            # tables of the sweeps already in RUNS_DIR
    python bench/double_descent_table.py RUNS_DIR --run      # first run the default sweep and its weight-decay
                                                             # ablation there (`phenomon experiment double_descent`)

With --run it exits 1 unless the baseline shows the peak and the weight-decay sweep does not.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from phenomon import experiment, registry, store


def tables(root: Path) -> dict:
    ph = registry.get("double_descent")
    runs = [r for r in store.list_runs(root) if r.phenomenon == ph.name and r.state == "finished"]
    verdicts = {}
    for group in sorted({r.group for r in runs}):
        members = [r for r in runs if r.group == group]
        secs = pl.DataFrame({"run": [r.id for r in members],
                             "secs": [(r.manifest.get("ended") or 0) - (r.manifest.get("started") or 0)
                                      for r in members]})
        f = experiment.group_frame(members, axis="width").join(secs, on="run")
        t = (f.filter(pl.col("final/test_error").is_not_null())
             .with_columns(store.toggles_label_expr("toggles").alias("v"))
             .group_by("v", "width").agg(
                 pl.col("final/test_error").mean().alias("test"), pl.col("final/test_error").std().alias("sd"),
                 pl.col("final/train_error").mean().alias("train"), pl.col("params").first(),
                 pl.col("secs").mean(), pl.len().alias("seeds"))
             .sort("v", "width"))
        v = experiment.group_verdict(ph, root, group)
        verdicts[group] = v
        print(f"\n== group {group}: {len(members)} runs, {secs['secs'].sum():.0f} s of run time")
        for (name,), part in t.group_by("v", maintain_order=True):
            print(f"-- {name}\n width  params  test error       train error  s/run  seeds")
            for r in part.iter_rows(named=True):
                print(f"{r['width']:>6} {r['params']:>7.0f}  {r['test']:.3f} ± {r['sd'] or 0:.3f}    {r['train']:.3f}"
                      f"       {r['secs']:5.1f}  {r['seeds']}")
        print(f"verdict: {v.line}")
    return verdicts


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs")
    p.add_argument("--run", action="store_true", help="run the default sweep and its weight-decay ablation first")
    a = p.parse_args()
    root = Path(a.runs)
    if a.run:
        t0 = time.time()
        subprocess.run([sys.executable, "-m", "phenomon", "experiment", "double_descent", "--runs", str(root)],
                       check=False)
        print(f"experiment wall time {time.time() - t0:.0f} s")
    verdicts = tables(root)
    if not a.run:
        return 0
    v = verdicts[registry.get("double_descent").group_of(registry.get("double_descent").defaults())]
    ok = v.effect is True and "| weight_decay: no double descent" in v.line
    print("PASS: peak with the baseline, none with weight decay" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
