"""Where runs execute: `local` (detached `phenomon run` processes on this machine, the default, forked warm from a
server that has done the imports: `phenomon.engines.warm`) or `ray` (Ray Core tasks on a cluster, warm workers).
Both run the same runner into the same runs root; the launcher watches its runs through the store, matched by a
launch id in each manifest, never by a pid.

An engine's `launch(spec, log_dir)` returns a handle with the part of `subprocess.Popen`'s interface the sweep and
the monitor use: `poll()`, `wait(timeout)`, `terminate()` (a stop that lets the run mark itself killed), `kill()`,
`send_signal()`, `pid` (for display). Ray is imported only when the ray engine is chosen.
"""

from __future__ import annotations

import argparse
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from phenomon.config import UsageError

ENGINES = ("local", "ray")
RAY_INSTALL = "pip install 'phenomon[ray]'"


def new_launch_id() -> str:
    """A fresh id naming one launch (letters and digits: it is also a file name under <root>/.launches)."""
    return "l" + secrets.token_hex(8)


class LocalEngine:
    """Each run a detached `phenomon run` process (its own session: it outlives the caller), forked warm from a server
    that has imported torch and Lightning once (cold, one interpreter per run, with PHENOMON_WARM=0)."""

    name = "local"

    def launch(self, spec, log_dir: Path):
        from phenomon.launcher import launch

        return launch(spec, log_dir)

    def default_parallel(self) -> int | None:
        from phenomon.sweep import default_parallel

        return default_parallel()

    def describe(self) -> str:
        return "local processes"


@dataclass(frozen=True)
class EngineChoice:
    """What the command line and the environment asked for; `make()` builds the engine."""

    name: str = "local"
    address: str | None = None
    cpus_per_run: float | None = None
    gpus_per_run: float | None = None

    def check(self) -> "EngineChoice":
        if self.name == "local" and (self.address or self.cpus_per_run is not None or self.gpus_per_run is not None):
            raise UsageError("--address, --cpus-per-run and --gpus-per-run need --engine ray (or PHENOMON_ENGINE=ray)")
        return self

    def make(self):
        self.check()
        if self.name == "local":
            return LocalEngine()
        from phenomon.engines.ray_engine import RayEngine

        return RayEngine(address=self.address, cpus_per_run=1.0 if self.cpus_per_run is None else self.cpus_per_run,
                         gpus_per_run=self.gpus_per_run or 0.0)


def _fraction(flag: str):
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise UsageError(f"{flag} expects a number (fractions allowed, e.g. 0.25), got {text!r}") from None
        if not (v == v and 0 <= v < float("inf")) or (flag == "--cpus-per-run" and v == 0):
            raise UsageError(f"{flag} must be a finite number {'> 0' if flag == '--cpus-per-run' else '>= 0'}, "
                             f"got {text}")
        return v

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("engine (where the runs execute)")
    g.add_argument("--engine", help="local (default: processes on this machine) or ray (Ray Core tasks; "
                                    f"{RAY_INSTALL}); default $PHENOMON_ENGINE or local")
    g.add_argument("--address", help="ray: the cluster, auto or HOST:PORT (default $RAY_ADDRESS, else a local "
                                     "Ray started for this command)")
    g.add_argument("--cpus-per-run", type=_fraction("--cpus-per-run"), help="ray: CPUs each run reserves (default 1)")
    g.add_argument("--gpus-per-run", type=_fraction("--gpus-per-run"),
                   help="ray: GPUs each run reserves; fractions share a GPU, e.g. 0.25 (default 0)")


def choice(args) -> EngineChoice:
    """The engine the arguments (or $PHENOMON_ENGINE) name, checked; a mistake is one line."""
    name = (getattr(args, "engine", None) or os.environ.get("PHENOMON_ENGINE") or "local").strip().lower()
    if name not in ENGINES:
        raise UsageError(f"unknown engine {name!r}; valid: {', '.join(ENGINES)}")
    return EngineChoice(name, getattr(args, "address", None), getattr(args, "cpus_per_run", None),
                        getattr(args, "gpus_per_run", None)).check()


def from_env():
    """The engine $PHENOMON_ENGINE names (the monitor's launches): local unless it says ray."""
    return choice(argparse.Namespace()).make()
