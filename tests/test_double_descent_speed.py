"""Double descent's fast path (one Lightning step per epoch) and device hygiene: the run trains exactly the plain
minibatch loop of its recipe, logs the same rows at the same steps, is deterministic, and creates no tensor on an
implicit device."""

from __future__ import annotations

import copy
import dataclasses
import io
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import pytorch_lightning as L
import torch
import torch.nn.functional as F
from polars.testing import assert_frame_equal
from torch.overrides import TorchFunctionMode

from phenomon import registry, runner, store
from phenomon.datamodules.mnist1d import EpochBatches, ShuffledBatches
from phenomon.models.double_descent import MLP, WidthModule, analytic_ok, sgd_epoch
from phenomon.phenomena.double_descent.training import build_module, datamodule

DD = registry.get("double_descent")
REPO = Path(__file__).resolve().parents[1]
# 40 epochs of 4 minibatches (160 steps): evaluations every 5 epochs, medium signals every 16 steps, expensive 40
TINY = dataclasses.replace(DD.defaults(), data="teacher", teacher_dim=12, width=16, train_size=400, train_pool=400,
                           val_size=100, test_size=300, epochs=40, eval_every=5, lr=0.05)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("PHENOMON_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _run(root: Path, cfg=TINY, **kw) -> pl.DataFrame:
    info = runner.run(DD, cfg, runner.RunOptions(root=root, accelerator="cpu", stream=io.StringIO(), **kw))
    assert info.state == "finished", info.manifest.get("error")
    return store.wide(store.read_metrics(info.dir))


def _plain(cfg) -> dict[int, dict[str, float]]:
    """The recipe as a bare PyTorch loop: {step: {train/loss, test/error, ...}} at each evaluation."""
    dm = datamodule(cfg)
    net = build_module(cfg, dm.train[0], dm.num_classes).net
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    (x, y), B = dm.train, cfg.batch_size
    g, steps, out = torch.Generator().manual_seed(cfg.seed), len(y) // B, {}
    for epoch in range(1, cfg.epochs + 1):
        perm = torch.randperm(len(y), generator=g)
        for i in range(steps):
            idx = perm[i * B:(i + 1) * B]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if epoch % cfg.eval_every == 0:
            with torch.no_grad():
                row = {}
                for stage, (sx, sy) in (("train", dm.train), ("test", dm.test), ("val", dm.val)):
                    logits = net(sx)
                    row[f"{stage}/loss"] = F.cross_entropy(logits, sy).item()
                    row[f"{stage}/error"] = (logits.argmax(1) != sy).float().mean().item()
            out[epoch * steps] = row
    return out


def test_a_run_trains_exactly_the_plain_minibatch_loop(tmp_path):
    frame = _run(tmp_path, signals=())
    ev = frame.filter(pl.col("test/error").is_not_null()).sort("step")
    plain = _plain(TINY)
    assert ev["step"].to_list() == list(plain), "an evaluation every 5 epochs, at the same optimiser steps"
    assert ev["epochs"].to_list() == [s / 4 for s in plain]
    for name in ("train/loss", "train/error", "test/loss", "test/error", "val/error"):
        assert ev[name].to_list() == pytest.approx([plain[s][name] for s in plain], abs=1e-6), name
    assert plain[160]["train/error"] < 0.5, "the tiny config learns: equality of two untrained runs proves little"
    final = frame.filter(pl.col("final/step").is_not_null())
    assert final["final/step"].to_list() == [160.0] and final["final/test_error"][0] == ev["test/error"][-1]


def _autograd_epoch(net, opt, xs, ys):
    for x, y in zip(xs, ys):
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss


@pytest.mark.parametrize("depth,momentum,weight_decay", [(2, 0.9, 0.0), (3, 0.9, 5e-3), (1, 0.0, 1e-3)])
def test_the_analytic_step_makes_the_updates_autograd_and_sgd_make(depth, momentum, weight_decay):
    torch.manual_seed(0)
    a = MLP(12, 16, 10, depth)
    b = copy.deepcopy(a)
    xs, ys = torch.randn(25, 40, 12), torch.randint(0, 10, (25, 40))
    oa, ob = (torch.optim.SGD(n.parameters(), lr=0.05, momentum=momentum, weight_decay=weight_decay) for n in (a, b))
    for _ in range(3):  # epochs: momentum buffers carry over through the optimizer's state
        la, lb = _autograd_epoch(a, oa, xs, ys), sgd_epoch(b, ob, xs, ys, 10)
        assert float(lb) == pytest.approx(float(la), abs=1e-6), "the last minibatch's loss, before its update"
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-6) and torch.allclose(p.grad, q.grad, atol=1e-6)
    assert not torch.allclose(a[0].weight, MLP(12, 16, 10, depth)[0].weight), "it trained"
    oa.step(), ob.step()  # a later torch step carries on from the same momentum buffers
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(a.parameters(), b.parameters()))


