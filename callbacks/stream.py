"""A Lightning Logger that streams everything logged with `self.log` into the phenomon run store.

A Logger rather than a callback: Lightning hands a logger every value any module logs, already reduced, whatever the
module is; a callback would have to reach into `trainer.callback_metrics` and guess when values are fresh. Writing
happens on global rank zero only.

Rows are stamped with the optimiser steps taken (`trainer.global_step`), not with the step Lightning passes: that
one counts batches stepped and lags by one during validation (an evaluation after 10 steps would read 9).
"""

from __future__ import annotations

import socket
import time
import weakref
from argparse import Namespace
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import Logger
from pytorch_lightning.utilities import rank_zero_only

from phenomon import store


class RunStoreLogger(Logger):
    """Stream metrics into a run directory; rows are buffered and flushed about once a second and at the end.

    Give it a `RunWriter` (phenomon's runner does; it then owns the run's status), or a runs `root` and a `name`,
    in which case the logger creates the run itself and closes it when training ends.
    """

    def __init__(self, root: str | Path | None = None, name: str = "custom", *, writer: store.RunWriter | None = None):
        super().__init__()
        if not store.safe_name(name):  # it names a directory under `root`: one plain path component, nothing else
            raise ValueError(f"RunStoreLogger name {name!r} must be letters, digits and _.+=@- "
                             "(no path, no leading dot)")
        self._name = name
        self._root = Path(root) if root is not None else store.default_root()
        self._writer = writer
        self._owns = writer is None
        self._hparams: dict[str, Any] = {}
        self._trainer: weakref.ref | None = None  # the trainer of the module being run, once Lightning shows it

    @property
    def name(self) -> str:
        return self._name

    @property
    def version(self) -> str:
        return self.writer.manifest["id"] if self.writer is not None else ""

    @property
    def root_dir(self) -> str:
        return str(self._root)

    @property
    def writer(self) -> store.RunWriter | None:
        if self._writer is None and rank_zero_only.rank == 0:
            rid = f"{self._name}-{time.strftime('%Y%m%d-%H%M%S')}-{socket.gethostname()[:8]}"
            run_dir = self._root / rid
            n = 2
            while run_dir.exists():
                run_dir = self._root / f"{rid}.{n}"
                n += 1
            self._root.mkdir(parents=True, exist_ok=True)
            m = store.new_manifest(run_dir.name, self._name, config=self._hparams)
            self._writer = store.RunWriter(run_dir, m)
        return self._writer

    @property
    def experiment(self) -> store.RunWriter | None:
        return self.writer

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        if isinstance(params, Namespace):
            params = vars(params)
        self._hparams = {k: v if isinstance(v, (int, float, str, bool, type(None))) else str(v)
                         for k, v in dict(params or {}).items()}
        if self._owns and self.writer is not None:
            self.writer.update(config=self._hparams)

    def log_graph(self, model: Any, input_array: Any = None) -> None:
        # Lightning hands every logger the module at the start of each fit, validate and test: keep its trainer,
        # whose global_step stamps the rows (weakly: the logger must not keep a finished run's trainer alive)
        try:
            trainer = model.trainer
        except (AttributeError, RuntimeError):  # a plain nn.Module, or a module not attached to a Trainer
            trainer = None
        self._trainer = weakref.ref(trainer) if trainer is not None else None

    def steps_taken(self, step: int | None = None) -> int:
        """The optimiser steps the trainer has taken; `step` (Lightning's) when no trainer is known."""
        trainer = self._trainer() if self._trainer is not None else None
        return int(trainer.global_step) if trainer is not None else int(step or 0)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        w = self.writer
        if w is None:
            return
        metrics = dict(metrics)
        epoch = metrics.pop("epoch", None)
        w.log(metrics, step=self.steps_taken(step), epoch=None if epoch is None else int(epoch))

    @rank_zero_only
    def save(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._writer is None:
            return
        if self._owns:
            self._writer.close("finished" if status in ("success", "finished") else "failed")
        else:
            self._writer.flush()
