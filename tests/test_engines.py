"""Engine-independent launching: children matched by launch id (not pid), sweeps that read only their own runs, the
runner on a non-main thread, liveness judged by a heartbeat seen to advance on the observer's own clock."""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import threading
import time

import pytest

from phenomon import cli, engines, registry, runner, store
from phenomon.config import UsageError
from phenomon.launcher import RunSpec
from phenomon.sweep import Child, run_parallel

GROK = ("p=23", "eval_every=10", "hidden=16", "d_embed=8")


class ThreadHandle:
    """A run on a thread of this process, as thread-pool engines (Dask's workers) run tasks: every run shares this
    process's pid, and none runs on the main thread."""

    pid = os.getpid()

    def __init__(self, spec: RunSpec):
        self.spec, self.code = spec, None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.code = cli.main(self.spec.argv()[3:])

    def poll(self):
        return None if self.thread.is_alive() else self.code

    def wait(self, timeout=None):
        self.thread.join(timeout)
        return self.poll()

    def send_signal(self, sig) -> None:  # noqa: ARG002 - a thread is stopped by its run's stop file
        info = store.launched_run(self.spec.root, self.spec.launch_id)
        if info is not None:
            store.request_stop(info.dir)


class ThreadEngine:
    name = "thread"

    def launch(self, spec, log_dir):
        return ThreadHandle(spec)

    def default_parallel(self):
        return 2


def test_runs_sharing_one_pid_are_each_matched_to_their_launch_and_the_root_is_never_listed(runs, monkeypatch):
    runs.mkdir(parents=True)
    # a stranger's run in the same root, written by this very process (same pid, same host), started first
    w = store.RunWriter(runs / "stranger", store.new_manifest("stranger", "grokking", seed=7))
    w.close("finished")

    def no_listing(*a, **k):
        raise AssertionError("a sweep must read its own runs, not list the whole root")

    monkeypatch.setattr(store, "list_runs", no_listing)
    children = [Child(f"seed {s}", RunSpec("grokking", sets=GROK, seed=s, max_steps=40, root=runs,
                                           extra=("--signals", "none"))) for s in (0, 1)]
    run_parallel(children, runs, engine=ThreadEngine(), out=io.StringIO(), poll_s=0.1)
    infos = [c.info for c in children]
    assert [i.state for i in infos] == ["finished", "finished"], [i.manifest.get("error") for i in infos]
    assert [i.manifest["seed"] for i in infos] == [0, 1]
    assert [i.manifest["launch"] for i in infos] == [c.launch_id for c in children]
    assert infos[0].manifest["pid"] == infos[1].manifest["pid"] == os.getpid() and infos[0].id != infos[1].id
    assert infos[0].manifest["engine"] == "thread"
    assert not any((runs / store.LAUNCHES_DIR).iterdir()), "the sweep removes its launch records when done"


def test_a_launch_record_pointing_at_another_launchs_run_is_not_that_launch(runs):
    runs.mkdir(parents=True)
    w = store.RunWriter(runs / "r1", store.new_manifest("r1", "grokking", launch="lA"))
    store.record_launch(runs, "lB", runs / "r1")  # a stale or copied record
    assert store.launched_run(runs, "lB") is None
    store.record_launch(runs, "lA", runs / "r1")
    assert store.launched_run(runs, "lA").id == "r1"
    w.close("finished")


def _on_thread(fn):
    out = {}

    def target():
        try:
            out["info"] = fn()
        except BaseException as e:  # noqa: BLE001 - the test reports it
            out["error"] = e

    t = threading.Thread(target=target)
    t.start()
    return t, out


def test_the_runner_on_a_worker_thread_is_stopped_by_its_stop_file_and_ends_killed(runs):
    ph = registry.get("grokking")
    cfg = ph.resolve(sets=[*GROK, "max_steps=1000000"])
    t, out = _on_thread(lambda: runner.run(ph, cfg, runner.RunOptions(root=runs, signals=(), invariance=False)))
    deadline, d = time.time() + 120, None
    while time.time() < deadline:  # the run directory exists a moment before its manifest does
        found = [d for d in runs.glob("*/run.json") if d.parent.name[0] != "."] if runs.exists() else []
        if found and store.run_info(found[0].parent).manifest.get("rows", 0) >= 5:
            d = found[0].parent
            break
        time.sleep(0.1)
    assert d is not None, "the run never flushed rows"
    store.request_stop(d)
    t.join(timeout=60)
    assert not t.is_alive() and "error" not in out, out
    info = store.run_info(d)
    assert info.state == "killed" and info.manifest["error"] == "stopped by request"


def test_the_runner_on_a_worker_thread_records_a_failure_never_an_orphan_running_run(runs):
    ph = registry.get("grokking")

    def boom(cfg, ctx):
        raise RuntimeError("simulated failure on a worker thread")

    broken = dataclasses.replace(ph, execute=boom)
    t, out = _on_thread(lambda: runner.run(broken, ph.resolve(sets=list(GROK)), runner.RunOptions(root=runs)))
    t.join(timeout=60)
    assert out["info"].state == "failed"
    assert out["info"].manifest["error"] == "RuntimeError: simulated failure on a worker thread"


# ------------------------------------------------------------------------------------------ liveness


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def _remote_run(runs, heartbeat: float):
    runs.mkdir(parents=True, exist_ok=True)
    m = store.new_manifest("remote", "grokking", host="another-machine", pid=4242)
    (runs / "remote").mkdir()
    store.atomic_write_json(runs / "remote" / "run.json", m)
    (runs / "remote" / "heartbeat").write_text(f"{heartbeat}\n")
    return runs / "remote"


