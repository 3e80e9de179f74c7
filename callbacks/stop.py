"""Stop a fit once every watched metric has reached its bar (e.g. train ≥ 99% and test ≥ 95%): the rest of the
budget would only repeat a finished curve."""

from __future__ import annotations

import pytorch_lightning as L


class StopWhenReached(L.Callback):
    """After an evaluation, stop training when every `metric >= bar` in `bars` holds in the logged metrics."""

    def __init__(self, bars: dict[str, float]):
        if not bars:
            raise ValueError("StopWhenReached needs at least one metric and its bar, e.g. {'test/acc': 0.95}")
        for k, v in bars.items():
            if not isinstance(v, (int, float)):
                raise ValueError(f"bar for {k!r} must be a number, got {v!r}")
        self.bars = dict(bars)
        self.stopped_at: int | None = None

    def on_validation_end(self, trainer, pl_module) -> None:
        m = trainer.callback_metrics
        if all(k in m and float(m[k]) >= v for k, v in self.bars.items()):
            trainer.should_stop = True
            self.stopped_at = trainer.global_step
