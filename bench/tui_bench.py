"""Monitor benchmark: idle CPU, flush-to-screen latency and key-to-redraw latency on a large, live runs directory.

Setup: 20 grokking runs × 100,000 rows (4 metrics per step), 16 finished and 4 still written by separate writer
processes (RunWriter, 4 metrics every 0.1 s, flushed about once a second). The app runs headless under Pilot in this
process, so its CPU time is this process's CPU time (writers are other processes). Measured:

- idle CPU: % of one core over 2 s windows with nobody pressing keys, on the runs table and on the compare screen
  showing the 4 live runs plus 2 finished ones (its charts redraw as rows arrive);
- flush to screen: this process appends a row to a fifth live run and flushes it, then waits until the compare
  chart has been redrawn with that step in it;
- key to redraw: a smoothing key press until the compare chart has been redrawn.

    python bench/tui_bench.py [--rows 100000] [--runs 20] [--live 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phenomon import store  # noqa: E402

WRITER = r"""
import json, os, sys, time
sys.path.insert(0, {repo!r})
from phenomon import store
d = {d!r}
m = store.read_manifest(d); m.update(status="running", pid=os.getpid(), pid_start=store.proc_start(os.getpid()))
w = store.RunWriter(d, m)
step = m["progress"]["step"]
while True:
    step += 1
    w.log({{"train/acc": 1.0, "test/acc": min(1.0, step / 2e5), "train/loss": 0.01, "test/loss": 1.0}}, step)
    time.sleep(0.1)
"""


def build(root: Path, n_runs: int, rows: int) -> list[Path]:
    steps = rows // 4
    s = np.arange(1, steps + 1)
    frame = pl.DataFrame({
        "step": np.repeat(s, 4), "epoch": None, "wall": np.repeat(s.astype(float), 4),
        "name": np.tile(["train/acc", "test/acc", "train/loss", "test/loss"], steps),
        "value": np.random.default_rng(0).random(rows), "round": None,
    }, schema=store.ROW_SCHEMA)
    dirs = []
    for i in range(n_runs):
        d = root / f"grokking-bench{i:02d}"
        (d / "metrics").mkdir(parents=True)
        frame.write_parquet(d / "metrics" / store.seg_name(0, rows))
        cfg = {"p": 97, "seed": i, "lr": 1e-3 * (1 + i % 5), "max_steps": 10 * steps}
        m = store.new_manifest(d.name, "grokking", config=cfg, config_hash=f"h{i}", group="bench", seed=i,
                               status="finished", rows=rows, progress={"step": steps, "max_steps": 10 * steps})
        store.atomic_write_json(d / "run.json", m)
        dirs.append(d)
    return dirs


async def measure(root: Path, live: list[Path], extra: Path, windows: int, n_runs: int) -> dict:
    from textual.widgets import DataTable

    from phenomon.tui.app import PhenomonApp
    from phenomon.tui.widgets.chart import LineChart

    out: dict[str, list[float]] = {"idle_runs": [], "idle_compare": [], "flush": [], "key": []}
    app = PhenomonApp(root)
    async with app.run_test(size=(160, 48)) as pilot:
        t0 = time.monotonic()
        while app.snapshot is None or len(app.snapshot.runs) < n_runs:
            await pilot.pause(0.1)
        out["first_load_s"] = [time.monotonic() - t0]
        table = app.screen.query_one(DataTable)
        await pilot.pause(2.0)
        for _ in range(windows):  # runs table, idle
            c0, w0 = time.process_time(), time.perf_counter()
            await asyncio.sleep(2.0)
            out["idle_runs"].append(100 * (time.process_time() - c0) / (time.perf_counter() - w0))
        for d in [*live, extra, root / "grokking-bench00", root / "grokking-bench01"]:
            table.move_cursor(row=table.get_row_index(d.name))
            await pilot.press("space")
        await pilot.press("c")
        chart = app.screen.query_one("#chart-test-acc", LineChart)
        await pilot.pause(2.0)
        for _ in range(windows):  # compare screen, idle while 4 runs stream in
            c0, w0 = time.process_time(), time.perf_counter()
            await asyncio.sleep(2.0)
            out["idle_compare"].append(100 * (time.process_time() - c0) / (time.perf_counter() - w0))
        m = store.read_manifest(extra)
        writer = store.RunWriter(extra, {**m, "status": "running", "pid": os.getpid()}, background=False)
        step = m["progress"]["step"]
        for _ in range(windows * 2):  # flush to screen
            step += 50
            writer.log({"test/acc": 0.5, "train/acc": 0.5, "train/loss": 1.0, "test/loss": 1.0}, step)
            t0 = time.monotonic()
            writer.flush()
            while not (chart.drawn_at > t0 and any(s.x.max() >= step for s in chart.series if len(s.x))):
                await asyncio.sleep(0.005)
            out["flush"].append(chart.drawn_at - t0)
            await asyncio.sleep(0.3)
        for i in range(windows * 4):  # key to redraw
            draws, t0 = chart.draws, time.monotonic()
            await pilot.press("right_square_bracket" if i % 2 == 0 else "left_square_bracket")
            while chart.draws == draws:
                await asyncio.sleep(0.001)
            out["key"].append(chart.drawn_at - t0)
        writer.close("finished")
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--live", type=int, default=4)
    ap.add_argument("--windows", type=int, default=5)
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="phenomon-tui-bench-")) / "runs"
    t = time.perf_counter()
    dirs = build(root, a.runs + 1, a.rows)
    extra = dirs.pop()
    print(f"built {a.runs + 1} runs × {a.rows:,} rows in {time.perf_counter() - t:.1f} s under {root}")
    repo = str(Path(__file__).resolve().parents[1])
    writers = [subprocess.Popen([sys.executable, "-c", WRITER.format(repo=repo, d=str(d))]) for d in dirs[: a.live]]
    try:
        res = asyncio.run(measure(root, dirs[: a.live], extra, a.windows, a.runs + 1))
    finally:
        for w in writers:
            w.terminate()
        for w in writers:
            w.wait(timeout=10)
    med = {k: statistics.median(v) for k, v in res.items()}
    print(f"first full load of {a.runs + 1} runs:           {med['first_load_s']:.2f} s")
    print(f"idle CPU, runs table ({a.live} runs written):     {med['idle_runs']:.1f}% of a core (median of {a.windows} × 2 s)")
    print(f"idle CPU, compare screen (streaming):   {med['idle_compare']:.1f}% of a core (median of {a.windows} × 2 s)")
    print(f"flush to screen:                        {1000 * med['flush']:.0f} ms median, "
          f"{1000 * max(res['flush']):.0f} ms max (n={len(res['flush'])})")
    print(f"key press to redraw:                    {1000 * med['key']:.1f} ms median, "
          f"{1000 * max(res['key']):.1f} ms max (n={len(res['key'])})")
    print("targets: idle < 5% of a core, flush to screen < 1 s, key to redraw < 100 ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
