"""`phenomon score`, `report` and `hypothesis` as a user meets them, on planted runs."""

from __future__ import annotations

import json
import time

import pytest

from phenomon import hypotheses as H
from phenomon.cli import main

from .conftest import PHENOMENON_NAMES, SIGNAL_NAMES
from .test_scorecard import _write
from .test_tui_fixtures import make_scored_run


@pytest.fixture
def planted(runs):
    runs.mkdir(parents=True)
    for seed in (0, 1):
        _write(runs, f"base{seed}", [], seed, jump_at=600)
        _write(runs, f"nowd{seed}", ["weight_decay"], seed, jump_at=600, wd_on=False)
    return runs


def test_score_prints_the_table(planted, capsys):
    assert main(["score", "--runs", str(planted), "--all"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line and not line.startswith("tracking")}
    assert "tracks, adds nothing beyond the norm" in lines["proxy"]
    assert "does not track" in lines["noise"]
    assert "the broad baseline" in lines["weight_norm"]
    assert main(["score", "--runs", str(planted), "--phenomenon", "nope"]) == 2
    assert "unknown phenomenon" in capsys.readouterr().err


def test_report_writes_figures_and_markdown(planted, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", "--out", str(out), "--runs", str(planted)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"grokking_curves.png", "scorecard.png", "report.md"} <= names
    md = (out / "report.md").read_text()
    assert "| proxy | grokking |" in md and "tracks, adds nothing beyond the norm" in md
    assert (out / "grokking_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["report", "nogroup", "--out", str(out), "--runs", str(planted)]) == 2
    assert "no runs in group 'nogroup'" in capsys.readouterr().err


def test_hypotheses_are_preregistered_checked_and_immutable(runs, capsys):
    """Planted runs with known answers (tests/test_tui_fixtures.make_scored_run): fourier_sparsity leads test accuracy
    by 300 steps, prime_count is a monotone function of the norm, sharpness is noise."""
    runs.mkdir(parents=True)
    make_scored_run(runs, "before", seed=9)  # made before the hypotheses: must not count
    planted = [("fourier_sparsity leads test accuracy", "fourier_sparsity", "lead", "SUPPORTED"),
               ("the prime count adds nothing beyond the norm", "prime_count", "nothing", "SUPPORTED"),
               ("sharpness tracks test accuracy", "sharpness", "track", "REFUTED")]
    for text, signal, expect, _ in planted:
        assert main(["hypothesis", "add", text, "--signal", signal, "--phenomenon", "grokking", "--expect", expect,
                     "--runs", str(runs)]) == 0
    capsys.readouterr()
    assert main(["hypothesis", "check", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    assert out.count("NOT ENOUGH RUNS") == 3, "runs made before registration do not count"
    time.sleep(0.01)
    for seed in (0, 1):
        make_scored_run(runs, f"after{seed}", seed=seed)
    assert main(["hypothesis", "check", "--runs", str(runs)]) == 0
    status = {line.split("'")[1]: line.split()[0] for line in capsys.readouterr().out.splitlines()}
    assert status == {text: answer for text, _, _, answer in planted}
    [hid] = [h.id for h in H.load(runs) if h.signal == "sharpness"]
    assert main(["hypothesis", "withdraw", hid, "--runs", str(runs)]) == 2
    assert "immutable" in capsys.readouterr().err, "a refuted hypothesis stays"
    # an edited file is detected, not trusted
    path = runs / ".hypotheses" / f"{hid}.json"
    path.chmod(0o644)
    d = json.loads(path.read_text())
    d["threshold"] = -1.0
    path.write_text(json.dumps(d))
    assert main(["hypothesis", "list", "--runs", str(runs)]) == 0
    assert "edited after registration" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--signal", "astrology", "--phenomenon", "grokking", "--expect", "track"],
     f"unknown signal 'astrology'; valid: {SIGNAL_NAMES}"),
    (["--signal", "weight_norm", "--phenomenon", "grok", "--expect", "track"],
     f"unknown phenomenon 'grok'; valid: {PHENOMENON_NAMES}"),
    (["--signal", "weight_norm", "--phenomenon", "grokking", "--expect", "maybe"], "unknown expectation 'maybe'"),
    (["--signal", "weight_norm", "--phenomenon", "grokking", "--expect", "track", "--threshold", "2"],
     "must be in [0, 1]"),
])
def test_bad_hypotheses_are_rejected(runs, capsys, argv, message):
    assert main(["hypothesis", "add", "x", *argv, "--runs", str(runs)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    if "; valid" in message:
        assert err.endswith(message), "the whole list of valid names"


def test_duplicate_hypothesis_is_rejected(runs, capsys):
    args = ["hypothesis", "add", "same", "--signal", "margin", "--phenomenon", "grokking", "--expect", "track",
            "--runs", str(runs)]
    assert main(args) == 0
    assert main(args) == 2
    assert "already registered" in capsys.readouterr().err
