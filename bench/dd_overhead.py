"""A double-descent run against the plain PyTorch loop of the same recipe, interleaved in one process.

`plain`: data, MLP, SGD + momentum and the minibatch order of `phenomon run double_descent --set width=W`, written as
a bare loop (evaluation of train, test and validation loss and error every `eval_every` epochs, as the run does).
`phenomon`: that run itself, in-process through the runner (Lightning, the run store, the signals, the invariance
check and the verdict), into a temporary runs root. The two alternate, round after round, width after width, so
the load of a shared machine falls on both alike. Printed per width: the median and maximum over rounds of the
phenomon/plain ratio, in wall time and in CPU time of this process (CPU time is what a busy machine distorts
least), and the load average before and after.

    python bench/dd_overhead.py                         # widths 16, 64, 384; the full recipe (500 epochs); 3 rounds
    python bench/dd_overhead.py --epochs 100 --rounds 5 # shorter runs, more rounds
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from phenomon import registry, runner
from phenomon.models.double_descent import sgd_epoch
from phenomon.phenomena.double_descent.training import build_module, datamodule

TARGET = 1.15


def plain(cfg, dev: torch.device, analytic: bool = False) -> tuple[float, float]:
    """The recipe as a bare loop; (wall s, CPU s) from building the data to the last evaluation. `analytic`: each
    epoch's minibatches through `sgd_epoch`, the step the run itself takes (the same updates without autograd)."""
    w0, c0 = time.perf_counter(), time.process_time()
    dm = datamodule(cfg)
    net = build_module(cfg, dm.train[0], dm.num_classes).net.to(dev)  # the same seeded init as the run's
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    splits = [(sx.to(dev), sy.to(dev)) for sx, sy in [dm.train, dm.test] + ([dm.val] if dm.val is not None else [])]
    (x, y), B = splits[0], cfg.batch_size
    g = torch.Generator().manual_seed(cfg.seed)  # the datamodule's minibatch order
    steps = len(y) // B
    for epoch in range(1, cfg.epochs + 1):
        perm = torch.randperm(len(y), generator=g, device="cpu").to(dev)
        if analytic:
            idx = perm[: steps * B].view(steps, B)
            sgd_epoch(net, opt, x[idx], y[idx], dm.num_classes)
        else:
            for i in range(steps):
                idx = perm[i * B:(i + 1) * B]
                loss = F.cross_entropy(net(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        if epoch % cfg.eval_every == 0:
            with torch.no_grad():
                for sx, sy in splits:
                    logits = net(sx)
                    _ = F.cross_entropy(logits, sy).item(), (logits.argmax(1) != sy).float().mean().item()
    return time.perf_counter() - w0, time.process_time() - c0


def phenomon_run(cfg, root: Path, accelerator: str) -> tuple[float, float]:
    """The real run, in-process; (wall s, CPU s) of `runner.run`."""
    ph = registry.get("double_descent")
    w0, c0 = time.perf_counter(), time.process_time()
    info = runner.run(ph, cfg, runner.RunOptions(root=root, threads=1, stream=io.StringIO(), accelerator=accelerator))
    dt = time.perf_counter() - w0, time.process_time() - c0
    if info.state != "finished":
        raise SystemExit(f"run {info.id} ended {info.state}: {info.manifest.get('error')}")
    return dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", default="16,64,384")
    ap.add_argument("--epochs", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--accelerator", default="cpu", choices=("cpu", "gpu"))
    a = ap.parse_args()
    if a.accelerator == "gpu" and not torch.cuda.is_available():
        raise SystemExit("--accelerator gpu: torch sees no CUDA device")
    dev = torch.device("cuda" if a.accelerator == "gpu" else "cpu")
    torch.set_num_threads(1)
    runner.quiet_lightning()
    ph = registry.get("double_descent")
    widths = [int(w) for w in a.widths.split(",")]
    cfgs = {w: dataclasses.replace(ph.defaults(), width=w, epochs=a.epochs) for w in widths}
    load0 = os.getloadavg()
    res: dict[int, dict[str, list[tuple[float, float]]]] = {w: {"plain": [], "analytic": [], "phenomon": []}
                                                             for w in widths}
    with tempfile.TemporaryDirectory() as tmp:
        small = dataclasses.replace(cfgs[widths[0]], epochs=20)
        plain(small, dev), phenomon_run(small, Path(tmp), a.accelerator)  # warm-up: imports, data cache, first-fit costs
        for r in range(a.rounds):
            for w in widths:
                res[w]["plain"].append(plain(cfgs[w], dev))
                res[w]["analytic"].append(plain(cfgs[w], dev, analytic=True))
                res[w]["phenomon"].append(phenomon_run(cfgs[w], Path(tmp), a.accelerator))
                p, n, q = res[w]["plain"][-1], res[w]["analytic"][-1], res[w]["phenomon"][-1]
                print(f"round {r + 1}/{a.rounds} width {w}: plain {p[0]:.1f} s ({p[1]:.1f} CPU), plain with the "
                      f"run's step {n[0]:.1f} s ({n[1]:.1f} CPU), phenomon {q[0]:.1f} s ({q[1]:.1f} CPU)",
                      file=sys.stderr, flush=True)
    load1 = os.getloadavg()
    steps = a.epochs * ph.defaults().steps_per_epoch
    print(f"double descent on {a.accelerator}, {a.epochs} epochs ({steps} steps), {a.rounds} interleaved rounds, 1 thread; "
          f"load average {load0[0]:.2f} before, {load1[0]:.2f} after ({os.cpu_count()} cores)")
    print("plain: the recipe's loop with autograd and torch's SGD; same step: that loop with the run's own analytic "
          "step (sgd_epoch), so phenomon / same step is the cost of Lightning, the store and the signals")
    print(f"{'width':>6}{'plain s':>10}{'same step s':>13}{'phenomon s':>12}{'ratio med':>11}{'max':>7}"
          f"{'CPU ratio med':>15}{'max':>7}{'vs same step':>14}{'max':>7}")
    worst = 0.0
    for w in widths:
        p, n, q = res[w]["plain"], res[w]["analytic"], res[w]["phenomon"]
        wall = [b[0] / a_[0] for a_, b in zip(p, q)]
        cpu = [b[1] / a_[1] for a_, b in zip(p, q)]
        own = [b[1] / a_[1] for a_, b in zip(n, q)]
        worst = max(worst, statistics.median(cpu))
        print(f"{w:>6}{statistics.median(x[0] for x in p):>10.2f}{statistics.median(x[0] for x in n):>13.2f}"
              f"{statistics.median(x[0] for x in q):>12.2f}{statistics.median(wall):>11.3f}{max(wall):>7.3f}"
              f"{statistics.median(cpu):>15.3f}{max(cpu):>7.3f}{statistics.median(own):>14.3f}{max(own):>7.3f}")
    print(f"target: phenomon / plain <= {TARGET} at every width (median CPU ratio): "
          f"{'met' if worst <= TARGET else 'NOT met'} (worst {worst:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
