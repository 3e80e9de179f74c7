"""What one poll of a running sweep costs, before and after it read only its own runs.

Before (issue 14): every 0.5 s the sweep listed the whole runs root (`store.list_runs`: every manifest and heartbeat)
and matched its children by pid. After: each child reads its launch record once, then its own run directory only.
Measured interleaved in one process on a root of N runs (real manifests and heartbeats, as the store writes them),
for a sweep of `--children` runs (39: the default double-descent sweep); medians and maxima over the rounds.

    python bench/sweep_poll.py                         # N = 100, 1,000, 3,000
    python bench/sweep_poll.py --sizes 100 --rounds 50
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phenomon import store  # noqa: E402
from phenomon.launcher import RunSpec  # noqa: E402
from phenomon.sweep import Child  # noqa: E402


def make_root(root: Path, n: int, children: int) -> list[Child]:
    """N runs, the last `children` of them launched by our sweep (running, each with its launch record)."""
    ours = []
    for i in range(n):
        rid = f"double_descent-{i:06d}"
        child = Child(f"width {i}", RunSpec("double_descent")) if i >= n - children else None
        m = store.new_manifest(rid, "double_descent", config={"width": i}, seed=0,
                               status="running" if child else "finished",
                               **({"launch": child.launch_id} if child else {}))
        (root / rid).mkdir()
        store.atomic_write_json(root / rid / "run.json", m)
        (root / rid / "heartbeat").write_text(f"{time.time():.3f}\n")
        if child:
            store.record_launch(root, child.launch_id, root / rid)
            ours.append(child)
    return ours


def before(root: Path, children: list[Child]) -> None:
    by_pid = {r.manifest.get("pid"): r for r in store.list_runs(root)}
    for c in children:
        c.info = by_pid.get(c.launch_id, c.info)


def after(root: Path, children: list[Child]) -> None:
    for c in children:
        c.refresh(root)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,1000,3000")
    ap.add_argument("--children", type=int, default=39)
    ap.add_argument("--rounds", type=int, default=15)
    a = ap.parse_args()
    with open("/proc/loadavg") as fh:
        print(f"load average at start: {fh.read().split()[:3]} (a shared machine: other work runs beside this)")
    print(f"{'runs':>6} {'before ms (median/max)':>24} {'after ms (median/max)':>23} {'before/after':>13}")
    for n in (int(x) for x in a.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            children = make_root(root, n, min(a.children, n))
            after(root, children)  # the first poll finds the launch records
            assert all(c.info is not None and c.info.manifest["launch"] == c.launch_id for c in children)
            t = {"before": [], "after": []}
            for _ in range(a.rounds):  # interleaved: the machine's load falls on both alike
                for name, fn in (("before", before), ("after", after)):
                    t0 = time.perf_counter()
                    fn(root, children)
                    t[name].append((time.perf_counter() - t0) * 1e3)
            b, f = statistics.median(t["before"]), statistics.median(t["after"])
            print(f"{n:>6} {b:>15.1f} / {max(t['before']):>6.1f} {f:>14.1f} / {max(t['after']):>6.1f} {b / f:>12.1f}x")
    with open("/proc/loadavg") as fh:
        print(f"load average at end: {fh.read().split()[:3]}")


if __name__ == "__main__":
    main()
