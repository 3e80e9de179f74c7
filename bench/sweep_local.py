"""The local engine warm (runs forked from a server that has imported torch and Lightning) against cold (a fresh
interpreter per run, PHENOMON_WARM=0): per-run start-up, and the default double-descent sweep as a user types it.

    python bench/sweep_local.py --runs DIR                    # tiny-run start-up (5 rounds), then the 39-run sweep
    python bench/sweep_local.py --runs DIR --modes warm       # the sweep warm only; --modes none: start-up only
    python bench/sweep_local.py --runs DIR --sweep-args "--preset quick"

Start-up: `phenomon run grokking` with p=23 and one training step (nearly all of it is start-up), launched through
`phenomon.launcher.launch` warm and cold, interleaved rounds, wall from the launch to the exit. Sweep:
`phenomon run double_descent --runs DIR/MODE` in a subprocess; wall time, and CPU seconds of every process it started
(this process is a child subreaper, so the fork server's runs are counted too). Then, from the runs' own durations, the
2-slot schedule in the sweep's order against longest (widest) first. Load averages are printed beside each figure.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TINY = ("--set", "p=23", "--set", "hidden=16", "--set", "d_embed=8", "--signals", "none")


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def reap() -> None:
    """Wait for every orphan handed to us (the fork server once its sweep has ended)."""
    while True:
        try:
            os.wait()
        except ChildProcessError:
            return


def startup(root: Path, rounds: int) -> None:
    from phenomon.launcher import RunSpec, launch

    spec = RunSpec("grokking", max_steps=1, root=root, extra=TINY)
    t0 = time.perf_counter()
    launch(spec, root / ".logs", warm=True).wait(600)  # the server's own start, paid once per sweep
    first = time.perf_counter() - t0
    cold, warm = [], []
    for _ in range(rounds):  # interleaved: the machine's load falls on both alike
        for mode, out in ((False, cold), (True, warm)):
            t0 = time.perf_counter()
            code = launch(spec, root / ".logs", warm=mode).wait(600)
            out.append(time.perf_counter() - t0)
            assert code == 0, f"tiny run ({'warm' if mode else 'cold'}) exited {code}; see {root / '.logs'}"
    mc, mw = statistics.median(cold), statistics.median(warm)
    print(f"one tiny run (1 step), {rounds} rounds: cold {mc:.2f} s (max {max(cold):.2f}), warm {mw:.2f} s "
          f"(max {max(warm):.2f}); cold/warm {mc / mw:.1f}x; first warm launch incl. the server's start "
          f"{first:.2f} s   [load {load()}]", flush=True)


def schedule(durations: list[float], slots: int = 2) -> float:
    """Makespan of list scheduling: each run starts when a slot frees, in the given order."""
    free = [0.0] * slots
    for d in durations:
        free.sort()
        free[0] += d
    return max(free)


def order_effect(root: Path) -> None:
    """The 2-slot schedule of these runs' own durations in the sweep's given order (seed, then width) and widest first,
    whichever order they actually ran in."""
    from phenomon import store

    runs = [r for r in store.list_runs(root) if r.state == "finished"]
    if len(runs) < 3:
        return
    key = [((r.manifest.get("seed") or 0), (r.manifest.get("config") or {}).get("width") or 0,
            (r.manifest.get("ended") or 0) - (r.manifest.get("started") or 0)) for r in runs]
    given = [d for _, _, d in sorted(key)]
    wide_first = [d for _, _, d in sorted(sorted(key), key=lambda t: -t[1])]
    a, b = schedule(given), schedule(wide_first)
    print(f"  from these runs' durations (sum {sum(given):.0f} s): 2 slots in the given order {a:.0f} s, widest first "
          f"{b:.0f} s ({b / a:.2f}x) — a schedule, not a measurement: contention is not modelled", flush=True)


def sweep(root: Path, mode: str, args: list[str]) -> None:
    env = {**os.environ, "PHENOMON_WARM": "1" if mode == "warm" else "0"}
    argv = [sys.executable, "-m", "phenomon", "run", "double_descent", *args, "--runs", str(root)]
    print(f"sweep {mode}: {' '.join(argv[2:])}   [load {load()}]", flush=True)
    c0, t0 = children_cpu(), time.perf_counter()
    out = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    reap()
    cpu = children_cpu() - c0
    tail = out.stdout.strip().splitlines()[-1:] or [""]
    print(f"sweep {mode}: {wall:.1f} s wall, {cpu:.0f} s CPU (all its processes), exit {out.returncode}   "
          f"[load {load()}]\n  {tail[0][:300]}", flush=True)
    if out.returncode != 0:
        print(out.stdout[-3000:], out.stderr[-3000:])
    order_effect(root)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", required=True, help="a directory for the runs (MODE/ and startup/ under it)")
    ap.add_argument("--modes", default="warm,cold", help="sweeps to run, in order: warm,cold (or none)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of the tiny-run start-up probe (0: skip)")
    ap.add_argument("--sweep-args", default="", help="extra `phenomon run double_descent` arguments")
    a = ap.parse_args()
    ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER: orphaned runs and servers are reaped (and counted) here
    base = Path(a.runs)
    print(f"load average at start: {load()} (2 shared cores: other work may run beside this)", flush=True)
    if a.rounds:
        from phenomon.engines import warm

        startup(base / "startup", a.rounds)
        warm.shutdown()
    for mode in [m for m in a.modes.split(",") if m in ("warm", "cold")]:
        sweep(base / mode, mode, shlex.split(a.sweep_args))
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
