"""Bad input never starts a run: one line, exit code 2, no run directory; and hypotheses hold up to tampering."""

from __future__ import annotations

import pytest

from phenomon import cli

BAD = [
    ["run", "grokking", "--set", "lr=inf"],
    ["run", "grokking", "--set", "weight_decay=nan"],
    ["run", "grokking", "--set", "lr=-inf"],
    ["run", "grokking", "--set", "p=2"],
    ["run", "grokking", "--set", "p=91"],
    ["run", "grokking", "--set", "train_fraction=1e-9"],
    ["run", "grokking", "--set", "train_fraction=0.99999999"],
    ["run", "grokking", "--seed", "-1"],
    ["run", "grokking", "--seed", str(2 ** 32)],
    ["run", "grokking", "--set", "seed=1e30"],
    ["run", "grokking", "--set", "seed=2**70"],
    ["run", "grokking", "--set", "hidden=1e12"],
    ["run", "grokking", "--set", "p=1000003"],
    ["run", "double_descent", "--set", "width=10000000"],
    ["run", "double_descent", "--set", "label_noise=nan"],
    ["run", "lottery_ticket", "--set", "hidden=100000,100000"],
    ["experiment", "grokking", "--variants", ""],
    ["experiment", "grokking", "--seeds", ""],
    ["experiment", "grokking", "--seeds", ","],
    ["experiment", "grokking", "--seeds", "-1"],
]


@pytest.mark.parametrize("argv", BAD, ids=[" ".join(a[1:]) for a in BAD])
def test_bad_input_is_one_line_exit_2_and_no_run(argv, runs, capsys):
    assert cli.main([*argv, "--runs", str(runs)]) == 2
    out, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1 and err.startswith("phenomon: error: ")
    assert not runs.exists() or not any(runs.iterdir())


def test_an_estimate_names_the_memory_needed(runs, capsys):
    cli.main(["run", "grokking", "--set", "p=1000003", "--runs", str(runs)])
    assert "GiB" in capsys.readouterr().err


@pytest.fixture
def two_hypotheses(runs, monkeypatch):
    from phenomon import hypotheses as H

    monkeypatch.setattr(H, "valid_signal_names", lambda: ["weight_norm", "margin"])
    a = H.add(runs, "the norm tracks", "weight_norm", "grokking", "track", None)
    b = H.add(runs, "the margin leads", "margin", "grokking", "lead", None)
    return H, a, b


def _rewrite(path, **kw):
    import json

    path.chmod(0o644)
    d = json.loads(path.read_text())
    d.update(kw)
    path.write_text(json.dumps(d))


def test_tampered_hypotheses_are_reported_not_trusted(runs, two_hypotheses, capsys):
    H, a, b = two_hypotheses
    d = runs / ".hypotheses"
    _rewrite(d / f"{a.id}.json", created=a.created + 86400)  # postdated: outside the hash before
    _rewrite(d / f"{b.id}.json", threshold="high")  # stored as text
    assert cli.main(["hypothesis", "list", "--runs", str(runs)]) == 0
    err = capsys.readouterr().err
    assert "edited after registration" in err and "threshold is \"high\", not a number" in err
    (d / f"{a.id}.json").unlink()
    assert cli.main(["hypothesis", "check", "--runs", str(runs)]) == 0
    assert "deleted without withdrawal" in capsys.readouterr().err


def test_an_edited_ledger_breaks_its_chain(runs, two_hypotheses, capsys):
    H, a, b = two_hypotheses
    ledger = runs / ".hypotheses" / "ledger.jsonl"
    lines = ledger.read_text().splitlines()
    ledger.write_text("\n".join([lines[0].replace(str(a.created)[:6], "1"), *lines[1:]]) + "\n")
    problems = []
    H.load(runs, problems)
    assert any("breaks the chain" in p for p in problems)


def test_withdraw_needs_an_exact_id_and_bare_hypothesis_prints_help(runs, two_hypotheses, capsys):
    H, a, b = two_hypotheses
    for ref in ("", a.id[:4]):
        assert cli.main(["hypothesis", "withdraw", ref, "--runs", str(runs)]) == 2
    assert len(H.load(runs)) == 2
    assert cli.main(["hypothesis", "withdraw", a.id, "--runs", str(runs)]) == 0
    problems = []
    assert [h.id for h in H.load(runs, problems)] == [b.id] and problems == []
    capsys.readouterr()
    assert cli.main(["hypothesis"]) == 0
    assert "usage: phenomon hypothesis" in capsys.readouterr().out
