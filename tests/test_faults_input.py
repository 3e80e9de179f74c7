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


def _random_json(rng, depth=0):
    kinds = ["int", "big", "float", "nan", "str", "markup", "bool", "none", "list", "dict"]
    k = rng.choice(kinds if depth < 2 else kinds[:8])
    return {"int": lambda: rng.randint(-5, 10 ** 6), "big": lambda: rng.choice([2 ** 40, -2 ** 70, 10 ** 30]),
            "float": lambda: rng.uniform(-1e9, 1e9), "nan": lambda: rng.choice([float("nan"), float("inf")]),
            "str": lambda: rng.choice(["", "x", "running", "grokking", "../a", "1234"]),
            "markup": lambda: rng.choice(["[/]", "[b]x", "[red"]), "bool": lambda: rng.random() < 0.5,
            "none": lambda: None, "list": lambda: [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))],
            "dict": lambda: {rng.choice(["step", "max_steps", "a", "round"]): _random_json(rng, depth + 1)
                             for _ in range(rng.randint(0, 3))}}[k]()


def test_fuzzed_manifests_are_runs_or_one_unreadable_line(tmp_path, capsys):
    """Seeded fuzzing of manifest fields (no extra dependency): read, list and `ls` never raise anything else."""
    import json
    import random

    from phenomon import store
    from phenomon.store.manifest import FIELDS

    rng = random.Random(11)
    root = tmp_path / "runs"
    base = store.new_manifest("r", "grokking")
    fields = [*FIELDS, "id"]
    for i in range(300):
        m = dict(base, id=f"r{i}")
        for k in rng.sample(fields, rng.randint(1, 3)):
            m[k] = _random_json(rng)
        d = root / f"r{i}"
        d.mkdir(parents=True)
        (d / "run.json").write_text(json.dumps(m))
        try:
            info = store.run_info(d)
        except store.StoreError as e:
            assert "unreadable: " in str(e) and "\n" not in str(e)
            continue
        store.label_of(info.manifest), info.dead_reason()
    assert cli.main(["ls", "--runs", str(root)]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err and len(out.splitlines()) + len(err.splitlines()) == 301


def test_fuzzed_set_values_are_values_or_usage_errors():
    import random

    from phenomon import registry
    from phenomon.config import UsageError

    rng = random.Random(5)
    pieces = ["1", "0", "-1", "1e30", "nan", "inf", "2**70", "0.5", "x", "", ",", "1,2", "true", "+", "97", "1e-9"]
    ph = registry.get("grokking")
    keys = list(ph.config_cls.__dataclass_fields__)
    for _ in range(400):
        pair = f"{rng.choice(keys)}={''.join(rng.choice(pieces) for _ in range(rng.randint(1, 2)))}"
        try:
            ph.resolve(None, [pair])
        except UsageError as e:
            assert "\n" not in str(e)
