"""Run one resolved configuration of a phenomenon headless: create the run, train, stream, record how it ended."""

from __future__ import annotations

import _thread
import functools
import logging
import os
import signal
import threading
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from phenomon import store
from phenomon.config import UsageError, check_accelerator, config_hash, to_dict
from phenomon.registry import Phenomenon, run_config_diff
from phenomon.session import Killed, RunOutput, Session


@dataclass
class RunOptions:
    root: Path = field(default_factory=store.default_root)
    accelerator: str = "auto"
    threads: int = 1
    group: str | None = None
    stream: TextIO | None = None  # where the progress bar goes (stdout by default)
    extra_callbacks: list = field(default_factory=list)
    label: str = ""
    signals: tuple[str, ...] | None = None  # None: every registered signal that applies; (): none
    launch_id: str | None = None  # the engine's id for this launch, in the manifest: how its launcher finds the run
    engine: str | None = None  # which engine ran it (local, ray), for the record
    invariance: bool = True  # save the final weights and check signals under ReLU rescalings (phenomon.invariance)


def quiet_lightning() -> None:
    """Lightning's banners and advice are noise in a headless run whose data loading is deliberate."""
    import pytorch_lightning  # noqa: F401 - its import sets its logger to INFO: import first, then quieten

    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*IterableDataset.*__len__.*")
    warnings.filterwarnings("ignore", message=".*val_check_interval.*")
    warnings.filterwarnings("ignore", message=".*log_every_n_steps.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    # a warning in a headless run is one line, not the warning plus the source line that raised it
    warnings.formatwarning = lambda message, category, *args, **kw: f"{message}\n"


@dataclass
class RunState:
    """What lives across a run's fits (pruning rounds): the null random walk, and the latest fit for the end-of-run
    invariance check."""

    walk: Any = None
    last_fit: tuple | None = None  # (module, datamodule, signal callback)


def lean_trainer(ph: Phenomenon, cfg, writer: store.RunWriter | None, opts: RunOptions, state: RunState,
                 max_steps: int,
                 eval_every: int, callbacks: tuple = (), signal_every: dict | None = None, label: str | None = None,
                 **kw: Any):
    """A lean Trainer: one long epoch, validation every `eval_every` steps, streaming and signals attached.

    `signal_every` overrides the signal schedule by cost class ({"cheap": N, "medium": N, "expensive": N});
    by default cheap signals run at every evaluation, medium every 50 steps, expensive every 250.
    """
    import pytorch_lightning as L

    from phenomon.callbacks.progress import ProgressLine
    from phenomon.callbacks.stream import RunStoreLogger

    callbacks = [ProgressLine(writer, max_steps, ph.headline, stream=opts.stream,
                              label=opts.label if label is None else label)] \
        + list(opts.extra_callbacks) + list(callbacks)
    if opts.signals != ():
        from phenomon.callbacks import signals as S
        from phenomon.callbacks.nulls import RandomWalk
        from phenomon.callbacks.signal_callback import SignalCallback

        names = S.DEFAULT if opts.signals is None else opts.signals
        every = {"cheap": eval_every, **(signal_every or {})}
        seed = getattr(cfg, "seed", 0)
        if state.walk is None:
            # seeded by the whole configuration, not the seed alone: the runs of a sweep share a seed and a step
            # count, and their walks must still differ from width to width to be a null along the width axis
            state.walk = RandomWalk(int(store.config_id(to_dict(cfg)), 16))
        callbacks.append(SignalCallback(names, phenomenon=ph.name, every=every, seed=seed, walk=state.walk))
    callbacks.append(_RememberFit(state))
    logger = RunStoreLogger(writer=writer, name=ph.name) if writer is not None else False
    return L.Trainer(
        accelerator=opts.accelerator, devices=1, max_steps=max_steps, max_epochs=-1,
        val_check_interval=eval_every, check_val_every_n_epoch=None, num_sanity_val_steps=0,
        logger=logger, callbacks=callbacks, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, log_every_n_steps=eval_every, **kw,
    )


def _RememberFit(state: RunState):
    """A callback that keeps the latest fit's module, data and signal callback for the end-of-run checks."""
    import pytorch_lightning as L

    class RememberFit(L.Callback):
        def on_fit_end(self, trainer, pl_module) -> None:
            from phenomon.callbacks.signal_callback import SignalCallback

            cb = next((c for c in trainer.callbacks if isinstance(c, SignalCallback)), None)
            state.last_fit = (pl_module, trainer.datamodule, cb)

    return RememberFit()


def session(ph: Phenomenon, cfg, writer: store.RunWriter | None, opts: RunOptions,
            state: RunState | None = None) -> Session:
    """What `ph.execute` gets: Trainers built for this run, and the run's writes (no-ops when `writer` is None)."""
    state = state if state is not None else RunState()
    return Session(trainer=functools.partial(lean_trainer, ph, cfg, writer, opts, state), out=RunOutput(writer),
                   label=opts.label)


def check_signals(names) -> None:
    if not names:
        return
    from phenomon.callbacks import signals as S

    unknown = [n for n in names if n not in S.SIGNALS]
    if unknown:
        raise UsageError(f"unknown signal(s) {', '.join(unknown)}; valid: {', '.join(sorted(S.SIGNALS))}")


def new_run_dir(ph: Phenomenon, cfg, root: Path) -> Path:
    """A new run directory named after the config, created exclusively (a racing run gets a `.2` suffix)."""
    return store.create_run_dir(root, f"{ph.name}-{config_hash(to_dict(cfg))}")


def prepare_root(root: Path) -> Path:
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create runs directory {root}: {e.strerror}") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise UsageError(f"runs directory {root} is not writable")
    return root


def run(ph: Phenomenon, cfg, opts: RunOptions, argv: list[str] | None = None) -> store.RunInfo:
    """Train `cfg` to the end (or until killed) and return the finished run's info."""
    import torch

    quiet_lightning()
    opts.accelerator = check_accelerator(opts.accelerator)
    if opts.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {opts.threads}")
    check_signals(opts.signals)
    torch.set_num_threads(opts.threads)
    root = prepare_root(opts.root)
    from pytorch_lightning.utilities import rank_zero_only

    if rank_zero_only.rank != 0:  # under DDP only global rank zero owns the run directory
        ph.execute(cfg, session(ph, cfg, None, opts))
        return None
    run_dir = new_run_dir(ph, cfg, root)
    rid = run_dir.name
    manifest = store.new_manifest(
        rid, ph.name, config=to_dict(cfg), config_hash=config_hash(to_dict(cfg)),
        toggles=ph.toggles_on(cfg), diff=_jsonable(run_config_diff(ph, cfg)), group=opts.group or ph.group_of(cfg),
        seed=getattr(cfg, "seed", None), argv=argv or [], accelerator=opts.accelerator, threads=opts.threads,
        signals=list(opts.signals) if opts.signals is not None else "default",
        progress={"step": 0, "max_steps": getattr(cfg, "max_steps", None)},
        **({"launch": opts.launch_id} if opts.launch_id else {}), **({"engine": opts.engine} if opts.engine else {}),
    )
    # a stop file or a write failure seen by the writer's thread: the training thread takes the SIGTERM path
    training = threading.Event()
    trainer_thread = threading.get_ident()

    def on_stop() -> None:
        if training.is_set():  # after training the run is ending anyway: no Killed outside the handler below
            _raise_in(trainer_thread, Killed)

    status, error, writer, restore = "finished", None, None, {}
    state = RunState()
    # from here on every way out records how the run ended: a run is never left `running` by its own process
    try:
        writer = store.RunWriter(run_dir, manifest, on_stop=on_stop)
        if opts.launch_id:
            store.record_launch(root, opts.launch_id, run_dir)
        restore = _install_handlers()
        opts.label = opts.label or rid
        training.set()
        ph.execute(cfg, session(ph, cfg, writer, opts, state))
        if opts.invariance:
            check_invariance(state, writer)
    except (Killed, KeyboardInterrupt):
        status, error = "killed", "stopped by request" if writer and writer.stop_requested else "stopped by signal"
    except SystemExit as e:  # Lightning exits after a graceful interrupt
        status, error = ("killed", "stopped by signal") if e.code else ("finished", None)
    except store.StoreWriteError as e:
        status, error = "failed", str(e)
    except Exception as e:  # noqa: BLE001 - the run's failure is data: record it, then report it
        status = "failed"
        error = f"{e.__class__.__name__}: {e}"
        if writer is not None:
            writer.update(traceback=traceback.format_exc()[-4000:])
    finally:
        training.clear()
        for sig, handler in restore.items():
            signal.signal(sig, handler)
    if writer is None:  # the writer itself could not start: record what can be, then say why
        _mark_unstarted(run_dir, manifest, status, error)
        raise store.StoreError(f"run {rid} could not start: {error}")
    if writer.failed is not None:  # writing failed for good (the writer's thread stopped the run): say why
        status, error = "failed", writer.failed
    writer.flush()  # the verdict reads the store: the last second's rows must be in it
    verdict = verdict_of(ph, cfg, writer.dir)
    writer.close(status, error, verdict=verdict.line, verdict_effect=verdict.effect,
                 verdict_numbers=_jsonable(verdict.numbers))
    return store.run_info(writer.dir)


def _install_handlers() -> dict:
    """SIGTERM raises Killed (the run flushes and ends killed); a file size limit is a write error to record (EFBIG),
    not a silent kill. Signal handlers exist only on the main thread: on any other thread (a Dask or thread-pool
    worker) none are installed and a stop arrives through the stop file alone. SIGINT's handler is put back too:
    Lightning sets it to ignored after an interrupt, which would leave a warm worker deaf to the next cancel.
    Returns the handlers to restore."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def on_term(signum, frame):  # noqa: ARG001
        raise Killed()

    prev = {signal.SIGTERM: signal.signal(signal.SIGTERM, on_term), signal.SIGINT: signal.getsignal(signal.SIGINT)}
    if hasattr(signal, "SIGXFSZ"):
        prev[signal.SIGXFSZ] = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return {k: v for k, v in prev.items() if v is not None}


def _raise_in(thread_id: int, exc: type[BaseException]) -> None:
    """Raise `exc` in the thread `thread_id` at its next bytecode: the SIGTERM path without a signal, so a run on any
    thread stops (a signal can only interrupt the main thread)."""
    if thread_id == threading.main_thread().ident:
        _thread.interrupt_main(signal.SIGTERM)
        return
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc))


def _mark_unstarted(run_dir: Path, manifest: dict, status: str, error: str | None) -> None:
    """A run whose writer failed to start: its manifest (when any was written) says failed, not running."""
    if not (Path(run_dir) / "run.json").exists():
        return
    try:
        store.atomic_write_json(Path(run_dir) / "run.json",
                                {**manifest, "status": "failed" if status == "finished" else status, "error": error,
                                 "ended": time.time()})
    except OSError:
        pass


def check_invariance(state: RunState, writer: store.RunWriter) -> None:
    """After the last fit (for lottery tickets: the final pruning round): `weights.pt` and `invariance.json`.

    Never fails the run: a model without a known rescaling, or any error, is one warning and a manifest field.
    """
    if writer is None or state.last_fit is None:
        return
    from phenomon import invariance

    module, dm, cb = state.last_fit
    signals = [s for s in cb.signals if s.name not in cb.dropped] if cb is not None else []
    rnd = (writer.manifest.get("round") or {}).get("round")
    try:
        invariance.after_run(writer.dir, module, dm, signals, cb.probe if cb is not None else None,
                             **({"round": rnd} if rnd is not None else {}))
    except Exception as e:  # noqa: BLE001 - a finished run stays finished
        warnings.warn(f"phenomon: invariance check skipped: {e.__class__.__name__}: {e}", UserWarning, stacklevel=2)
        writer.update(invariance_error=f"{e.__class__.__name__}: {e}")


def verdict_of(ph: Phenomenon, cfg, run_dir: Path):
    from phenomon.registry import Verdict

    try:
        return ph.criterion(store.wide(store.read_metrics(run_dir, problems=[])), cfg)
    except Exception as e:  # noqa: BLE001 - a verdict must never lose a run
        return Verdict(None, f"verdict unavailable ({e.__class__.__name__}: {e})")


def _jsonable(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, float) and v != v:
            v = None
        out[k] = list(v) if isinstance(v, tuple) else v
    return out
