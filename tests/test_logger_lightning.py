"""RunStoreLogger behaves like Lightning's own loggers: directories, checkpoints, stages, failures, resumes, hparams."""

from __future__ import annotations

import json

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from phenomon import store
from phenomon.callbacks import RunStoreLogger
from phenomon.callbacks.signal_callback import SignalCallback

pytestmark = pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no")
QUIET = dict(enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)


class _ClassifierBody:
    """A small classifier as a Lightning user writes one: log_dict, on_epoch, prog_bar, nested hyperparameters."""

    def __init__(self, hidden: int = 8, optim: dict | None = None, crash_at: int = -1, interrupt_at: int = -1):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def training_step(self, batch, batch_idx):
        if self.global_step == self.hparams.crash_at:
            raise RuntimeError("boom in training_step")
        if self.global_step == self.hparams.interrupt_at:
            raise KeyboardInterrupt
        x, y = batch
        logits = self.net(x)
        loss = nn.functional.cross_entropy(logits, y)
        acc = (logits.argmax(-1) == y).float().mean()
        self.log_dict({"train_loss": loss, "train_acc": acc}, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self.net(x), y), prog_bar=True)

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test_acc", (self.net(x).argmax(-1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.optim["lr"] if self.hparams.optim else 0.1)


class Classifier(_ClassifierBody, pl.LightningModule):
    pass


def _data(n: int = 64) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=16)


def _trainer(logger, **kw) -> pl.Trainer:
    return pl.Trainer(logger=logger, log_every_n_steps=1, enable_checkpointing=kw.pop("enable_checkpointing", False),
                      **QUIET, **kw)


def _one(runs) -> store.RunInfo:
    [info] = store.list_runs(runs)
    return info


def test_classifier_fit_then_test_is_one_run_with_structured_hparams_and_checkpoints(runs):
    logger = RunStoreLogger(save_dir=runs, name="clf")
    assert logger.version and not runs.exists(), "reading the version creates nothing"
    model = Classifier(optim={"name": "sgd", "lr": 0.1, "betas": [0.9, 0.99]})
    trainer = _trainer(logger, max_epochs=2, limit_val_batches=1, enable_checkpointing=True)
    trainer.fit(model, _data(), _data(16))
    assert trainer.log_dir == logger.log_dir == logger.save_dir == str(runs / logger.version)
    info = _one(runs)
    assert info.state == "finished" and info.id == logger.version
    m = info.manifest
    assert m["config"]["optim"] == {"name": "sgd", "lr": 0.1, "betas": [0.9, 0.99]}, "nested, not a string"
    assert m["progress"] == {"step": 8, "max_steps": 8}, "2 epochs of 4 batches, from Lightning's estimate"
    assert {"lightning", "pytorch-lightning"} <= set(m["versions"])
    ck = m["checkpoints"]
    assert ck["dir"] == "checkpoints" and (info.dir / ck["best"]).is_file(), "checkpoints live in the run"
    assert not (runs / "clf").exists(), "nothing at save_dir/name/version"

    trainer.test(model, _data(16))
    info = _one(runs)
    assert info.state == "finished", "finished again once the test stage ends"
    rows = store.read_metrics(info.dir)
    names = set(rows["name"].to_list())
    assert {"train_loss_step", "train_loss_epoch", "train_acc_epoch", "val_loss", "test_acc"} <= names
    assert info.manifest["rows"] == rows.height and "resumed" not in info.manifest, "one run, one process"


def test_hyperparameter_metrics_are_logged_at_step_zero(runs):
    logger = RunStoreLogger(runs, name="hp")
    logger.log_hyperparams({"a": {"b": float("nan"), "c": (1, 2)}}, metrics={"hp_metric": 0.5})
    logger.finalize("success")
    info = _one(runs)
    assert info.manifest["config"] == {"a": {"b": "nan", "c": [1, 2]}}, "strict JSON, structure kept"
    rows = store.read_metrics(info.dir)
    assert rows.select("step", "name", "value").rows() == [(0, "hp_metric", 0.5)]


def test_a_crash_in_training_step_is_failed_with_error_and_traceback(runs):
    with pytest.raises(RuntimeError, match="boom"):
        _trainer(RunStoreLogger(runs, name="crash"), max_steps=6).fit(Classifier(crash_at=3), _data())
    m = _one(runs).manifest
    assert m["status"] == "failed" and m["error"] == "RuntimeError: boom in training_step"
    assert "training_step" in m["traceback"] and "Traceback" in m["traceback"]
    assert m["progress"]["step"] == 3


def test_ctrl_c_is_killed(runs):
    with pytest.raises(SystemExit):  # Lightning handles KeyboardInterrupt, finalizes, and exits 1
        _trainer(RunStoreLogger(runs, name="int"), max_steps=6).fit(Classifier(interrupt_at=2), _data())
    m = _one(runs).manifest
    assert m["status"] == "killed" and "KeyboardInterrupt" in m["error"]


