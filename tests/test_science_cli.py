"""`phenomon score`, `report` and `hypothesis` as a user meets them, on planted runs."""

from __future__ import annotations

import json
import time

import pytest

from phenomon import hypotheses as H
from phenomon.cli import main

from .test_scorecard import _write


@pytest.fixture
def planted(runs):
    runs.mkdir(parents=True)
    for seed in range(3):
        _write(runs, f"base{seed}", [], seed)
        _write(runs, f"nowd{seed}", ["weight_decay"], seed, grok=False)
    return runs


def _lines(out: str) -> dict[str, str]:
    return {line.split(" · ")[0]: line for line in out.splitlines() if " · grokking: " in line}


def test_score_prints_the_table_and_the_verdicts(planted, capsys):
    assert main(["score", "--runs", str(planted), "--all"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header[:5] == ["SIGNAL", "PHENOMENON", "N", "Δ-ρ", "Q"]
    v = _lines(out)
    assert "explains: tracks beyond the nulls and the norm" in v["signal/cause"]
    assert "adds nothing beyond the norm" in v["signal/proxy"]
    assert "no better than the nulls" in v["signal/timer"]
    assert v["signal/noise"].split(": ", 1)[1].startswith("does not track")
    assert "a null signal" in v["null/random_walk"]
    assert main(["score", "--runs", str(planted), "--phenomenon", "nope"]) == 2
    assert "unknown phenomenon" in capsys.readouterr().err


def test_score_json_has_booleans_and_intervals(planted, capsys):
    assert main(["score", "--runs", str(planted), "--all", "--json"]) == 0
    rows = {r["signal"]: r for r in json.loads(capsys.readouterr().out)}
    c = rows["signal/cause"]
    for key in ("signal", "phenomenon", "n_units", "tracks", "beats_null", "invariant", "explains", "verdict",
                "tracking", "tracking_lo", "tracking_hi", "partial_norm_lo", "lead_lo", "q"):
        assert key in c
    assert c["explains"] is True and c["n_units"] == 3 and c["tracking_lo"] < c["tracking"] < c["tracking_hi"]
    assert rows["signal/timer"]["explains"] is False
    assert rows["null/step"]["explains"] is None and rows["null/step"]["is_null_signal"] is True
    assert c["invariant"] is None, "no invariance.json in planted runs: undefined, not a guess"


def test_report_writes_per_phenomenon_figures_and_markdown(planted, tmp_path, capsys):
    for seed in range(3):  # the report's scorecard reads each run's invariance check, as `phenomon score` does
        (planted / f"base{seed}" / "invariance.json").write_text(json.dumps(
            {"function_preserved": True, "signals": {"signal/cause": {"rel_change": 0.0, "invariant": True}}}))
    out = tmp_path / "report"
    assert main(["report", "--out", str(out), "--runs", str(planted)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"grokking_curves.png", "grokking_scorecard.png", "report.md"} <= names
    md = (out / "report.md").read_text()
    assert "## Scorecard — grokking" in md and "| signal/proxy | 3 |" in md
    cause = next(line for line in md.splitlines() if line.startswith("| signal/cause | 3 |"))
    assert cause.endswith("| yes | yes |"), "invariant, explains"
    assert "adds nothing beyond the norm" in md and "## Group verdicts" in md
    assert (out / "grokking_scorecard.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["report", "nogroup", "--out", str(out), "--runs", str(planted)]) == 2
    assert "no runs in group 'nogroup'" in capsys.readouterr().err


def test_hypotheses_are_preregistered_checked_and_immutable(runs, capsys):
    runs.mkdir(parents=True)
    _write(runs, "before", [], 9)  # made before the hypotheses: must not count
    assert main(["hypothesis", "add", "the weight norm's changes track test accuracy's", "--signal", "weight_norm",
                 "--phenomenon", "grokking", "--expect", "track", "--runs", str(runs)]) == 0
    assert main(["hypothesis", "add", "the prime count adds nothing beyond the norm", "--signal", "prime_count",
                 "--phenomenon", "grokking", "--expect", "nothing", "--runs", str(runs)]) == 0
    capsys.readouterr()
    assert main(["hypothesis", "check", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    assert out.count("NOT ENOUGH RUNS") == 2, "runs made before registration do not count"
    time.sleep(0.01)
    for seed in range(3):
        _write(runs, f"after{seed}", [], seed)
    assert main(["hypothesis", "check", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    norm = next(line for line in out.splitlines() if "weight norm's changes" in line)
    assert "SUPPORTED" in norm and "n=3" in norm, "the planted norm moves with the outcome"
    primes = next(line for line in out.splitlines() if "prime count" in line)
    assert "NOT ENOUGH RUNS" in primes and "signal/prime_count is not logged" in out, "the real cause is named"
    [hid] = [h.id for h in H.load(runs) if h.signal == "weight_norm"]
    assert main(["hypothesis", "withdraw", hid, "--runs", str(runs)]) == 2
    assert "immutable" in capsys.readouterr().err
    # an edited file is detected, not trusted
    path = runs / ".hypotheses" / f"{hid}.json"
    path.chmod(0o644)
    d = json.loads(path.read_text())
    d["threshold"] = -1.0
    path.write_text(json.dumps(d))
    assert main(["hypothesis", "list", "--runs", str(runs)]) == 0
    assert "edited after registration" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--signal", "astrology", "--phenomenon", "grokking", "--expect", "track"], "unknown signal 'astrology'; valid:"),
    (["--signal", "weight_norm", "--phenomenon", "grok", "--expect", "track"], "unknown phenomenon 'grok'"),
    (["--signal", "weight_norm", "--phenomenon", "grokking", "--expect", "maybe"], "unknown expectation 'maybe'"),
    (["--signal", "weight_norm", "--phenomenon", "grokking", "--expect", "track", "--threshold", "2"],
     "must be in [0, 1]"),
])
def test_bad_hypotheses_are_rejected(runs, capsys, argv, message):
    assert main(["hypothesis", "add", "x", *argv, "--runs", str(runs)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_duplicate_hypothesis_is_rejected(runs, capsys):
    args = ["hypothesis", "add", "same", "--signal", "margin", "--phenomenon", "grokking", "--expect", "track",
            "--runs", str(runs)]
    assert main(args) == 0
    assert main(args) == 2
    assert "already registered" in capsys.readouterr().err
