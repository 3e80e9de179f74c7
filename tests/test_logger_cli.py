"""LightningCLI takes RunStoreLogger by class path, under pytorch_lightning and under the unified lightning package."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from phenomon import store

SCRIPT = """
from {pkg}.cli import LightningCLI
from {pkg}.demos.boring_classes import BoringDataModule, BoringModel


class LoggingBoring(BoringModel):
    def training_step(self, batch, batch_idx):
        out = super().training_step(batch, batch_idx)
        self.log("train_loss", out["loss"])
        return out


LightningCLI(LoggingBoring, BoringDataModule)
"""


def _start(tmp_path, pkg: str) -> tuple[subprocess.Popen, object]:
    script = tmp_path / f"cli_{pkg}.py"
    script.write_text(SCRIPT.format(pkg=pkg))
    runs = tmp_path / f"runs_{pkg}"
    args = [sys.executable, str(script), "fit", "--trainer.logger=phenomon.callbacks.RunStoreLogger",
            f"--trainer.logger.save_dir={runs}", "--trainer.logger.name=cli", "--trainer.max_steps=4",
            "--trainer.log_every_n_steps=1", "--trainer.limit_val_batches=1", "--trainer.enable_progress_bar=false"]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), runs


def _check(tmp_path, pkg: str) -> None:
    if importlib.util.find_spec("jsonargparse") is None or importlib.util.find_spec(pkg.split(".")[0]) is None:
        pytest.skip(f"LightningCLI under {pkg} needs it and jsonargparse[signatures] (the dev extras)")
    proc, runs = _start(tmp_path, pkg)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, f"{pkg}: {out[-2000:]}"
    [info] = store.list_runs(runs)
    assert info.state == "finished" and info.phenomenon == "cli"
    assert (info.dir / "config.yaml").is_file(), "LightningCLI saves its config in trainer.log_dir: the run"
    assert (info.dir / info.manifest["checkpoints"]["best"]).is_file()
    assert store.read_metrics(info.dir)["name"].to_list().count("train_loss") == 4


def test_lightning_cli_with_the_logger_by_class_path(tmp_path):
    _check(tmp_path, "pytorch_lightning")


@pytest.mark.slow  # the same under the unified package (~10 s more of imports); its Logger is another class
def test_lightning_cli_under_the_lightning_package(tmp_path):
    _check(tmp_path, "lightning.pytorch")