def test_a_run_uses_the_analytic_step_and_autograd_gives_the_same_rows(tmp_path, monkeypatch):
    import phenomon.models.double_descent as dd

    calls = []
    real = dd.sgd_epoch
    monkeypatch.setattr(dd, "sgd_epoch", lambda *a: calls.append(1) or real(*a))
    fast = _run(tmp_path / "fast", signals=(), invariance=False)
    assert len(calls) == TINY.epochs, "one analytic call per epoch"
    monkeypatch.setattr(dd.WidthModule, "analytic", False)
    slow = _run(tmp_path / "slow", signals=(), invariance=False)
    assert len(calls) == TINY.epochs, "analytic = False trains with autograd"
    for name in ("train/loss", "test/error", "val/loss"):
        assert fast[name].drop_nulls().to_list() == pytest.approx(slow[name].drop_nulls().to_list(), abs=1e-5)


class _SquaredError(WidthModule):
    def loss(self, logits, y):
        return F.mse_loss(logits, F.one_hot(y, 10).float())


def test_what_the_analytic_step_does_not_cover_trains_with_autograd():
    def ok(module, opt=None):
        return analytic_ok(module, opt or torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9))

    assert ok(WidthModule(MLP(12, 8, 10)))
    assert not ok(_SquaredError(MLP(12, 8, 10))), "another loss"
    m = WidthModule(MLP(12, 8, 10))
    assert not ok(m, torch.optim.Adam(m.parameters())), "another optimiser"
    assert not ok(m, torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True)), "Nesterov"
    assert not ok(m, torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, dampening=0.5)), "dampening"
    assert not ok(m, torch.optim.SGD(list(m.parameters())[:2], lr=0.1)), "not every parameter trained"
    assert not ok(WidthModule(torch.nn.Sequential(torch.nn.Linear(12, 8), torch.nn.Tanh(), torch.nn.Linear(8, 10))))
    frozen = MLP(12, 8, 10)
    frozen[0].weight.requires_grad_(False)
    assert not ok(WidthModule(frozen)), "a frozen layer"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not ok(WidthModule(MLP(12, 8, 10))), "mixed precision"
    hooked = MLP(12, 8, 10)
    hooked[1].register_forward_hook(lambda *a: None)
    assert not ok(WidthModule(hooked)), "a hook"


def test_signals_and_nulls_are_logged_at_the_same_steps_as_per_minibatch_training(tmp_path):
    frame = _run(tmp_path)
    at = lambda c: frame.filter(pl.col(c).is_not_null())["step"].sort().to_list()  # noqa: E731
    assert at("null/step") == [0, *range(20, 161, 20)], "nulls at step 0 and at every evaluation"
    assert at("signal/weight_norm") == at("null/step"), "cheap signals with the evaluations"
    assert at("signal/grad_norm") == [0, *range(16, 161, 16)], "medium: every 16 steps (4 epochs)"
    assert at("signal/sharpness") == [0, 40, 80, 120, 160], "expensive: 4 times per run"
    assert frame["null/step"].drop_nulls().to_list() == [float(s) for s in at("null/step")]


def test_same_seed_same_rows_other_seed_other_rows(tmp_path):
    a, b = (_run(tmp_path / d).drop("time/signals_ms").sort("step") for d in ("a", "b"))
    # metrics, signals and nulls, value for value (the wide frame's column order follows the flushes' timing)
    assert_frame_equal(a, b, check_column_order=False)
    c = _run(tmp_path / "c", dataclasses.replace(TINY, seed=1), signals=(), invariance=False)
    assert c["test/error"].drop_nulls().to_list() != a["test/error"].drop_nulls().to_list()


def test_epoch_batches_are_the_per_step_minibatches_in_order():
    x, y = torch.randn(230, 3), torch.arange(230)
    per_step, per_epoch = iter(ShuffledBatches(x, y, 50, seed=7)), iter(EpochBatches(x, y, 50, seed=7))
    for _ in range(3):
        xs, ys = next(per_epoch)
        assert xs.shape == (4, 50, 3) and ys.shape == (4, 50), "whole batches only: the ragged 30 are dropped"
        for xb, yb in zip(xs, ys):
            sx, sy = next(per_step)
            assert torch.equal(xb, sx) and torch.equal(yb, sy)
    xs, ys = next(iter(EpochBatches(x, y, None, seed=0)))
    assert xs.shape == (1, 230, 3) and torch.equal(ys[0], y), "full batch: one step per epoch"


def test_max_steps_inside_an_epoch_stops_at_exactly_that_step():
    cfg = dataclasses.replace(TINY, epochs=3)
    dm = datamodule(cfg)
    module = build_module(cfg, dm.train[0], dm.num_classes)
    trainer = L.Trainer(accelerator="cpu", max_steps=10, max_epochs=-1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, limit_val_batches=0)
    trainer.fit(module, datamodule=dm)
    assert trainer.global_step == 10, "10 minibatch steps: two whole epochs and half of the third"


FACTORIES = {getattr(torch, f) for f in ("zeros", "ones", "empty", "full", "eye", "arange", "linspace", "tensor",
                                         "as_tensor", "rand", "randn", "randint", "randperm", "normal")}