def test_version_continues_a_run_as_a_requeued_job_does(runs):
    for steps in (3, 6):
        _trainer(RunStoreLogger(runs, name="slurm", version="job-42"), max_steps=steps).fit(
            Classifier(), _data(), ckpt_path=None)
    info = _one(runs)
    assert info.id == "job-42" and info.state == "finished"
    rows = store.read_metrics(info.dir)
    train = rows.filter(rows["name"] == "train_loss_step")
    assert train.height == 9 and info.manifest["rows"] == rows.height, "the second fit appended its rows"


def test_a_resume_from_another_process_is_recorded(runs):
    _trainer(RunStoreLogger(runs, name="r", version=7), max_steps=2).fit(Classifier(), _data())
    run_json = runs / "r-version_7" / "run.json"
    m = json.loads(run_json.read_text())
    m["pid_started"] = "another process"
    run_json.write_text(json.dumps(m))
    _trainer(RunStoreLogger(runs, name="r", version=7), max_steps=2).fit(Classifier(), _data())
    info = _one(runs)
    assert len(info.manifest["resumed"]) == 1 and info.manifest["rows"] == 2 * m["rows"]


def test_signals_reach_every_logger_once_per_step(runs, tmp_path):
    store_logger = RunStoreLogger(runs, name="two")
    csv = CSVLogger(tmp_path / "csv")
    signals = SignalCallback(names=("weight_norm",), every={"cheap": 1})
    _trainer([csv, store_logger], max_steps=4, accumulate_grad_batches=2, callbacks=[signals]).fit(
        Classifier(), _data(128))
    rows = store.read_metrics(_one(runs).dir)
    sig = rows.filter(rows["name"] == "signal/weight_norm")
    assert sig["step"].to_list() == [0, 1, 2, 3, 4], "every step once, although a step spans two batches"
    assert _one(runs).manifest.get("signal_costs"), "costs reach the run although the store logger is second"
    csv_rows = (csv.log_dir + "/metrics.csv")
    assert "signal/weight_norm" in open(csv_rows).readline()


def test_loggers_made_in_the_same_second_name_different_runs(runs):
    a, b = RunStoreLogger(runs, name="same"), RunStoreLogger(runs, name="same")
    assert a.version != b.version and not runs.exists()


def test_ddp_spawn_parent_reading_the_version_creates_no_run(runs):
    logger = RunStoreLogger(runs, name="spawn")
    state = logger.__getstate__()
    assert state["_writer"] is None and state["_trainer"] is None
    _ = logger.version, logger.log_dir, logger.save_dir, logger.name
    assert not runs.exists()


def test_boring_model_and_the_classifier_under_the_lightning_package(runs):
    L = pytest.importorskip("lightning")
    from lightning.pytorch.demos.boring_classes import BoringModel as LBoring

    L.Trainer(logger=RunStoreLogger(runs, name="unified"), max_steps=3, **QUIET).fit(LBoring())
    info = _one(runs)
    assert info.state == "finished" and info.manifest["progress"]["step"] == 3

    clf = type("UnifiedClassifier", (_ClassifierBody, L.LightningModule), {})(optim={"lr": 0.1, "nested": {"a": 1}})
    logger = RunStoreLogger(runs, name="unified-clf")
    trainer = L.Trainer(logger=logger, max_epochs=1, log_every_n_steps=1, **QUIET)
    trainer.fit(clf, _data(), _data(16))
    trainer.test(clf, _data(16))
    m = store.run_info(runs / logger.version).manifest
    assert m["status"] == "finished" and m["config"]["optim"] == {"lr": 0.1, "nested": {"a": 1}}
    assert trainer.log_dir == logger.log_dir and (runs / logger.version / m["checkpoints"]["best"]).is_file()
    names = set(store.read_metrics(runs / logger.version)["name"].to_list())
    assert {"train_loss_epoch", "val_loss", "test_acc"} <= names


@pytest.mark.parametrize("status, exc, expect", [
    ("success", None, ("finished", None)),
    ("finished", None, ("killed", "requeued by SLURM")),  # Lightning's requeue handler is the only one to say it
    ("failed", KeyboardInterrupt(), ("killed", "interrupted")),
    ("failed", None, ("failed", "Lightning finalized the run as 'failed'")),
    ("failed", ValueError("bad"), ("failed", "ValueError: bad")),
])
def test_lightnings_finalize_status_and_exception_as_a_run_status(status, exc, expect):
    from phenomon.callbacks.run_fields import outcome

    state, error, tb = outcome(status, exc)
    assert state == expect[0] and (error or "").startswith(expect[1] or "")
    assert (tb is not None) == isinstance(exc, ValueError)


def test_a_run_another_live_process_writes_is_not_continued(runs):
    w = store.RunWriter(runs / "busy", store.new_manifest("busy", "clf", pid=1), background=False)  # pid 1 lives
    with pytest.raises(RuntimeError, match="is being written by pid 1"):
        RunStoreLogger(runs, name="clf", version="busy").log_metrics({"x": 1.0}, step=0)
    w.close("killed")
    logger = RunStoreLogger(runs, name="clf", version="busy")  # once it has stopped, the run continues
    logger.log_metrics({"x": 1.0}, step=0)
    logger.finalize("success")
    assert _one(runs).manifest["status"] == "finished" and _one(runs).manifest["rows"] == 1
