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