OURS = tuple(str(REPO / d) for d in ("models", "datamodules", "callbacks", "phenomon"))


class _ImplicitDevices(TorchFunctionMode):
    """Records each tensor factory called from phenomon's own code without a `device`: on a GPU run such a tensor
    is on the CPU, and fails (or silently copies) where it meets the model or the data."""

    def __init__(self):
        super().__init__()
        self.sites: set[str] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FACTORIES and kwargs.get("device") is None:
            f = sys._getframe(1)
            while f is not None and "/torch/" in f.f_code.co_filename:
                f = f.f_back
            if f is not None and f.f_code.co_filename.startswith(OURS):
                self.sites.add(f"{Path(f.f_code.co_filename).relative_to(REPO)}:{f.f_lineno} torch.{func.__name__}")
        return func(*args, **kwargs)


class _WatchTraining(L.Callback):
    """The mode above while training runs (data generation before it is CPU work by design)."""

    def __init__(self):
        self.mode = _ImplicitDevices()

    def on_train_start(self, trainer, pl_module):
        self.mode.__enter__()

    def on_train_end(self, trainer, pl_module):
        self.mode.__exit__(None, None, None)


@pytest.mark.parametrize("model", ["mlp", "random_features"])
def test_training_creates_no_tensor_on_an_implicit_device(tmp_path, model):
    cfg = dataclasses.replace(TINY, model=model, epochs=10, width=24)
    watch = _WatchTraining()
    info = runner.run(DD, cfg, runner.RunOptions(root=tmp_path, accelerator="cpu", stream=io.StringIO(),
                                                 extra_callbacks=[watch]))
    assert info.state == "finished", info.manifest.get("error")
    assert sorted(watch.mode.sites) == [], "tensors created without a device while training"
    dropped = set(info.manifest.get("signals_dropped", {}))
    assert dropped == ({"effective_parameters"} if model == "mlp" else set()), "every signal ran"
    frame = store.wide(store.read_metrics(info.dir))
    assert frame["test/error"].drop_nulls().len() >= 1 and frame["signal/weight_norm"].drop_nulls().len() >= 1


def test_the_device_check_sees_a_tensor_created_without_a_device():
    mode = _ImplicitDevices()
    with mode:
        torch.zeros(3, device="cpu")
        from phenomon.callbacks import signals as S

        S.effective_parameters(torch.randn(5, 3, device="cpu"), torch.randn(2, 3, device="cpu"))
    assert mode.sites == set(), "explicit devices and `_like` creations pass"
    with mode:
        exec(compile("import torch\ntorch.ones(2)", str(REPO / "callbacks" / "probe_example.py"), "exec"))
    assert mode.sites == {"callbacks/probe_example.py:2 torch.ones"}


def test_gpu_bench_without_a_gpu_says_so_and_exits_cleanly(tmp_path):
    env = {**os.environ, "PATH": f"{tmp_path}:/usr/bin:/bin"}  # no nvidia-smi on this PATH
    r = subprocess.run(["bash", str(REPO / "bench" / "gpu.sh")], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0 and "no GPU" in r.stdout and r.stderr == "", (r.stdout, r.stderr)


@pytest.mark.slow  # imports torch in a fresh interpreter
def test_gpu_bench_with_a_cpu_only_torch_says_so_and_exits_cleanly(tmp_path):
    env = {**os.environ, "PATH": f"{tmp_path}:/usr/bin:/bin"}
    fake = tmp_path / "nvidia-smi"  # a driver that lists a GPU, with a CPU-only torch: also no run, and why
    fake.write_text("#!/bin/sh\necho 'GPU 0: Fake'\n")
    fake.chmod(0o755)
    r = subprocess.run(["bash", str(REPO / "bench" / "gpu.sh")], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0 and "torch sees no CUDA device" in r.stdout, (r.stdout, r.stderr)


def test_the_cache_key_copy_of_mnist1d_defaults_matches_mnist1d():
    from mnist1d.data import get_dataset_args

    from phenomon.datamodules.mnist1d import MNIST1D_ARGS

    assert MNIST1D_ARGS == {k: v for k, v in vars(get_dataset_args()).items() if k != "url"}, \
        "mnist1d's defaults changed: update MNIST1D_ARGS (cached data would otherwise be served for the old ones)"


def test_a_cached_dataset_loads_without_importing_mnist1d(tmp_path, monkeypatch):
    from phenomon.datamodules.mnist1d import generate

    monkeypatch.setenv("PHENOMON_CACHE", str(tmp_path))
    x, y = generate(200, seed=5)  # a miss: generated by mnist1d, then cached
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)  # from here on, importing mnist1d.data fails
    x2, y2 = generate(200, seed=5)
    assert x.shape == (200, 40) and (x2 == x).all() and (y2 == y).all(), "a hit reads the cache alone"
    with pytest.raises(ImportError):
        generate(300, seed=5)  # a miss needs mnist1d: the check above could have failed
