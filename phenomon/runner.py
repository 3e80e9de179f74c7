"""Run one resolved configuration of a phenomenon headless: create the run, train, stream, record how it ended."""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from phenomon import store
from phenomon.config import UsageError, config_hash, to_dict
from phenomon.registry import Phenomenon, run_config_diff


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
    invariance: bool = True  # save the final weights and check signals under ReLU rescalings (phenomon.invariance)


class Killed(BaseException):
    """SIGTERM arrived: stop training, flush, mark the run killed."""


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


def resolve_accelerator(name: str) -> str:
    if name not in ("auto", "cpu", "gpu"):
        raise UsageError(f"unknown accelerator {name!r}; valid: auto, cpu, gpu")
    if name == "gpu":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--accelerator gpu: no CUDA device is available here (use auto or cpu)")
    return name


class RunContext:
    """What a phenomenon's `execute` gets: the writer and a lean way to fit a Lightning module."""

    def __init__(self, ph: Phenomenon, cfg, writer: store.RunWriter | None, opts: RunOptions):
        self.ph, self.cfg, self.writer, self.opts = ph, cfg, writer, opts
        self.walk = None  # the null random walk: one per run, continued across fits (pruning rounds)
        self.last_fit = None  # (module, datamodule, signal callback) of the latest fit: the end-of-run checks use it

    def trainer(self, max_steps: int, eval_every: int, callbacks: tuple = (), signal_every: dict | None = None,
                **kw: Any):
        """A lean Trainer: one long epoch, validation every `eval_every` steps, streaming and signals attached.

        `signal_every` overrides the signal schedule by cost class ({"cheap": N, "medium": N, "expensive": N});
        by default cheap signals run at every evaluation, medium every 50 steps, expensive every 250.
        """
        import pytorch_lightning as L

        from phenomon.callbacks.progress import ProgressLine
        from phenomon.callbacks.stream import RunStoreLogger

        callbacks = [ProgressLine(self.writer, max_steps, self.ph.headline, stream=self.opts.stream,
                                  label=self.opts.label)] + list(self.opts.extra_callbacks) + list(callbacks)
        if self.opts.signals != ():
            from phenomon.callbacks import signals as S
            from phenomon.callbacks.nulls import RandomWalk
            from phenomon.callbacks.signal_callback import SignalCallback

            names = S.DEFAULT if self.opts.signals is None else self.opts.signals
            every = {"cheap": eval_every, **(signal_every or {})}
            seed = getattr(self.cfg, "seed", 0)
            if self.walk is None:
                self.walk = RandomWalk(seed)
            callbacks.append(SignalCallback(names, phenomenon=self.ph.name, every=every, seed=seed, walk=self.walk))
        logger = RunStoreLogger(writer=self.writer, name=self.ph.name) if self.writer is not None else False
        return L.Trainer(
            accelerator=self.opts.accelerator, devices=1, max_steps=max_steps, max_epochs=-1,
            val_check_interval=eval_every, check_val_every_n_epoch=None, num_sanity_val_steps=0,
            logger=logger, callbacks=callbacks, enable_progress_bar=False, enable_model_summary=False,
            enable_checkpointing=False, log_every_n_steps=eval_every, **kw,
        )

    def fit(self, module, datamodule, max_steps: int, eval_every: int, callbacks: tuple = (),
            signal_every: dict | None = None, **kw: Any):
        trainer = self.trainer(max_steps, eval_every, callbacks=callbacks, signal_every=signal_every, **kw)
        trainer.fit(module, datamodule=datamodule)
        if getattr(trainer, "interrupted", False):
            raise Killed()
        from phenomon.callbacks.signal_callback import SignalCallback

        cb = next((c for c in trainer.callbacks if isinstance(c, SignalCallback)), None)
        self.last_fit = (module, datamodule, cb)
        return trainer


