"""A Lightning Logger that streams everything logged with `self.log` into the phenomon run store.

A Logger rather than a callback: Lightning hands a logger every value any module logs, already reduced, whatever the
module is; a callback would have to reach into `trainer.callback_metrics` and guess when values are fresh. Writing
happens on global rank zero only.

Rows are stamped with the optimiser steps taken (`trainer.global_step`), not with the step Lightning passes: that
one counts batches stepped and lags by one during validation (an evaluation after 10 steps would read 9).
"""

from __future__ import annotations

import atexit
import os
import socket
import sys
import time
import weakref
from argparse import Namespace
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import Logger
from pytorch_lightning.utilities import rank_zero_only

from phenomon import store
from phenomon.callbacks.run_fields import checkpoint_paths, jsonable, max_steps, outcome

_OPEN: weakref.WeakSet = weakref.WeakSet()  # writers this process still has open: flushed at exit


@atexit.register
def _flush_open_writers() -> None:  # a script that never finalizes still keeps its last second of rows
    for w in list(_OPEN):
        try:
            w.flush()
        except OSError:
            pass


class RunStoreLogger(Logger):
    """Stream metrics into a run directory; rows are buffered and flushed about once a second and at the end.

    Give it a `RunWriter` (phenomon's runner does; it then owns the run's status), or a runs directory `save_dir`
    (alias `root`, default ./runs or $PHENOMON_RUNS) and a `name`, in which case the logger creates the run itself.
    `version` names the run (its id): a run with that id is continued, its rows appended after the ones it has —
    what a requeued SLURM job wants. Without it the id is `<name>-<date>-<time>-<host>`.

    Like Lightning's own loggers, `log_dir` is the run directory, and so is `save_dir`: Lightning puts
    `trainer.log_dir` (LightningCLI's config.yaml, profiles) in `save_dir` for loggers other than its own, and the
    checkpoints it would put in `save_dir/name/version` go to `<run>/checkpoints`, their paths in the manifest.

    Status: each `fit`, `validate` or `test` that ends marks the run finished; a later stage in the same process
    (`fit` then `test`) writes into the same run, which is `running` again until that stage ends. An exception is
    `failed` with its error and traceback; Ctrl-C and SIGTERM are `killed`.
    """

    def __init__(self, save_dir: str | Path | None = None, name: str = "custom", version: str | int | None = None,
                 *, root: str | Path | None = None, writer: store.RunWriter | None = None):
        super().__init__()
        if save_dir is not None and root is not None and Path(save_dir) != Path(root):
            raise ValueError(f"save_dir and root are the same argument; got {save_dir!r} and {root!r}")
        if not store.safe_name(name):  # it names a directory under `root`: one plain path component, nothing else
            raise ValueError(f"RunStoreLogger name {name!r} must be letters, digits and _.+=@- "
                             "(no path, no leading dot)")
        self._name = name
        self._writer = writer
        self._owns = writer is None
        if writer is not None:
            self._root, self._id = writer.dir.parent, str(writer.manifest["id"])
        else:
            base = save_dir if save_dir is not None else root
            self._root = Path(base) if base is not None else store.default_root()
            self._id = _run_id(self._root, name, version)
        self._hparams: dict[str, Any] = {}
        self._trainer: weakref.ref | None = None  # the trainer of the module being run, once Lightning shows it
        self._max_steps: int | None = None

    # what Lightning asks a logger ------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def version(self) -> str:
        return self._id  # decided at construction: reading it never creates a run (the parent of ddp_spawn does)

    @property
    def root_dir(self) -> str:
        return str(self._root)

    @property
    def log_dir(self) -> str:
        return str(self._root / self._id)

    @property
    def save_dir(self) -> str:
        return self.log_dir

    @property
    def writer(self) -> store.RunWriter | None:
        if self._writer is None and rank_zero_only.rank == 0:
            self._open()
        return self._writer

    @property
    def experiment(self) -> store.RunWriter | None:
        return self.writer

    def _open(self) -> None:
        run_dir = self._root / self._id
        if (run_dir / "run.json").exists():  # version= of an existing run, or a later stage (fit, then test)
            info = store.run_info(run_dir)
            m = info.manifest
            if info.state == "running" and (m.get("pid"), m.get("host")) != (os.getpid(), socket.gethostname()):
                raise RuntimeError(f"run {self._id} is being written by pid {m.get('pid')} on {m.get('host')}; "
                                   "two processes cannot write one run (choose another version=)")
            m.update(status="running", pid=os.getpid(), host=socket.gethostname(), ended=None, error=None,
                     traceback=None, config={**(m.get("config") or {}), **self._hparams})
            if m.get("pid_started") != _PROCESS_STARTED:
                m["resumed"] = [*m.get("resumed", []), time.time()]
        else:
            self._root.mkdir(parents=True, exist_ok=True)
            m = store.new_manifest(self._id, self._name, config=self._hparams, foreign=True)
        m["pid_started"] = _PROCESS_STARTED
        self._writer = store.RunWriter(run_dir, m)
        _OPEN.add(self._writer)

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, metrics: dict | None = None,
                        **kwargs: Any) -> None:
        if isinstance(params, Namespace):
            params = vars(params)
        self._hparams.update(jsonable(dict(params or {})))
        if self._owns and self.writer is not None:
            self.writer.update(config={**(self.writer.manifest.get("config") or {}), **self._hparams})
        if metrics:  # as TensorBoardLogger does: the metrics the hyperparameters are judged by, at step 0
            self.log_metrics(dict(metrics), step=0)

    def log_graph(self, model: Any, input_array: Any = None) -> None:
        # Lightning hands every logger the module at the start of each fit, validate and test: keep its trainer,
        # whose global_step stamps the rows (weakly: the logger must not keep a finished run's trainer alive)
        try:
            trainer = model.trainer
        except (AttributeError, RuntimeError):  # a plain nn.Module, or a module not attached to a Trainer
            trainer = None
        self._trainer = weakref.ref(trainer) if trainer is not None else None
        if trainer is not None:
            if self._owns:  # under DDP each process named a run; rank 0's is the one written (every rank is here)
                self._id = trainer.strategy.broadcast(self._id)
            self._max_steps = max_steps(trainer) or self._max_steps
            self._checkpoints_into_run(trainer)

    def _checkpoints_into_run(self, trainer: Any) -> None:
        """Checkpoints Lightning would put under `save_dir/name/version` go to `<run>/checkpoints` instead."""
        if not trainer.loggers or trainer.loggers[0] is not self:
            return
        default = os.path.join(self.save_dir, str(self.name), self.version, "checkpoints")
        for cb in trainer.checkpoint_callbacks:
            if not hasattr(cb, "dirpath"):
                continue
            mine = os.path.join(self.log_dir, "checkpoints") if str(cb.dirpath) == default else cb.dirpath
            cb.dirpath = trainer.strategy.broadcast(mine)

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
        step = self.steps_taken(step)
        w.log(metrics, step=step, epoch=None if epoch is None else int(epoch))
        if self._owns:  # written with the next flush
            w.manifest["progress"] = {"step": step, "max_steps": self._max_steps}

    def save(self) -> None:
        # Lightning calls this after every log_metrics: the writer's thread flushes about once a second instead
        pass

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        if self._writer is not None and self._owns:
            self._writer.manifest["checkpoints"] = checkpoint_paths(self._root / self._id, checkpoint_callback)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._writer is None:
            return
        if not self._owns:
            self._writer.flush()
            return
        trainer = self._trainer() if self._trainer is not None else None
        fields: dict[str, Any] = {}
        if trainer is not None:
            fields["progress"] = {"step": int(trainer.global_step), "max_steps": self._max_steps}
        state, error, tb = outcome(status, sys.exc_info()[1])
        if tb is not None:
            fields["traceback"] = tb
        self._writer.close(state, error, **fields)
        _OPEN.discard(self._writer)
        self._writer = None  # a later stage reopens the same run

    def __getstate__(self) -> dict:
        # ddp_spawn pickles the logger into its workers: the writer (threads, locks) and the trainer stay here
        state = dict(self.__dict__)
        state["_writer"] = None if self._owns else state["_writer"]
        state["_trainer"] = None
        return state


