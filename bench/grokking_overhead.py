"""Lightning and streaming overhead on the grokking run: plain loop vs Lightning (no streaming) vs Lightning + store.

The three are interleaved in one process, round after round, on the same data, network and evaluation schedule
(train and test evaluated every `eval_every` steps). Printed: median ms/step of each over the rounds, in steady state
(from the first step's start to the last step's end, excluding Trainer construction) and in total, and the ratios.

    python bench/grokking_overhead.py                       # the default MLP configuration
    python bench/grokking_overhead.py --model transformer --train-fraction 0.3
    python bench/grokking_overhead.py --preset nanda --accelerator gpu --steps 7000   # bench/gpu.sh runs this
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as L
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phenomon.callbacks.stream import RunStoreLogger  # noqa: E402
from phenomon.datamodules.modular import ModularDataModule  # noqa: E402
from phenomon.models.grokking import GrokkingModule, build_network  # noqa: E402
from phenomon import store  # noqa: E402
from phenomon.runner import quiet_lightning  # noqa: E402


def sync(device: torch.device) -> None:
    """Wait for the device's queued work: a GPU clock read without it measures only the launches."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Clock(L.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 0:
            sync(pl_module.device)
            self.t0 = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        sync(pl_module.device)
        self.t1 = time.perf_counter()


def make(args, seed=0):
    torch.manual_seed(seed)
    dm = ModularDataModule(args.p, "+", args.train_fraction, seed=seed)
    net = build_network(args.model, args.p)
    return dm, net


def device_of(args) -> torch.device:
    return torch.device("cuda" if args.accelerator == "gpu" else "cpu")


def plain(args) -> tuple[float, float]:
    t_start = time.perf_counter()
    dev = device_of(args)
    dm, net = make(args)
    net = net.to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=1.0)
    (xtr, ytr), (xte, yte) = ((x.to(dev), y.to(dev)) for x, y in (dm.train, dm.test))
    sync(dev)
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        net.train()
        loss = F.cross_entropy(net(xtr), ytr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % args.eval_every == 0:
            net.eval()
            with torch.no_grad():
                for x, y in ((xtr, ytr), (xte, yte)):
                    logits = net(x)
                    _ = (F.cross_entropy(logits, y).item(), (logits.argmax(-1) == y).float().mean().item())
    sync(dev)
    t1 = time.perf_counter()
    return (t1 - t0) / args.steps * 1e3, (t1 - t_start) / args.steps * 1e3


def lightning(args, stream: bool, root: Path) -> tuple[float, float]:
    t_start = time.perf_counter()
    dm, net = make(args)
    module = GrokkingModule(net, args.p, lr=args.lr)
    clock = Clock()
    logger = False
    if stream:
        rid = f"bench-{time.perf_counter_ns()}"
        writer = store.RunWriter(root / rid, store.new_manifest(rid, "grokking"))
        logger = RunStoreLogger(writer=writer)
    trainer = L.Trainer(accelerator=args.accelerator, devices=1, max_steps=args.steps, max_epochs=-1,
                        val_check_interval=args.eval_every, check_val_every_n_epoch=None, num_sanity_val_steps=0,
                        logger=logger, callbacks=[clock], enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False, log_every_n_steps=args.eval_every)
    trainer.fit(module, datamodule=dm)
    if stream:
        writer.close("finished")
    t_end = time.perf_counter()
    return (clock.t1 - clock.t0) / args.steps * 1e3, (t_end - t_start) / args.steps * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mlp", choices=("mlp", "transformer"))
    ap.add_argument("--p", type=int, default=97)
    ap.add_argument("--train-fraction", type=float, default=0.5)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--eval-every", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--accelerator", default="cpu", choices=("cpu", "gpu"))
    ap.add_argument("--preset", choices=("nanda",), help="nanda: transformer, p=113, 30%% train, lr 1e-3, eval every 50")
    args = ap.parse_args()
    if args.preset == "nanda":  # phenomon's `--preset nanda` (phenomon/phenomena/grokking.py)
        args.model, args.p, args.train_fraction, args.lr, args.eval_every = "transformer", 113, 0.3, 1e-3, 50
    if args.accelerator == "gpu" and not torch.cuda.is_available():
        raise SystemExit("--accelerator gpu: torch sees no CUDA device")
    torch.set_num_threads(args.threads)
    quiet_lightning()
    res: dict[str, list[tuple[float, float]]] = {"plain": [], "lightning": [], "streaming": []}
    with tempfile.TemporaryDirectory() as tmp:
        lightning(args, True, Path(tmp))  # warm-up: imports, allocator, first-fit costs
        for r in range(args.rounds):
            res["plain"].append(plain(args))
            res["lightning"].append(lightning(args, False, Path(tmp)))
            res["streaming"].append(lightning(args, True, Path(tmp)))
            print(f"round {r + 1}/{args.rounds}: " + "  ".join(f"{k} {v[-1][0]:.2f}" for k, v in res.items()),
                  file=sys.stderr)
        rows = sum(store.read_metrics(r.dir).height for r in store.list_runs(Path(tmp)))
    med = {k: (statistics.median(a for a, _ in v), statistics.median(b for _, b in v)) for k, v in res.items()}
    print(f"grokking {args.model} p={args.p} frac={args.train_fraction} lr={args.lr} on {args.accelerator}: "
          f"{args.steps} steps, eval every {args.eval_every}, {args.rounds} interleaved rounds, {args.threads} "
          f"thread(s); {rows} rows streamed")
    print(f"{'':<12}{'steady ms/step':>16}{'total ms/step':>16}")
    for k, (a, b) in med.items():
        print(f"{k:<12}{a:>16.2f}{b:>16.2f}")
    print(f"lightning / plain      {med['lightning'][0] / med['plain'][0]:.3f}  (target <= 1.15; total "
          f"{med['lightning'][1] / med['plain'][1]:.3f})")
    print(f"streaming / lightning  {med['streaming'][0] / med['lightning'][0]:.3f}  (target <= 1.05; total "
          f"{med['streaming'][1] / med['lightning'][1]:.3f})")


if __name__ == "__main__":
    main()
