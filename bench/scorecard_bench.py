"""Scorecard speed: 100 runs × 100,000 rows (target: under 2 s), with a real store written by RunWriter.

Each synthetic run has a grokking-like test accuracy curve and a dozen signal series (15 names ×
6,666 steps ≈ 100k rows, the two nulls included). The store is built once in a temporary directory (or --root to keep it); then
`scorecard.scorecard(root)` is timed `--repeat` times and the median printed.

    python bench/scorecard_bench.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phenomon import scorecard, store  # noqa: E402

SIGNALS = ["weight_norm", "prime_count", "prime_count/scaled10", "magnitude/mean_abs", "fourier_sparsity",
           "effective_rank", "sharpness", "grad_norm", "grad_norm/snr", "softmax_collapse", "margin", "sparsity"]


def build(root: Path, runs: int, rows: int) -> None:
    names = ["test/acc"] + [f"signal/{s}" for s in SIGNALS] + ["null/step", "null/random_walk"]
    n_steps = rows // len(names)
    steps = np.arange(n_steps, dtype=np.int64) * 10
    rng = np.random.default_rng(0)
    for i in range(runs):
        rid = f"grokking-bench{i:03d}"
        w = store.RunWriter(root / rid, store.new_manifest(
            rid, "grokking", toggles=[] if i % 2 == 0 else ["weight_decay"], seed=i // 2, group="grokking-bench"),
            background=False)
        jump = rng.uniform(0.3, 0.7) * steps[-1]
        acc = 1 / (1 + np.exp(-(steps - jump) / (steps[-1] / 30)))
        cols = {"test/acc": acc}
        for j, s in enumerate(SIGNALS):
            cols[f"signal/{s}"] = np.cumsum(rng.standard_normal(n_steps)) + (j - 6) * acc
        cols["null/step"] = steps.astype(float)  # as every real run logs them
        cols["null/random_walk"] = np.cumsum(rng.standard_normal(n_steps))
        df = pl.DataFrame({
            "step": np.tile(steps, len(names)), "epoch": np.zeros(n_steps * len(names), dtype=np.int64),
            "wall": np.tile(steps.astype(float), len(names)), "name": np.repeat(names, n_steps),
            "value": np.concatenate([cols[n] for n in names]), "round": [None] * (n_steps * len(names)),
        }, schema=store.ROW_SCHEMA)
        # as a finished run leaves it: one compacted segment
        df.write_parquet(w.mdir / store.seg_name(0, df.height), compression="zstd")
        w._seq = df.height
        w.close("finished")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--root", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp)
        if not store.list_runs(root):
            t = time.perf_counter()
            build(root, args.runs, args.rows)
            print(f"built {args.runs} runs × {args.rows} rows in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        total = sum(store.read_metrics(r.dir).height for r in store.list_runs(root))
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            table = scorecard.scorecard(root)
            times.append(time.perf_counter() - t)
        print(f"scorecard over {len(store.list_runs(root))} runs, {total:,} rows: median {statistics.median(times):.2f} s "
              f"(min {min(times):.2f}, max {max(times):.2f}, {args.repeat} repeats; target < 2 s); "
              f"{table.height} signal × phenomenon rows")


if __name__ == "__main__":
    main()
