"""The command line as a user meets it: help, listings, and one-line errors with exit code 2 for mistakes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from phenomon import store
from phenomon.cli import main

from .conftest import PHENOMENON_NAMES, REPO, SIGNAL_NAMES, TINY, phenomon


def test_help_and_phenomena_listing(capsys):
    assert main(["phenomena"]) == 0
    out = capsys.readouterr().out
    assert "grokking" in out and "toggle [w] weight_decay" in out and "no grokking" in out
    assert main(["signals"]) == 0
    out = capsys.readouterr().out
    assert "prime_count: ad hoc (the position paper's deliberately absurd counterexample)" in out, "the theory"
    assert "  Top Hessian eigenvalue of the probe loss" in out, "the description"
    assert "applies to grokking, grokking_data; cheap" in out
    proc = phenomon("--help")
    assert proc.returncode == 0 and "phenomena" in proc.stdout and "run" in proc.stdout


@pytest.mark.parametrize("argv, message", [
    (["run", "grok"], f"unknown phenomenon 'grok'; valid: {PHENOMENON_NAMES}"),
    (["run", "grokking", "--toggle", "nope"], "unknown toggle 'nope'"),
    (["run", "grokking", "--set", "bogus=1"], "unknown key 'bogus'; valid keys: model, p, op, train_fraction, lr, "
     "weight_decay, beta1, beta2, init_scale, d_embed, hidden, d_model, n_heads, d_mlp, max_steps, eval_every, seed"),
    (["run", "grokking", "--set", "p=100"], "p must be a prime ≥ 3"),
    (["run", "grokking", "--set", "train_fraction=1.5"], "train_fraction must be in (0, 1)"),
    (["run", "grokking", "--set", "weight_decay=-0.1"], "weight_decay must be >= 0"),
    (["run", "grokking", "--max-steps", "0"], "--max-steps must be positive"),
    (["run", "grokking", "--seed", "x"], "invalid int value"),
    (["run", "grokking", "--accelerator", "tpu"], "invalid choice"),
    (["frobnicate"], "invalid choice"),
    (["run", "grokking", "--signals", "astrology"], f"unknown signal(s) astrology; valid: {SIGNAL_NAMES}"),
])
def test_usage_errors_are_one_line_exit_2(argv, message, capsys, runs):
    assert main([*argv, "--runs", str(runs)] if argv[0] == "run" else argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    if "; valid" in message:
        assert err.endswith(message), "the whole list of valid names"
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not runs.exists(), "a rejected command creates nothing"


def test_unwritable_runs_directory(tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    if os.access(ro, os.W_OK):  # root writes anywhere: make the check see what a normal user would
        import phenomon.runner

        monkeypatch.setattr(phenomon.runner.os, "access", lambda path, mode: False)
    try:
        assert main(["run", "grokking", *TINY, "--max-steps", "5", "--runs", str(ro)]) == 2
        assert "not writable" in capsys.readouterr().err
        assert list(ro.iterdir()) == []
    finally:
        os.chmod(ro, 0o700)


def test_runs_directory_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["run", "grokking", *TINY, "--max-steps", "5", "--runs", str(f)]) == 2
    assert "cannot create runs directory" in capsys.readouterr().err


def test_run_ls_show_end_to_end(runs):
    proc = phenomon("run", "grokking", *TINY, "--max-steps", "40", "--runs", str(runs))
    assert proc.returncode == 0, proc.stderr
    assert "finished" in proc.stdout and "verdict:" in proc.stdout
    assert "Traceback" not in proc.stderr and "GPU available" not in proc.stderr + proc.stdout
    ls = phenomon("ls", "--runs", str(runs))
    assert ls.returncode == 0
    header, row = ls.stdout.splitlines()
    assert header.split()[:5] == ["ID", "PHENOMENON", "TOGGLES", "STATUS", "PROGRESS"]
    assert "finished" in row and "40/40" in row and "train/acc=" in row
    rid = row.split()[0]
    show = phenomon("show", rid, "--runs", str(runs))
    assert show.returncode == 0
    assert "status     finished" in show.stdout and "verdict" in show.stdout and "p=23*" in show.stdout


def test_ls_and_show_bad_input(runs, capsys):
    assert main(["ls", "--runs", str(runs)]) == 2
    assert "does not exist" in capsys.readouterr().err
    runs.mkdir()
    assert main(["ls", "--runs", str(runs)]) == 0
    assert "no runs" in capsys.readouterr().out
    assert main(["show", "nope", "--runs", str(runs)]) == 2
    assert "no run 'nope'" in capsys.readouterr().err


def test_ls_warns_about_a_corrupt_run_and_lists_the_rest(runs, capsys):
    w = store.RunWriter(runs / "ok", store.new_manifest("ok", "grokking"), background=False)
    w.close("finished")
    (runs / "broken").mkdir()
    (runs / "broken" / "run.json").write_text("{not json")
    assert main(["ls", "--runs", str(runs)]) == 0
    cap = capsys.readouterr()
    assert "ok" in cap.out and "corrupt run.json" in cap.err
    assert (runs / "broken" / "run.json").read_text() == "{not json", "nothing is touched"


@pytest.mark.parametrize("module", ["phenomon", "phenomon.cli"])
def test_score_runs_as_a_module(module, runs):
    """`python -m phenomon.cli` once met a command table cut short by its own `__main__` guard (KeyError: 'score')."""
    from .test_scorecard import _write

    runs.mkdir()
    _write(runs, "base0", [], 0)
    proc = subprocess.run([sys.executable, "-m", module, "score", "--runs", str(runs)], capture_output=True,
                          text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    table = proc.stdout.split("\n\n")[0].splitlines()[1:]
    rows = sorted(line.split()[0] for line in table)
    assert rows == ["null/random_walk", "null/step", "signal/weight_norm"], \
        "the main rows and the nulls only: the planted cause, proxy and noise are not main signals"


def test_output_into_a_closed_pipe_is_not_a_traceback(monkeypatch):
    """`phenomon signals | head -1`: the reader goes away and the next write raises BrokenPipeError: exit 0 quietly."""
    import io

    class ClosedPipe(io.StringIO):
        def write(self, s):
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self):
            raise io.UnsupportedOperation("no descriptor")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["signals"]) == 0
