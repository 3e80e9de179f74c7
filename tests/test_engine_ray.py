"""The ray engine on a local Ray (`ray.init(num_cpus=2)`, one session for the module: start-up is 13–37 s here).

Skipped when Ray is not installed (`pip install 'phenomon[ray]'`; `./phenomon.sh test` installs it). The 4-run
sweep against the local engine starts 4 cold processes as well and is slow (4.5 min at load 25 on the shared
2-core machine): it runs with `./phenomon.sh slow`; the others take seconds once Ray is up."""

from __future__ import annotations

import time

import pytest

ray = pytest.importorskip("ray")

from phenomon import cli, engines, store  # noqa: E402
from phenomon.engines.ray_engine import RayEngine  # noqa: E402
from phenomon.launcher import RunSpec  # noqa: E402

SWEEP = ["run", "double_descent", "--preset", "teacher", "--set", "widths=40,100,200,400", "--set", "seeds=0",
         "--signals", "none"]


@pytest.fixture(scope="module")
def ray_session():
    if ray.is_initialized():
        ray.shutdown()
    for attempt in (1, 2):
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            break
        except Exception as e:  # noqa: BLE001 - Ray gives its raylet 30 s, hard-coded: too short at load 35
            ray.shutdown()
            if attempt == 2:
                load = open("/proc/loadavg").read().split()[0]
                pytest.skip(f"a local Ray did not start on this machine (load {load}): {e}")
    yield
    ray.shutdown()


def test_an_unreachable_cluster_is_one_line_and_creates_nothing(tmp_path, capsys, monkeypatch):
    if ray.is_initialized():
        pytest.skip("a Ray session is already up in this process")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    root = tmp_path / "runs"
    assert cli.main(["experiment", "double_descent", "--engine", "ray", "--address", "auto", "--runs", str(root)]) == 2
    err = capsys.readouterr().err
    assert "no Ray cluster at auto" in err and "ray start --head" in err and err.count("\n") == 1
    assert not root.exists()


def _verdicts(root, capsys):
    out = capsys.readouterr().out
    runs = sorted(store.list_runs(root), key=lambda r: r.manifest["config"]["width"])
    group = [ln for ln in out.splitlines() if ln.startswith("group ")]
    return [(r.manifest["config"]["width"], r.state, r.manifest.get("verdict")) for r in runs], \
        group[-1].split(": ", 1)[1], runs


@pytest.mark.slow
def test_a_sweep_on_ray_writes_one_root_with_the_local_engines_verdicts(ray_session, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PHENOMON_ENGINE", raising=False)
    assert cli.main([*SWEEP, "--runs", str(tmp_path / "local")]) == 0
    local, local_group, _ = _verdicts(tmp_path / "local", capsys)
    assert cli.main([*SWEEP, "--runs", str(tmp_path / "ray"), "--engine", "ray", "--cpus-per-run", "1"]) == 0
    on_ray, ray_group, runs = _verdicts(tmp_path / "ray", capsys)
    assert len(on_ray) == 4 and {r[1] for r in on_ray} == {"finished"}
    assert on_ray == local and ray_group == local_group and "double descent: peak" in ray_group
    assert {r.manifest["engine"] for r in runs} == {"ray"} and len({r.manifest["launch"] for r in runs}) == 4
    # two workers on two CPUs: runs share worker pids, which is why runs are matched by launch id
    assert len({r.manifest["pid"] for r in runs}) <= 2


def _wait_rows(root, launch_id, n=5, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = store.launched_run(root, launch_id)
        if info is not None and info.manifest.get("rows", 0) >= n:
            return info
        time.sleep(0.2)
    raise AssertionError("the run never flushed rows")


def test_a_cancelled_run_is_killed(ray_session, runs):
    eng = RayEngine()
    spec = RunSpec("grokking", sets=("p=23", "eval_every=5", "hidden=16", "d_embed=8", "max_steps=1000000"),
                   root=runs, launch_id=engines.new_launch_id(), engine="ray", extra=("--signals", "none"))
    h = eng.launch(spec, runs / ".logs")
    _wait_rows(runs, spec.launch_id)
    h.terminate()
    h.wait(timeout=120)
    info = store.launched_run(runs, spec.launch_id)
    assert info.state == "killed", info.manifest.get("error")
    assert store.read_metrics(info.dir).height == info.manifest["rows"] > 0


def _failing_target(how: str):
    """A task that starts a real run whose training fails: by raising, or by its worker dying outright."""

    def target(argv):
        import dataclasses
        import os

        from phenomon import registry, runner

        ph = registry.get("grokking")

        def boom(cfg, ctx):
            if how == "crash":
                os._exit(3)  # the worker dies: the run cannot record its own end
            raise RuntimeError("simulated failure in a Ray task")

        root, launch = argv[argv.index("--runs") + 1], argv[argv.index("--launch-id") + 1]
        runner.run(dataclasses.replace(ph, execute=boom), ph.resolve(sets=["p=23"]),
                   runner.RunOptions(root=root, launch_id=launch, engine="ray", signals=(), invariance=False))
        raise RuntimeError("simulated failure in a Ray task")

    return target


@pytest.mark.parametrize("how, error", [
    ("raise", "RuntimeError: simulated failure in a Ray task"),
    ("crash", "the Ray worker running it died"),
])
def test_a_task_that_raises_or_whose_worker_dies_leaves_its_run_failed_with_the_error(ray_session, runs, how, error):
    eng = RayEngine(target=_failing_target(how))
    spec = RunSpec("grokking", root=runs, launch_id=engines.new_launch_id(), engine="ray")
    h = eng.launch(spec, runs / ".logs")
    assert h.wait(timeout=180) != 0
    info = store.launched_run(runs, spec.launch_id)
    assert info is not None and info.state == "failed"
    assert info.manifest["error"].startswith(error), info.manifest["error"]


@pytest.mark.slow
def test_a_local_ray_started_from_the_monitors_launch_thread_outlives_that_thread(runs, monkeypatch):
    """The monitor launches from a short-lived worker thread; a local Ray started there died with it (Linux's
    parent-death signal follows the thread), so the run never ran. Slow: it needs a Ray session of its own."""
    import threading

    from phenomon.tui import launches

    if ray.is_initialized():
        ray.shutdown()
    monkeypatch.setenv("PHENOMON_ENGINE", "ray")
    monkeypatch.setattr(launches, "_ENGINE", [])
    box = {}
    spec = RunSpec("grokking", sets=("p=23", "hidden=16", "d_embed=8"), max_steps=20, root=runs,
                   extra=("--signals", "none"))
    t = threading.Thread(target=lambda: box.update(h=launches.launch(spec, runs / ".logs")))
    t.start()
    t.join()
    try:
        assert box["h"].wait(timeout=300) == 0
        [info] = store.list_runs(runs)
        assert info.state == "finished" and info.manifest["engine"] == "ray"
    finally:
        ray.shutdown()
