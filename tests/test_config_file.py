"""`--config FILE` (YAML or JSON, the keys of --set, --set wins) for `run` and `experiment`."""

from __future__ import annotations

import json

import pytest
import yaml

from phenomon.cli import main
from phenomon.config import UsageError, sets_from_files


def _print_config(capsys, *args) -> dict:
    assert main(["run", "grokking", *args, "--print-config"]) == 0
    return yaml.safe_load(capsys.readouterr().out)


def test_yaml_and_json_files_with_set_winning(tmp_path, capsys):
    y = tmp_path / "g.yaml"
    y.write_text("p: 23\nhidden: 64\nweight_decay: 0.5\nmodel: mlp\n")
    j = tmp_path / "g.json"
    j.write_text(json.dumps({"hidden": 16, "lr": 1e-3}))
    cfg = _print_config(capsys, "--config", str(y), "--config", str(j), "--set", "lr=0.01")
    assert (cfg["p"], cfg["weight_decay"], cfg["hidden"], cfg["lr"]) == (23, 0.5, 16, 0.01), \
        "later files win over earlier ones, --set over every file"
    assert _print_config(capsys, "--config", str(y), "--seed", "3")["seed"] == 3


def test_a_printed_config_reads_back_the_same(tmp_path, capsys):
    first = _print_config(capsys, "--set", "p=31", "--set", "weight_decay=0")
    f = tmp_path / "back.yaml"
    f.write_text(yaml.safe_dump(first))
    assert _print_config(capsys, "--config", str(f)) == first


def test_lists_are_tuple_fields(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("seeds: [0, 1]\nflag: true\n")
    assert sets_from_files([str(f)]) == ["seeds=0,1", "flag=true"]


@pytest.mark.parametrize("text, message", [
    ("hiden: 3\n", "unknown key 'hiden'; valid keys:"),
    ("optim:\n  lr: 1\n", "optim is a mapping; keys are flat"),
    ("- 1\n- 2\n", "expected a mapping"),
    ("p: [\n", "not valid YAML"),
])
def test_bad_files_are_one_line_errors(tmp_path, capsys, text, message):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    assert main(["run", "grokking", "--config", str(f)]) == 2
    assert message in capsys.readouterr().err


def test_experiment_takes_a_config_and_checks_it_before_starting(tmp_path, capsys):
    f = tmp_path / "bad.json"
    f.write_text('{"hidden": "wide"}')
    assert main(["experiment", "grokking", "--config", str(f), "--runs", str(tmp_path / "runs")]) == 2
    assert "hidden: expected an integer" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists(), "nothing started"
    with pytest.raises(UsageError, match="No such file"):
        sets_from_files([str(tmp_path / "absent.yaml")])
