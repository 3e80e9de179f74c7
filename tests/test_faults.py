"""Fault injection: whatever a runs directory holds, ls, show, score, report and the monitor neither crash nor mislead.

Each scenario corrupts one copy of a good run; all of them sit beside two good runs, which must still be listed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from phenomon import cli, store
from tests.test_tui_app import SIZE, FakeLauncher, app_for, until
from tests.test_tui_fixtures import make_run


def _set(**kw):
    def f(d: Path, m: dict) -> None:
        m.update(kw)
        (d / "run.json").write_text(json.dumps(m))
    return f


def _drop(key):
    def f(d: Path, m: dict) -> None:
        m.pop(key)
        (d / "run.json").write_text(json.dumps(m))
    return f


def _raw(text: str | bytes):
    def f(d: Path, m: dict) -> None:
        p = d / "run.json"
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return f


def _json_dir(d, m):
    (d / "run.json").unlink()
    (d / "run.json").mkdir()


def _symlink_loop(d, m):
    (d / "run.json").unlink()
    os.symlink("run.json", d / "run.json")


def _dangling(d, m):
    (d / "run.json").unlink()
    os.symlink("/nonexistent/run.json", d / "run.json")


def _metrics_file(d, m):
    shutil.rmtree(d / "metrics")
    (d / "metrics").write_text("not a directory")


def _corrupt_segment(d, m):
    seg = store.list_segments(d)[0][2]
    seg.write_bytes(b"PAR1 garbage")


def _missing_middle(d, m):
    w = store.RunWriter(d, m, background=False)  # one more segment, then its predecessor vanishes
    w.log({"test/acc": 0.5}, 1000)
    w.flush()
    w.log({"test/acc": 0.6}, 1010)
    w.flush()
    segs = store.list_segments(d)
    segs[-2][2].unlink()


def _heartbeat(text):
    def f(d, m):
        m["status"] = "running"
        (d / "run.json").write_text(json.dumps(m))
        (d / "heartbeat").write_bytes(text if isinstance(text, bytes) else text.encode())
    return f


def _segment_dir(d, m):
    (d / "metrics" / store.seg_name(5000, 5010)).mkdir()


SCENARIOS = {
    "run.json is a directory": _json_dir,
    "run.json is a symlink loop": _symlink_loop,
    "run.json is a dangling symlink": _dangling,
    "not JSON": _raw("{torn"),
    "empty run.json": _raw(""),
    "binary garbage": _raw(b"\xff\xfe\x00\x81"),
    "a JSON list": _raw("[1, 2, 3]"),
    "JSON null": _raw("null"),
    "deeply nested": _raw("[" * 100000 + "]" * 100000),
    "no id": _drop("id"),
    "id a number": _set(id=42),
    "id with markup": _set(id="[/]bad"),
    "id a path": _set(id="../../etc"),
    "phenomenon escapes": _set(phenomenon="../escaped/pwn"),
    "phenomenon markup": _set(phenomenon="[/]"),
    "started as text": _set(started="yesterday"),
    "started infinite": _raw('{"id": "x-inf", "phenomenon": "grokking", "config": {}, "status": "finished", '
                             '"started": 1e999}'),
    "ended NaN": _raw('{"id": "x-nan", "phenomenon": "grokking", "config": {}, "status": "finished", '
                      '"ended": NaN}'),
    "pid 2**40": _set(pid=2 ** 40, status="running"),
    "pid text": _set(pid="1234", status="running"),
    "pid true": _set(pid=True, status="running"),
    "pid -1": _set(pid=-1, status="running"),
    "pid float": _set(pid=12.0, status="running"),
    "progress a string": _set(progress="half"),
    "progress step text": _set(progress={"step": "x", "max_steps": 10}),
    "toggles 5": _set(toggles=5),
    "toggles of numbers": _set(toggles=[1, 2]),
    "rows not a number": _set(rows="many"),
    "rows negative": _set(rows=-5),
    "status unknown": _set(status="exploded"),
    "summary a list": _set(summary=[1, 2]),
    "summary text value": _set(summary={"test/acc": "high"}),
    "config a string": _set(config="p=97"),
    "config nested object": _set(config={"p": {"x": 1}}),
    "config wrong type": _set(config={"p": "abc", "lr": "fast"}),
    "seed text": _set(seed="zero"),
    "group a number": _set(group=5),
    "error an object": _set(error={"x": 1}),
    "verdict a list": _set(verdict=["a"]),
    "argv a string": _set(argv="phenomon run"),
    "round text": _set(round={"round": "x"}),
    "markup in toggles, group, error": _set(toggles=["[/]", "[b]x"], group="[/]g", error="[/]boom", status="failed"),
    "metrics is a file": _metrics_file,
    "a corrupt segment": _corrupt_segment,
    "a missing middle segment": _missing_middle,
    "a directory named like a segment": _segment_dir,
    "heartbeat garbage": _heartbeat("nan\n"),
    "heartbeat in the far future": _heartbeat("99999999999\n"),
    "heartbeat binary": _heartbeat(b"\xff\xfe"),
}
assert len(SCENARIOS) >= 30


@pytest.fixture(scope="module")
def corrupted(tmp_path_factory):
    """Two good runs and one corrupted copy of a good run per scenario, under one runs directory."""
    root = tmp_path_factory.mktemp("faults") / "runs"
    good = [make_run(root, steps=200), make_run(root, seed=1, steps=200)]
    template = make_run(root.parent / "template", seed=2, steps=200)
    shutil.copytree(good[0], root / "copy-of-the-first")  # the same id twice: two runs, not one
    dirs = {}
    for i, (name, corrupt) in enumerate(SCENARIOS.items()):
        d = root / f"z{i:02d}"
        shutil.copytree(template, d)
        m = json.loads((d / "run.json").read_text())
        m["id"] = f"z{i:02d}"
        (d / "run.json").write_text(json.dumps(m))
        corrupt(d, m)
        dirs[name] = d
    return root, [g.name for g in good], dirs


def _cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_reading_a_corrupt_run_is_a_run_or_one_unreadable_line(corrupted, name):
    _, _, dirs = corrupted
    try:
        info = store.run_info(dirs[name])
    except store.StoreError as e:
        assert "unreadable: " in str(e) and "\n" not in str(e)
        return
    assert info.state in ("running", "finished", "failed", "killed", "dead", "skew")
    problems: list[str] = []
    store.read_metrics(info.dir, problems=problems)
    if name == "a missing middle segment":
        assert any("missing (no segment holds them)" in p for p in problems)
    assert store.label_of(info.manifest) is not None


def test_ls_lists_the_good_runs_and_one_line_per_bad_one(corrupted, capsys):
    root, good, dirs = corrupted
    code, out, err = _cli(capsys, "ls", "--runs", str(root))
    assert code == 0 and "Traceback" not in out + err
    assert all(g in out for g in good)
    assert f"{good[0]}@copy-of-the-first" in out
    unreadable = [ln for ln in err.splitlines() if "unreadable:" in ln]
    assert len(unreadable) >= 30
    assert "far future" not in out
    skew = dirs["heartbeat in the far future"].name
    assert any(ln.startswith(skew) and " skew " in ln for ln in out.splitlines())


def test_show_each_corrupt_run_exits_0_or_2_in_one_line(corrupted, capsys):
    root, _, dirs = corrupted
    for name, d in dirs.items():
        code, out, err = _cli(capsys, "show", str(d), "--runs", str(root))
        assert code in (0, 2), name
        assert "Traceback" not in out + err
        if code == 2:
            assert len(err.strip().splitlines()) == 1, (name, err)
    assert _cli(capsys, "show", "z", "--runs", str(root))[0] == 2  # ambiguous prefix


def test_score_and_report_cover_the_good_runs(corrupted, capsys, tmp_path):
    root, _, dirs = corrupted
    code, out, err = _cli(capsys, "score", "--runs", str(root))
    assert code == 0 and "Traceback" not in out + err
    assert "unreadable:" in err
    code, out, err = _cli(capsys, "report", "--runs", str(root), "--out", str(tmp_path / "rep"))
    assert code == 0, err
    written = [Path(p) for p in out.split()]
    assert written and all(tmp_path / "rep" in p.resolve().parents for p in written)
    assert not (tmp_path / "escaped").exists() and not (root.parent / "escaped").exists()


async def test_the_monitor_lists_the_good_runs_and_reports_the_rest(corrupted):
    root, good, dirs = corrupted
    app = app_for(root, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: all(g in table.rows for g in [*good, f"{good[0]}@copy-of-the-first"]))
        await until(pilot, lambda: "problem(s)" in str(app.screen.query_one("#runs-status", Static).render()))
        markup = dirs["markup in toggles, group, error"].name
        assert markup in table.rows  # toggles, group and error with markup: shown as text
        table.move_cursor(row=table.get_row_index(markup))
        await pilot.press("enter")
        await pilot.pause(0.1)
        await pilot.press("escape")
        table.move_cursor(row=table.get_row_index(markup))
        await pilot.press("c")  # its group "[/]g" in the compare screen's status line
        await until(pilot, lambda: "[/]g" in str(app.screen.query_one("#compare-status", Static).render()))
        assert "[/]g" in str(app.screen.query_one("#compare-status", Static).render())
        await pilot.press("r")
        await pilot.pause(0.1)
        for key in ("t", "t", "p", "p", "down", "down", "enter", "escape", "S"):
            await pilot.press(key)
            await pilot.pause(0.05)
        await pilot.pause(0.2)
        await pilot.press("v")
        await pilot.pause(0.2)
        await pilot.press("r")
        await pilot.pause(0.1)
        assert app.return_value is None
