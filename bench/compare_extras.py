"""What the compare screen's landmarks, verdicts and wall-time axis cost, against one panel's series in the same run.

Setup: `tui_bench.build` (20 grokking runs × 100,000 rows, 4 metrics per step), read by the monitor's own watcher.
Timed, each `--repeat` times (median and max, ms): one panel's series (`frames.step_series` of test/acc over the 20
runs, no cache: the cost of a recomputed panel), the landmarks and per-configuration verdicts (`landmarks.for_runs`:
each run's criterion on its rows) with every run judged, with 4 runs judged again (4 live runs got rows; the
others' verdicts are kept by the compare screen's cache) and with none, and the wall-time re-reading of that panel
(`wall.over_wall_time`). Printed as ratios to the panel: the landmarks run once per recomputation of the panels, in
the same worker thread.

    python bench/compare_extras.py [--runs 20] [--rows 100000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tui_bench import build  # noqa: E402

from phenomon.tui import frames, landmarks, wall  # noqa: E402
from phenomon.tui.watcher import StoreWatcher  # noqa: E402


def timed(fn, repeat: int) -> tuple[float, float, object]:
    out, ts = None, []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        ts.append(1000 * (time.perf_counter() - t))
    return statistics.median(ts), max(ts), out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        build(root, a.runs, a.rows)
        snap = StoreWatcher(root).poll()
        fr, manifests = dict(snap.frames), {r.id: r.manifest for r in snap.runs}
        panel = timed(lambda: frames.step_series(fr, manifests, "test/acc"), a.repeat)
        lm = timed(lambda: landmarks.for_runs(fr, manifests), a.repeat)
        cache = landmarks.Judged()
        landmarks.for_runs(fr, manifests, cache=cache)
        kept = timed(lambda: landmarks.for_runs(fr, manifests, cache=cache), a.repeat)

        def four_new() -> object:  # 4 live runs got rows since: only they are judged again
            for rid in list(cache.verdicts)[:4]:
                cache.verdicts.pop(rid)
            return landmarks.for_runs(fr, manifests, cache=cache)

        live = timed(four_new, a.repeat)
        wt = timed(lambda: wall.over_wall_time(panel[2], fr, manifests), a.repeat)
    print(f"{a.runs} runs × {a.rows:,} rows, {a.repeat} repeats, load {os.getloadavg()[0]:.1f} "
          f"({os.cpu_count()} cores)")
    print(f"{'':32}{'median ms':>10}{'max ms':>10}{'× panel':>9}")
    for name, (med, mx, _) in (("one panel's series (baseline)", panel), ("landmarks, every run judged", lm),
                                ("landmarks, 4 runs with new rows", live), ("landmarks, no new rows", kept),
                                ("wall-time x of that panel", wt)):
        print(f"{name:32}{med:10.1f}{mx:10.1f}{med / panel[0]:9.2f}")
    print(f"landmarks: {len(lm[2].markers)} markers, {len(lm[2].verdicts)} verdict lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
