"""What the runner hands a phenomenon's `execute`: a Trainer factory and the few writes a phenomenon makes itself.

The runner builds one `Session` per run and passes it down; a phenomenon never imports the runner and never sees the
run writer or the command-line options. Off global rank zero (DDP) the writes are no-ops: rank zero owns the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from phenomon import store


class Killed(BaseException):
    """SIGTERM arrived (or a fit ended interrupted): stop training, flush, mark the run killed."""


class RunOutput:
    """A run's writes besides the rows its Lightning logger streams: the round, summary rows, files."""

    def __init__(self, writer: store.RunWriter | None):
        self._writer = writer  # None off global rank zero: every write is then a no-op

    def start_round(self, rnd: int, rounds: int) -> None:
        """Stamp the coming rows with `rnd`; the manifest says which round of how many (progress is per fit)."""
        if self._writer is not None:
            self._writer.set_round(rnd)
            self._writer.update(round={"round": rnd, "rounds": rounds})

    def log_summary(self, values: dict[str, float], step: int) -> None:
        """Rows computed after a fit (a round's accuracy, a run's reported point), stamped with `step`."""
        if self._writer is not None:
            self._writer.log(values, step=step)

    def save_file(self, name: str, data: bytes) -> None:
        """`data` under `name` inside the run directory (e.g. `masks/round_01.pt`), written atomically."""
        if self._writer is not None:
            path = store.confined(self._writer.dir, name)  # inside the run directory, whatever `name` says
            path.parent.mkdir(parents=True, exist_ok=True)
            store.atomic_write_bytes(path, data)


@dataclass(frozen=True)
class Session:
    """`trainer(max_steps, eval_every, *, callbacks=(), signal_every=None, label=None, **trainer_kw)` builds a lean
    Trainer (one long epoch, evaluation every `eval_every` steps, the run's logger, progress line and signals
    attached; `signal_every` overrides the signal schedule by cost class, `label` the progress line's name)."""

    trainer: Callable[..., Any]
    out: RunOutput
    label: str = ""  # the run's name on its progress line

    def fit(self, module, datamodule, max_steps: int, eval_every: int, **kw: Any):
        """Train `module` on `datamodule` with a fresh lean Trainer; Killed when the fit ended interrupted."""
        trainer = self.trainer(max_steps, eval_every, **kw)
        trainer.fit(module, datamodule=datamodule)
        if getattr(trainer, "interrupted", False):  # a Lightning that returns from a Ctrl-C instead of exiting
            raise Killed()
        return trainer
