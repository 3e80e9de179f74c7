"""Engines compared on this machine: a sweep's wall time with the local engine and with Ray, Ray's start-up, and the
cost of one tiny run in a cold local process against a warm Ray worker.

    python bench/engines.py                    # 4-run teacher double-descent sweep, 5 rounds of the per-run probe
    python bench/engines.py --seeds 0,1 --rounds 9

Sweep: `phenomon run double_descent --preset teacher --set widths=40,100,200,400 --set seeds=S --signals none`,
as a user types it, once per engine (Ray's figure includes starting Ray for the command, as a user pays it).
Per run: `phenomon run grokking` with p=23 and one training step (nearly all of it is start-up), in a fresh
`python -m phenomon` process vs as a task on an already-warm Ray worker; interleaved rounds, medians and maxima.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TINY = ["run", "grokking", "--set", "p=23", "--set", "hidden=16", "--set", "d_embed=8", "--max-steps", "1",
        "--signals", "none"]


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def sweep(root: Path, seeds: str, engine: list[str]) -> float:
    argv = [sys.executable, "-m", "phenomon", "run", "double_descent", "--preset", "teacher", "--set",
            "widths=40,100,200,400", "--set", f"seeds={seeds}", "--signals", "none", "--runs", str(root), *engine]
    t0 = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
    dt = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"sweep {' '.join(engine) or 'local'} failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    import ray

    from phenomon.engines.ray_engine import run_in_worker

    print(f"load average at start: {load()} (a shared machine: other work runs beside this)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n = 4 * len(a.seeds.split(","))
        t_local = sweep(tmp / "local", a.seeds, [])
        print(f"sweep of {n} runs, local engine (2 processes at once): {t_local:.1f} s   [load {load()}]")
        t_ray = sweep(tmp / "ray", a.seeds, ["--engine", "ray"])
        print(f"sweep of {n} runs, ray engine (local Ray, 1 CPU per run; Ray's start-up included): {t_ray:.1f} s"
              f"   ratio ray/local {t_ray / t_local:.2f}   [load {load()}]")

        t0 = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        startup = time.perf_counter() - t0
        print(f"Ray start-up (ray.init, num_cpus=2): {startup:.1f} s   [load {load()}]")
        task = ray.remote(num_cpus=1, max_retries=0)(run_in_worker)
        root = str(tmp / "probe")
        t0 = time.perf_counter()
        first = ray.get(task.remote([*TINY, "--runs", root]))
        cold_worker = time.perf_counter() - t0
        assert first["code"] == 0, first
        cold, warm = [], []
        for _ in range(a.rounds):  # interleaved: the machine's load falls on both alike
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, "-m", "phenomon", *TINY, "--runs", root], capture_output=True,
                               cwd=REPO)
            cold.append(time.perf_counter() - t0)
            assert p.returncode == 0, p.stderr[-2000:]
            t0 = time.perf_counter()
            r = ray.get(task.remote([*TINY, "--runs", root]))
            warm.append(time.perf_counter() - t0)
            assert r["code"] == 0, r
        ray.shutdown()
        mc, mw = statistics.median(cold), statistics.median(warm)
        print(f"one tiny run (1 step), {a.rounds} rounds: cold local process {mc:.2f} s (max {max(cold):.2f}), "
              f"warm Ray worker {mw:.2f} s (max {max(warm):.2f}); cold/warm {mc / mw:.1f}x; "
              f"a fresh Ray worker's first run {cold_worker:.2f} s")
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