_PROCESS_STARTED = f"{os.getpid()}@{time.time():.6f}"  # tells a later stage of this process from a resume
_NAMED: set[tuple[Path, str]] = set()  # run ids this process has handed out


def _run_id(root: Path, name: str, version: str | int | None) -> str:
    if version is not None:
        vid = f"{name}-version_{version}" if isinstance(version, int) else str(version)
        if not vid or "/" in vid or vid.startswith("."):
            raise ValueError(f"version must be a run id (a name without '/'), got {version!r}")
        return vid
    rid = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{socket.gethostname()[:8]}"
    out, n = rid, 2
    while (root / out).exists() or (root, out) in _NAMED:  # two loggers made in one second have not written yet
        out, n = f"{rid}.{n}", n + 1
    _NAMED.add((root, out))
    return out


def _known_to_lightning() -> None:
    """Under the unified `lightning` package its Logger is another class: register ours as a virtual subclass, so
    that LightningCLI (`--trainer.logger=phenomon.callbacks.RunStoreLogger`) accepts it. Only when `lightning` is
    already imported (LightningCLI imports it before resolving the class path): importing it here costs seconds."""
    mod = sys.modules.get("lightning.pytorch.loggers")
    if mod is not None:
        mod.Logger.register(RunStoreLogger)


_known_to_lightning()