def check_signals(names) -> None:
    if not names:
        return
    from phenomon.callbacks import signals as S

    unknown = [n for n in names if n not in S.SIGNALS]
    if unknown:
        raise UsageError(f"unknown signal(s) {', '.join(unknown)}; valid: {', '.join(sorted(S.SIGNALS))}")


def new_run_id(ph: Phenomenon, cfg, root: Path) -> str:
    base = f"{ph.name}-{config_hash(to_dict(cfg))}"
    rid, n = base, 2
    while (root / rid).exists():
        rid, n = f"{base}.{n}", n + 1
    return rid


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
    opts.accelerator = resolve_accelerator(opts.accelerator)
    if opts.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {opts.threads}")
    check_signals(opts.signals)
    torch.set_num_threads(opts.threads)
    root = prepare_root(opts.root)
    from pytorch_lightning.utilities import rank_zero_only

    if rank_zero_only.rank != 0:  # under DDP only global rank zero owns the run directory
        ph.execute(cfg, RunContext(ph, cfg, None, opts))
        return None
    rid = new_run_id(ph, cfg, root)
    manifest = store.new_manifest(
        rid, ph.name, config=to_dict(cfg), config_hash=config_hash(to_dict(cfg)),
        toggles=ph.toggles_on(cfg), diff=_jsonable(run_config_diff(ph, cfg)), group=opts.group or ph.group_of(cfg),
        seed=getattr(cfg, "seed", None), argv=argv or [], accelerator=opts.accelerator, threads=opts.threads,
        signals=list(opts.signals) if opts.signals is not None else "default",
        progress={"step": 0, "max_steps": getattr(cfg, "max_steps", None)},
    )
    writer = store.RunWriter(root / rid, manifest)
    opts.label = opts.label or rid
    prev = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):  # noqa: ARG001
        raise Killed()

    signal.signal(signal.SIGTERM, on_term)
    status, error = "finished", None
    ctx = RunContext(ph, cfg, writer, opts)
    try:
        ph.execute(cfg, ctx)
        if opts.invariance:
            check_invariance(ctx)
    except (Killed, KeyboardInterrupt):
        status, error = "killed", "stopped by signal"
    except SystemExit as e:  # Lightning exits after a graceful interrupt
        status, error = ("killed", "stopped by signal") if e.code else ("finished", None)
    except Exception as e:  # noqa: BLE001 - the run's failure is data: record it, then report it
        status = "failed"
        error = f"{e.__class__.__name__}: {e}"
        writer.update(traceback=traceback.format_exc()[-4000:])
    finally:
        signal.signal(signal.SIGTERM, prev)
    writer.flush()  # the verdict reads the store: the last second's rows must be in it
    verdict = verdict_of(ph, cfg, writer.dir)
    writer.close(status, error, verdict=verdict.line, verdict_effect=verdict.effect,
                 verdict_numbers=_jsonable(verdict.numbers))
    return store.run_info(writer.dir)


def check_invariance(ctx: RunContext) -> None:
    """After the last fit (for lottery tickets: the final pruning round): `weights.pt` and `invariance.json`.

    Never fails the run: a model without a known rescaling, or any error, is one warning and a manifest field.
    """
    if ctx.writer is None or ctx.last_fit is None:
        return
    from phenomon import invariance

    module, dm, cb = ctx.last_fit
    signals = [s for s in cb.signals if s.name not in cb.dropped] if cb is not None else []
    rnd = (ctx.writer.manifest.get("round") or {}).get("round")
    try:
        invariance.after_run(ctx.writer.dir, module, dm, signals, cb.probe if cb is not None else None,
                             **({"round": rnd} if rnd is not None else {}))
    except Exception as e:  # noqa: BLE001 - a finished run stays finished
        warnings.warn(f"phenomon: invariance check skipped: {e.__class__.__name__}: {e}", UserWarning, stacklevel=2)
        ctx.writer.update(invariance_error=f"{e.__class__.__name__}: {e}")


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


def print_err(msg: str) -> None:
    print(f"phenomon: {msg}", file=sys.stderr)