def test_a_remote_heartbeat_that_stops_changing_is_dead_by_the_observers_clock_whatever_its_timestamp(runs):
    clock = Clock()
    obs = store.HeartbeatObserver(clock=clock)
    d = _remote_run(runs, time.time() + 30)  # its clock runs 30 s ahead of ours: by timestamps it looks fresh
    assert store.run_info(d, obs).state == "running"
    clock.t += store.DEAD_AFTER_S + 1
    (d / "heartbeat").write_text(f"{time.time() + 30}\n")  # still fresh-looking by wall clocks, but...
    assert store.run_info(d, obs).state == "running", "...it moved: alive"
    clock.t += store.DEAD_AFTER_S + 1  # and now it has not moved for longer than DEAD_AFTER_S of our time
    info = store.run_info(d, obs)
    assert info.state == "dead" and "unchanged for 60 s (observed here)" in info.dead_reason()


def test_a_remote_heartbeat_seen_to_advance_is_alive_even_when_its_clock_is_an_hour_behind(runs):
    clock = Clock()
    obs = store.HeartbeatObserver(clock=clock)
    d = _remote_run(runs, time.time() - 3600)
    assert store.run_info(d, obs).state == "dead", "a first look can only compare clocks (the fallback)"
    clock.t += 5
    (d / "heartbeat").write_text(f"{time.time() - 3595}\n")
    info = store.run_info(d, obs)
    assert info.state == "running" and info.heartbeat_age == 0.0
    clock.t += 20
    assert store.run_info(d, obs).heartbeat_age == 20.0, "age on the observer's clock, since it last moved"


def test_a_heartbeat_from_the_future_is_skew_until_it_is_seen_to_move(runs):
    clock = Clock()
    obs = store.HeartbeatObserver(clock=clock)
    d = _remote_run(runs, time.time() + 86400)
    assert store.run_info(d, obs).state == "skew"
    clock.t += 5
    (d / "heartbeat").write_text(f"{time.time() + 86405}\n")
    assert store.run_info(d, obs).state == "running"


# ------------------------------------------------------------------------------------------ choosing an engine


def test_engine_choice_errors_are_one_line_and_ray_is_never_imported_for_local(monkeypatch):
    monkeypatch.delenv("PHENOMON_ENGINE", raising=False)
    assert isinstance(engines.choice(argparse.Namespace()).make(), engines.LocalEngine)
    monkeypatch.setenv("PHENOMON_ENGINE", "dask")
    with pytest.raises(UsageError, match="unknown engine 'dask'; valid: local, ray"):
        engines.choice(argparse.Namespace())
    with pytest.raises(UsageError, match="need --engine ray"):
        engines.EngineChoice("local", cpus_per_run=2).make()


@pytest.mark.parametrize("args, message", [
    (["--engine", "spark"], "unknown engine 'spark'; valid: local, ray"),
    (["--cpus-per-run", "0"], "--cpus-per-run must be a finite number > 0"),
    (["--gpus-per-run", "a quarter"], "--gpus-per-run expects a number"),
    (["--gpus-per-run", "0.25"], "need --engine ray"),
])
def test_bad_engine_flags_are_one_line_exit_2_and_create_nothing(runs, capsys, args, message):
    assert cli.main(["run", "grokking", "--runs", str(runs), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not runs.exists()


def test_without_ray_installed_the_ray_engine_names_the_install_command(monkeypatch, runs, capsys):
    import builtins

    real = builtins.__import__

    def no_ray(name, *a, **k):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    assert cli.main(["run", "grokking", "--engine", "ray", "--runs", str(runs)]) == 2
    err = capsys.readouterr().err
    assert "pip install 'phenomon[ray]'" in err and err.count("\n") == 1


def test_queued_runs_start_costliest_first_and_are_drawn_in_the_given_order(runs):
    started = []

    class Done:
        pid = 0

        def poll(self):
            return 0

    class Recorder:
        name = "recorder"

        def launch(self, spec, log_dir):
            started.append(spec.sets[0])
            return Done()

        def default_parallel(self):
            return 1

    children = [Child(f"width {w}", RunSpec("double_descent", sets=(f"width={w}",), root=runs), cost=w * w)
                for w in (8, 384, 16, 384, 64)]
    out = io.StringIO()
    run_parallel(children, runs, engine=Recorder(), out=out, poll_s=0.01)
    assert started == ["width=384", "width=384", "width=64", "width=16", "width=8"]  # ties keep the given order
    assert [line.split()[1] for line in out.getvalue().splitlines()[:5]] == ["8", "384", "16", "384", "64"]


def test_the_double_descent_sweep_starts_its_widest_runs_first():
    ph = registry.get("double_descent")
    widths = ph.resolve().widths
    assert sorted(widths, key=lambda w: -ph.sweep_cost(w)) == sorted(widths, reverse=True)


def test_dead_and_skew_notes_move_in_coarse_steps():
    """The runs table re-renders every cell when any cell changes: a note counting seconds made an idle monitor
    re-render its table every second for each dead run (issue 12)."""
    from phenomon.store.runs import _liveness

    m = {"host": "elsewhere", "pid": 1}
    notes = {_liveness(m, None, still_s=s)[1] for s in (61, 63.5, 69.9)}
    assert len(notes) == 1 and "60 s" in notes.pop()
    assert _liveness(m, None, still_s=61)[1] != _liveness(m, None, still_s=71)[1]
    skews = {_liveness(m, -s)[1] for s in (3600.0, 3601.0, 3659.0)}
    assert len(skews) == 1, skews
