"""Shared fixtures: a runs directory per test, a tiny grokking configuration, a subprocess runner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

# Started as a background job of a non-interactive shell (`pytest ... &`), this process has SIGINT ignored, and every
# process it starts inherits that: the tests' Ctrl-C to a sweep and Ray's cancel (a SIGINT to its worker) would never
# arrive. A handler (unlike SIG_IGN) is reset to the default in a started program, so the runs get Ctrl-C again.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO = Path(__file__).resolve().parents[1]
TINY = ["--set", "p=23", "--set", "eval_every=10", "--set", "hidden=64", "--set", "d_embed=16"]
# the registered names, in full, as error messages list them: a new phenomenon or signal is added here
PHENOMENON_NAMES = "dd_regularised, double_descent, edge_of_stability, emergence, grokking, grokking_data, lottery_ticket, omnigrok, tickets_at_init"
SIGNAL_NAMES = ("effective_parameters, effective_rank, fourier_sparsity, grad_norm, magnitude, margin, prime_count, "
                "sharpness, softmax_collapse, sparsity, weight_norm")


@pytest.fixture
def runs(tmp_path) -> Path:
    return tmp_path / "runs"


def phenomon(*args: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the CLI as a user does, in a fresh process."""
    e = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "phenomon", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=e)


def pytest_addoption(parser):
    parser.addoption("--snapshot-update", action="store_true", default=False,
                     help="rewrite the stored SVG snapshots under tests/snapshots/ from this run (then review the diff)")


@pytest.fixture
def snapshot_update(request) -> bool:
    return bool(request.config.getoption("--snapshot-update"))
