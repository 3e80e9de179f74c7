"""What tracking the sharpness costs on the edge-of-stability testbed, warm-started against cold-started.

Trains the default model (MNIST-1D, MLP 40-200-200-10 tanh, MSE, gradient descent η = 0.1) for `--steps` steps in
plain torch, one process, and every `--every` steps measures the top Hessian eigenvalue of the full-batch loss three
ways: warm-started with `--iters` iterations (what the tracker does), cold-started with the same iterations, and
cold-started until converged (relative change < 1e-4, at most 200 iterations: the reference). Prints, per method,
the median and maximum time per measurement, the median and maximum relative error against the reference, and the
tracking cost as a share of training (measurement time / (training + measurement time)); ratios against the
cold start measured in the same run.

    python bench/eos_sharpness_cost.py                        # 1,500 steps, every 20, 5 iterations
    python bench/eos_sharpness_cost.py --steps 600 --iters 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phenomon import registry  # noqa: E402
from phenomon.callbacks.sharpness import top_eigenvalue  # noqa: E402
from phenomon.phenomena.edge_of_stability.training import build_module, datamodule  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--every", type=int, default=20)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--preset", default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    cfg = registry.get("edge_of_stability").resolve(a.preset)
    dm = datamodule(cfg)
    module = build_module(cfg)
    x, y = dm.train
    params = list(module.parameters())
    loss = lambda: module.loss_fn(module(x), y)  # noqa: E731
    opt = torch.optim.SGD(params, lr=cfg.eta)
    times = {"warm": [], "cold": [], "ref": []}
    errs = {"warm": [], "cold": []}
    lams = []
    v, train_s = None, 0.0
    for step in range(a.steps + 1):
        if step % a.every == 0:
            t0 = time.perf_counter()
            ref, _, _ = top_eigenvalue(loss, params, iters=200, tol=1e-4, seed=step + 1)
            t1 = time.perf_counter()
            cold, _, _ = top_eigenvalue(loss, params, iters=a.iters, tol=0.0, seed=step + 1)
            t2 = time.perf_counter()
            warm, v, _ = top_eigenvalue(loss, params, v0=v, iters=30 if v is None else a.iters, tol=0.0)
            t3 = time.perf_counter()
            times["ref"].append(t1 - t0)
            times["cold"].append(t2 - t1)
            if step:  # the first warm start is a cold start with more iterations
                times["warm"].append(t3 - t2)
                errs["warm"].append(abs(warm - ref) / abs(ref))
                errs["cold"].append(abs(cold - ref) / abs(ref))
            lams.append((step, ref))
        t0 = time.perf_counter()
        opt.zero_grad()
        loss().backward()
        opt.step()
        train_s += time.perf_counter() - t0
    n = len(times["warm"])
    print(f"edge_of_stability sharpness cost: {a.steps} steps of full-batch GD (n={cfg.train_size}, width "
          f"{cfg.width}), measured every {a.every} steps ({n} measurements), {a.iters} iterations; "
          f"training {1e3 * train_s / a.steps:.2f} ms/step")
    print(f"sharpness (reference) at steps {lams[0][0]}, {lams[len(lams) // 2][0]}, {lams[-1][0]}: "
          f"{lams[0][1]:.2f}, {lams[len(lams) // 2][1]:.2f}, {lams[-1][1]:.2f} (2/η = {2 / cfg.eta:.1f})")
    for k in ("warm", "cold", "ref"):
        t = times[k][1:] if k != "warm" else times[k]
        share = sum(t) * (a.steps / a.every / len(t)) / (train_s + sum(t) * (a.steps / a.every / len(t)))
        err = (f"rel. error median {statistics.median(errs[k]):.2e}, max {max(errs[k]):.2e}" if k in errs
               else "the reference")
        print(f"  {k:5s} {1e3 * statistics.median(t):8.1f} ms median, {1e3 * max(t):8.1f} ms max per measurement; "
              f"share of training time {share:.1%}; {err}")
    print(f"  ratio warm/cold time: median {statistics.median(times['warm']) / statistics.median(times['cold'][1:]):.2f}"
          f"; warm/reference: {statistics.median(times['warm']) / statistics.median(times['ref'][1:]):.2f}")


if __name__ == "__main__":
    main()
