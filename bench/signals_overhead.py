"""Overhead of the explanation signals on the default grokking run, and what each signal costs.

Runs the same configuration through phenomon's runner with signals off and with the default signal schedule,
interleaved round after round in one process; prints median wall time of the training (fit) of each, their ratio
(target <= 1.10) and the per-signal cost table (calls, mean ms per call, total seconds) from the run manifests.

    python bench/signals_overhead.py                   # default grokking run (1,500 steps), 3 rounds
    python bench/signals_overhead.py --steps 500 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as L

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phenomon import registry, runner  # noqa: E402


class FitClock(L.Callback):
    def on_train_start(self, trainer, pl_module):
        self.t0 = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        self.t1 = time.perf_counter()


def one(cfg, root: Path, signals) -> tuple[float, dict]:
    clock = FitClock()
    ph = registry.get("grokking")
    info = runner.run(ph, cfg, runner.RunOptions(root=root, accelerator="cpu", signals=signals,
                                                 extra_callbacks=[clock]))
    assert info.state == "finished", info.manifest.get("error")
    return clock.t1 - clock.t0, info.manifest.get("signal_costs") or {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=None, help="default: the phenomenon's max_steps")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    ph = registry.get("grokking")
    cfg = ph.resolve(sets=[f"max_steps={args.steps}"] if args.steps else [])
    off, on, costs = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            t_off, _ = one(cfg, Path(tmp), ())
            t_on, c = one(cfg, Path(tmp), None)
            off.append(t_off)
            on.append(t_on)
            costs.append(c)
            print(f"round {r + 1}/{args.rounds}: off {t_off:.1f} s  on {t_on:.1f} s", file=sys.stderr)
    m_off, m_on = statistics.median(off), statistics.median(on)
    print(f"grokking default ({cfg.model}, p={cfg.p}, {cfg.max_steps} steps), {args.rounds} interleaved rounds")
    print(f"fit time without signals  {m_off:8.1f} s  ({1e3 * m_off / cfg.max_steps:.1f} ms/step)")
    print(f"fit time with signals     {m_on:8.1f} s  ({1e3 * m_on / cfg.max_steps:.1f} ms/step)")
    print(f"ratio                     {m_on / m_off:8.3f}  (target <= 1.10)")
    print(f"\n{'signal':<20}{'cost':>10}{'calls':>8}{'mean ms':>10}{'total s':>10}{'share':>8}")
    from phenomon.callbacks import signals as S

    names = sorted(costs[0], key=lambda k: -statistics.median(c[k]["total_s"] for c in costs))
    for n in names:
        calls = costs[0][n]["calls"]
        mean_ms = statistics.median(c[n]["mean_ms"] for c in costs)
        total = statistics.median(c[n]["total_s"] for c in costs)
        print(f"{n:<20}{S.SIGNALS[n].cost:>10}{calls:>8}{mean_ms:>10.1f}{total:>10.2f}{total / m_off:>8.1%}")


if __name__ == "__main__":
    main()
