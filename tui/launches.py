"""Paired runs from the TUI: the flipped configuration, its `phenomon run` spec, and no duplicates while starting."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from phenomon import registry, store
from phenomon.config import UsageError, diff, from_dict, to_dict
from phenomon.launcher import RunSpec
from phenomon.registry import Phenomenon
from phenomon.store import RunInfo

RETRYABLE = ("failed", "killed", "dead")  # a config whose only runs ended like this may be started again
START_TIMEOUT_S = 120.0


def chash(cfg) -> str:
    """The config's identity as a manifest's `config_hash` records it (seed included)."""
    return store.config_id(to_dict(cfg))


def config_of(info: RunInfo):
    """(phenomenon, resolved config) of a run, or None when its phenomenon is not registered here."""
    try:
        ph = registry.get(info.phenomenon)
    except UsageError:
        return None
    try:
        return ph, from_dict(ph.config_cls, info.manifest.get("config") or {})
    except Exception:  # noqa: BLE001 - a config this version cannot rebuild is not one to flip
        return None


def flipped(ph: Phenomenon, cfg, toggle_name: str):
    """`cfg` with the toggle applied, or, when it is on already, with its fields put back to the baseline."""
    t = ph.toggle(toggle_name)
    if t.is_on(cfg):
        base = ph.defaults()
        return dataclasses.replace(cfg, **{k: getattr(base, k) for k in t.changes})
    return t.apply(cfg)


def _fmt(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, float) else str(v)


def spec_for(ph: Phenomenon, cfg, root: Path) -> RunSpec:
    """The `phenomon run` arguments that resolve to exactly `cfg`: toggles by name, other differences as --set."""
    on = tuple(ph.toggles_on(cfg))
    covered = {k for t in on for k in ph.toggle(t).changes}
    d = diff(ph.defaults(), cfg)
    seed = d.pop("seed", None)
    sets = tuple(f"{k}={_fmt(v)}" for k, v in d.items() if k not in covered)
    spec = RunSpec(ph.name, sets=sets, toggles=on, seed=seed, root=root)
    if chash(ph.resolve(None, [*sets, *([f"seed={seed}"] if seed is not None else [])], on)) != chash(cfg):
        spec = dataclasses.replace(spec, toggles=(), sets=tuple(f"{k}={_fmt(v)}" for k, v in d.items()))
    return spec


_ENGINE: list = []  # the monitor's engine, built on its first start


def launch(spec: RunSpec, log_dir: Path):
    """Start `spec` on the engine $PHENOMON_ENGINE names (local processes unless it says ray; Ray is imported and
    connected only on the first start), under a fresh launch id."""
    from phenomon import engines

    if not _ENGINE:
        _ENGINE.append(engines.from_env())
    eng = _ENGINE[0]
    return eng.launch(dataclasses.replace(spec, launch_id=spec.launch_id or engines.new_launch_id(), engine=eng.name),
                      log_dir)


@dataclass
class Pending:
    spec: RunSpec
    proc: Any  # subprocess.Popen; None until the worker has started it
    since: float


@dataclass
class Launches:
    """Starts runs through the CLI's launcher and remembers what it started, so a key pressed twice starts one run."""

    root: Path
    launch_fn: Callable = launch
    pending: dict[str, Pending] = field(default_factory=dict)  # config hash -> a start not yet in the store
    started: list[Any] = field(default_factory=list)  # every Popen started from here
    launch_ids: set[str] = field(default_factory=set)  # the launch id of each: its run's manifest carries it

    def existing(self, runs: tuple[RunInfo, ...], h: str) -> RunInfo | None:
        live = [r for r in runs if r.manifest.get("config_hash") == h and r.state not in RETRYABLE]
        return live[-1] if live else None

    def request(self, ph: Phenomenon, cfg, runs: tuple[RunInfo, ...], *,
                start: Callable[[str], None] | None = None) -> tuple[str, str]:
        """('focus', run id) when the config has a run, ('pending', hash) while one is starting, else ('started', hash).

        The start is recorded as pending before its process exists, so a key pressed again meanwhile starts nothing;
        `start(hash)` then starts it (the app passes one that forks in a worker thread), by default `self.start`.
        """
        h = chash(cfg)
        if (r := self.existing(runs, h)) is not None:
            return "focus", r.id
        if h in self.pending:
            return "pending", h
        from phenomon.engines import new_launch_id

        spec = dataclasses.replace(spec_for(ph, cfg, self.root), launch_id=new_launch_id())
        self.pending[h] = Pending(spec, None, time.monotonic())
        (start or self.start)(h)
        return "started", h

    def start(self, h: str) -> None:
        """Start the pending configuration `h` (a fork and exec: the app calls this off its UI thread)."""
        p = self.pending.get(h)
        if p is None or p.proc is not None:
            return
        try:
            p.proc = self.launch_fn(p.spec, self.root / ".logs")
        except BaseException:
            self.pending.pop(h, None)
            raise
        self.started.append(p.proc)
        if p.spec.launch_id:
            self.launch_ids.add(p.spec.launch_id)

    def reconcile(self, runs: tuple[RunInfo, ...]) -> list[str]:
        """Forget starts that reached the store; return a line for each that died before it did."""
        hashes = {r.manifest.get("config_hash") for r in runs}
        for p in self.started:  # reap children that exited: a finished run is no zombie while the monitor is open
            if hasattr(p, "poll"):
                p.poll()
        out = []
        for h, p in list(self.pending.items()):
            code = p.proc.poll() if hasattr(p.proc, "poll") else None
            if h in hashes:
                del self.pending[h]
                if p.spec.launch_id:  # its run is in the store: the launch record has done its job
                    store.forget_launch(self.root, p.spec.launch_id)
            elif code is not None or time.monotonic() - p.since > START_TIMEOUT_S:
                del self.pending[h]
                out.append(f"run {' '.join(p.spec.argv()[3:])} did not start (exit {code}); "
                           f"see {self.root / '.logs'}")
        return out

    def still_running(self) -> list[Any]:
        return [p for p in self.started if hasattr(p, "poll") and p.poll() is None]


def stop(info: RunInfo) -> str:
    """Ask a run to stop by a `stop` file in its directory (any host, any engine; it flushes and marks itself
    killed). A process is signalled only as a fallback, and only one proven to own the run (see store.stop)."""
    return store.stop_run(info)
