"""Under DDP on CPU (2 processes, gloo) only global rank zero writes, into one run, and every rank agrees on it."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from phenomon import store

SCRIPT = """
import sys

import pytorch_lightning as pl
from pytorch_lightning.demos.boring_classes import BoringModel

from phenomon.callbacks import RunStoreLogger


class LoggingBoring(BoringModel):
    def training_step(self, batch, batch_idx):
        out = super().training_step(batch, batch_idx)
        self.log("train_loss", out["loss"], sync_dist=True)
        return out


if __name__ == "__main__":
    logger = RunStoreLogger(sys.argv[1], name="ddp")
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy=sys.argv[2], max_steps=4, logger=logger,
                         log_every_n_steps=1, enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=1)
    trainer.fit(LoggingBoring())
    print(f"<VERSION {trainer.global_rank} {logger.version}>", flush=True)
"""


def _ddp(tmp_path, strategy: str) -> None:
    script, runs = tmp_path / "ddp_fit.py", tmp_path / "runs"
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(runs), strategy], capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [info] = store.list_runs(runs)
    assert info.state == "finished" and info.manifest["rows"] == 4, "rank zero wrote every step once"
    assert (info.dir / info.manifest["checkpoints"]["best"]).is_file()
    # the ranks share one stdout: their lines can interleave, so each report is bracketed and found anywhere
    seen = {v for _, v in re.findall(r"<VERSION (\d+) (\S+?)>", proc.stdout)}
    assert seen == {info.id}, "every process that reports names the same run"


def test_ddp_on_cpu_writes_one_run_from_rank_zero(tmp_path):
    _ddp(tmp_path, "ddp")


@pytest.mark.slow  # as above, spawned: the parent reads the version after the workers end and creates nothing
def test_ddp_spawn_on_cpu_writes_one_run(tmp_path):
    _ddp(tmp_path, "ddp_spawn")
