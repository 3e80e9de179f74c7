"""Per-step cost of RunStoreLogger against Lightning's CSVLogger, for a module that logs every step.

The loggers are interleaved in one process, round after round, on the same small model and data, so drift of a shared
machine hits them alike. A step is timed from one `on_train_batch_start` to the next, so it includes what Lightning
does with the logger after the batch (`log_metrics`, then `save()`). Printed per logger: the median over rounds of
the median ms/step (and of the mean, which carries the flushes), the largest single step, and the ratios to
CSVLogger. `flushing save()` is RunStoreLogger with
`save()` flushing on every call, as before issue 13, for reference.

    python bench/logger_overhead.py                 # 5 rounds of 300 steps
    python bench/logger_overhead.py --rounds 9 --steps 500
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytorch_lightning as L
import torch
from pytorch_lightning.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phenomon.callbacks.stream import RunStoreLogger  # noqa: E402
from phenomon.runner import quiet_lightning  # noqa: E402


class Every(L.LightningModule):
    """A small classifier that logs four values every step, one of them also per epoch, one on the progress bar."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.net(x)
        loss = nn.functional.cross_entropy(logits, y)
        acc = (logits.argmax(-1) == y).float().mean()
        self.log_dict({"train/loss": loss, "train/acc": acc}, on_step=True, on_epoch=True, prog_bar=True)
        self.log("train/logit_norm", logits.norm())
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


class StepClock(L.Callback):
    def __init__(self):
        self.times: list[float] = []
        self._t: float | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        now = time.perf_counter()
        if self._t is not None:
            self.times.append(now - self._t)
        self._t = now


class FlushingSave(RunStoreLogger):
    def save(self) -> None:
        if self._writer is not None:
            self._writer.flush()


def one(kind: str, steps: int, tmp: Path, loader: DataLoader) -> list[float]:
    torch.manual_seed(0)
    if kind == "CSVLogger":
        logger = CSVLogger(tmp / "csv")
    elif kind == "RunStoreLogger":
        logger = RunStoreLogger(tmp / "runs", name="bench")
    else:
        logger = FlushingSave(tmp / "runs", name="flush")
    clock = StepClock()
    trainer = L.Trainer(max_steps=steps, logger=logger, log_every_n_steps=1, callbacks=[clock],
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        accelerator="cpu", max_epochs=-1)
    trainer.fit(Every(), loader)
    return clock.times[5:]  # the first steps pay one-off costs (optimizer state, first writes)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--no-flushing", action="store_true", help="skip the flushing-save() reference")
    args = ap.parse_args()
    torch.set_num_threads(1)
    quiet_lightning()
    warnings.filterwarnings("ignore")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4096, 32, generator=g)
    loader = DataLoader(TensorDataset(x, torch.randint(0, 10, (4096,), generator=g)), batch_size=64, shuffle=True)
    kinds = ["CSVLogger", "RunStoreLogger"] + ([] if args.no_flushing else ["flushing save()"])
    med: dict[str, list[float]] = {k: [] for k in kinds}
    mean: dict[str, list[float]] = {k: [] for k in kinds}  # the mean carries the once-a-second flushes
    top: dict[str, float] = {k: 0.0 for k in kinds}
    with tempfile.TemporaryDirectory() as d:
        for r in range(args.rounds):
            order = kinds if r % 2 == 0 else kinds[::-1]  # neither always goes first
            for k in order:
                ts = one(k, args.steps, Path(d) / f"{k.split()[0]}{r}", loader)
                med[k].append(statistics.median(ts) * 1e3)
                mean[k].append(statistics.fmean(ts) * 1e3)
                top[k] = max(top[k], max(ts) * 1e3)
            print(f"round {r + 1}: " + "  ".join(f"{k} {med[k][-1]:.2f}" for k in kinds) + " ms/step", flush=True)
    base, base_mean = statistics.median(med["CSVLogger"]), statistics.median(mean["CSVLogger"])
    print(f"\n{args.rounds} rounds x {args.steps} steps, logging every step; median over rounds of median ms/step")
    for k in kinds:
        m = statistics.median(med[k])
        print(f"  {k:<16} median {m:6.2f} ms/step  (rounds {min(med[k]):.2f}-{max(med[k]):.2f})  "
              f"mean {statistics.median(mean[k]):6.2f}  max step {top[k]:6.1f} ms  "
              f"ratio {m / base:.3f} (of means {statistics.median(mean[k]) / base_mean:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
