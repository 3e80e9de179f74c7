"""The streaming logger works with any LightningModule, and under DDP only global rank zero writes."""

from __future__ import annotations

import pytorch_lightning as L
from pytorch_lightning.demos.boring_classes import BoringModel
from pytorch_lightning.utilities import rank_zero_only

from phenomon.callbacks.stream import RunStoreLogger
from phenomon import store


class LoggingBoring(BoringModel):
    """Lightning's own demo model, logging the way any user's module would."""

    def training_step(self, batch, batch_idx):
        out = super().training_step(batch, batch_idx)
        self.log("train_loss", out["loss"])
        return out

    def validation_step(self, batch, batch_idx):
        out = super().validation_step(batch, batch_idx)
        self.log("val_loss", out["x"])
        return out


def _fit(logger, steps=20):
    L.Trainer(max_steps=steps, limit_val_batches=2, val_check_interval=10, logger=logger, log_every_n_steps=5,
              enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False).fit(LoggingBoring())


def test_logger_streams_a_foreign_module(runs):
    logger = RunStoreLogger(root=runs, name="boring")
    logger.log_hyperparams({"lr": 0.1, "note": "foreign"})
    _fit(logger)
    [info] = store.list_runs(runs)
    assert info.state == "finished" and info.phenomenon == "boring"
    assert info.manifest["config"] == {"lr": 0.1, "note": "foreign"}
    rows = store.read_metrics(info.dir)
    train = rows.filter(rows["name"] == "train_loss")
    # rows carry the optimiser steps taken (trainer.global_step) when the value is logged, training and validation
    # alike; Lightning's own step would read 4, 9, 14, 19 and 9, 19
    assert train["step"].to_list() == [5, 10, 15, 20], "every log_every_n_steps steps"
    assert rows.filter(rows["name"] == "val_loss")["step"].to_list() == [10, 20], "val_check_interval 10"
    assert "epoch" not in rows["name"].to_list(), "epoch is a column, not a metric"


def test_without_a_trainer_rows_take_the_step_they_are_given(runs):
    logger = RunStoreLogger(root=runs, name="manual")
    logger.log_metrics({"x": 1.0}, step=7)
    logger.finalize("success")
    [info] = store.list_runs(runs)
    assert store.read_metrics(info.dir)["step"].to_list() == [7]


def test_only_global_rank_zero_writes(runs, monkeypatch):
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    logger = RunStoreLogger(root=runs, name="boring")
    logger.log_metrics({"x": 1.0}, step=1)
    logger.finalize("success")
    assert not runs.exists() or list(runs.iterdir()) == []
