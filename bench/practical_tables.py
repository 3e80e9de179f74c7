"""The tables behind the README's "Does the paper's table hold here?" rows, from the runs in a directory.

    python bench/practical_tables.py RUNS

tickets_at_init: test accuracy per level (mean ± sd over seeds) of the IMP ticket and each method at init, and each
method − ticket paired by seed. dd_regularised: test error per width of the untuned, early-stopping-only,
weight-decay-only and tuned readings (mean ± sd), the chosen weight decay, and the group verdict. Runs of one
phenomenon are pooled across comparison groups when their configs differ only in fields that do not change training
(`seeds`, the experiment's seed list), so an experiment resumed in a second invocation is read as one.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

from phenomon import registry, store
from phenomon.config import from_dict
from phenomon.experiment import group_frame


def _runs(root: Path, name: str) -> list:
    return [r for r in store.list_runs(root) if r.phenomenon == name and r.state == "finished"]


def tickets(root: Path) -> None:
    runs = _runs(root, "tickets_at_init")
    if not runs:
        return
    ph = registry.get("tickets_at_init")
    v = ph.group_criterion(group_frame(runs), ph.baseline_of(from_dict(ph.config_cls, runs[0].manifest["config"])))
    print(f"tickets_at_init ({len(runs)} runs)\n  verdict: {v.line}\n")
    levels = v.numbers.get("levels", {})
    methods = [m for m in ("snip", "grasp", "synflow", "prune_at_init", "random_prune")
               if levels and m in next(iter(levels.values()))]
    print("| weights left | IMP ticket | " + " | ".join(methods) + " |")
    print("|---|---|" + "---|" * len(methods))
    for r, lv in levels.items():
        cells = [f"{lv[m]['mean']:.3f} ± {lv[m]['sd']:.3f} ({100 * lv[m]['diff']:+.1f})" for m in methods]
        print(f"| {lv['remaining']:.1%} | {lv['ticket']['mean']:.3f} ± {lv['ticket']['sd']:.3f} | "
              + " | ".join(cells) + " |")
    print()


def regularised(root: Path) -> None:
    runs = _runs(root, "dd_regularised")
    if not runs:
        return
    ph = registry.get("dd_regularised")
    f = group_frame(runs, axis="width")
    v = ph.group_criterion(f, ph.baseline_of(from_dict(ph.config_cls, runs[0].manifest["config"])))
    print(f"dd_regularised ({len(runs)} runs)\n  verdict: {v.line}\n")
    rows = f.filter(pl.col("final/test_error").is_not_null())
    cols = ["untuned", "es_only", "wd_only", "final"]
    agg = rows.group_by("width").agg(
        *[pl.col(f"{c}/test_error").mean().alias(f"{c}_m") for c in cols],
        *[pl.col(f"{c}/test_error").std().alias(f"{c}_s") for c in cols],
        pl.col("untuned/train_error").mean().alias("train0"), pl.col("final/weight_decay").median().alias("wd"),
        pl.col("final/epochs").median().alias("ep"), pl.len().alias("n")).sort("width")
    print("| width | untuned test (train) | early stopping only | weight decay only | tuned both | chosen wd, epoch | n |")
    print("|---|---|---|---|---|---|---|")
    for r in agg.iter_rows(named=True):
        cell = lambda c: f"{r[c + '_m']:.3f} ± {r[c + '_s'] or 0:.3f}"  # noqa: E731
        print(f"| {r['width']} | {cell('untuned')} ({r['train0']:.3f}) | {cell('es_only')} | {cell('wd_only')} | "
              f"{cell('final')} | {r['wd']:g}, {r['ep']:.0f} | {r['n']} |")
    print()


if __name__ == "__main__":
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        sys.exit("usage: python bench/practical_tables.py RUNS (a runs directory)")
    tickets(Path(sys.argv[1]))
    regularised(Path(sys.argv[1]))
