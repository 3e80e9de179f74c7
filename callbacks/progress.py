"""Headless progress: one updating terminal line with the headline metrics, and the run's progress in its manifest."""

from __future__ import annotations

import sys
import time
from typing import TextIO

import pytorch_lightning as L

from phenomon import store


class ProgressLine(L.Callback):
    """Keeps `progress` in the manifest current; draws a bar on a terminal (nothing when output is not one)."""

    def __init__(self, writer: store.RunWriter | None, max_steps: int, headline: tuple[str, ...] = (),
                 stream: TextIO | None = None, label: str = "", every_s: float = 0.25):
        if max_steps <= 0:
            raise ValueError(f"max_steps must be positive, got {max_steps}")
        self.writer, self.max_steps, self.headline = writer, max_steps, headline
        self.stream = stream if stream is not None else sys.stdout
        self.tty = self.stream.isatty()
        self.label, self.every_s = label, every_s
        self._last = 0.0
        self._t0 = time.time()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        now = time.time()
        if now - self._last < self.every_s and step < self.max_steps:
            return
        self._last = now
        if self.writer is not None:
            self.writer.manifest["progress"] = {"step": step, "max_steps": self.max_steps}
        if self.tty:
            self.stream.write("\r" + self.render(step, now) + "\033[K")
            self.stream.flush()

    def render(self, step: int, now: float) -> str:
        frac = min(1.0, step / self.max_steps)
        bar = "█" * int(frac * 24) + "░" * (24 - int(frac * 24))
        latest = self.writer._latest if self.writer is not None else {}
        vals = store.headline(latest, self.headline) if self.headline else ""  # the format `ls` and the monitor use
        rate = step / max(1e-9, now - self._t0)
        return f"{self.label} {bar} {step}/{self.max_steps}  {vals}  {rate:.0f} it/s"

    def on_train_end(self, trainer, pl_module):
        if self.writer is not None:
            self.writer.manifest["progress"] = {"step": trainer.global_step, "max_steps": self.max_steps}
        if self.tty:
            self.stream.write("\r" + self.render(trainer.global_step, time.time()) + "\033[K\n")
            self.stream.flush()
