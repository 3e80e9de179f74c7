"""Null signals: the step and a seeded random walk, on the cheap schedule of every run, surviving a resume."""

from __future__ import annotations

from types import SimpleNamespace

import polars as pl
import pytest

from phenomon import registry, runner, store
from phenomon.callbacks.nulls import RandomWalk
from phenomon.callbacks.signal_callback import SignalCallback
from phenomon.catalog import NULL_STEP, NULL_WALK

GROK = registry.get("grokking")
TINY = ["p=23", "max_steps=30", "eval_every=10", "hidden=16", "d_embed=4"]


def _run(root, seed: int = 0, signals=("weight_norm",), **opts) -> pl.DataFrame:
    cfg = GROK.resolve(sets=TINY + [f"seed={seed}"])
    info = runner.run(GROK, cfg, runner.RunOptions(root=root, signals=signals, invariance=False, **opts))
    assert info.state == "finished"
    return store.wide(store.read_metrics(info.dir)).sort("step")


def _steps(rows: pl.DataFrame, col: str) -> list[int]:
    return rows.filter(pl.col(col).is_not_null())["step"].to_list() if col in rows.columns else []


def test_a_run_writes_both_nulls_at_the_steps_of_the_cheapest_signal(runs):
    rows = _run(runs)
    assert _steps(rows, NULL_STEP) == _steps(rows, NULL_WALK) == _steps(rows, "signal/weight_norm") == [0, 10, 20, 30]
    f = rows.filter(pl.col(NULL_STEP).is_not_null())
    assert f[NULL_STEP].to_list() == [0.0, 10.0, 20.0, 30.0], "the step itself, as a value"
    assert f[NULL_WALK].n_unique() == 4


def test_the_walk_is_reproducible_per_seed_and_differs_across_seeds(runs):
    walk = lambda rows: rows.filter(pl.col(NULL_WALK).is_not_null())[NULL_WALK].to_list()  # noqa: E731
    a, b, c = walk(_run(runs / "a", seed=0)), walk(_run(runs / "b", seed=0)), walk(_run(runs / "c", seed=1))
    assert a == b and len(a) == 4
    assert a != c


def test_nulls_are_written_with_restricted_signals_and_not_when_signals_are_off(runs):
    only_sharp = _run(runs / "a", signals=("sharpness",))  # expensive: due only at step 0
    assert _steps(only_sharp, NULL_STEP) == [0, 10, 20, 30]
    assert _steps(only_sharp, "signal/sharpness") == [0]
    off = _run(runs / "b", signals=())
    assert NULL_STEP not in off.columns and NULL_WALK not in off.columns


def _trainer() -> SimpleNamespace:
    logger = _Logger()
    return SimpleNamespace(logger=logger, loggers=[logger])


class _Logger:
    def __init__(self):
        self.rows: list[tuple[int, dict]] = []

    def log_metrics(self, row, step):
        self.rows.append((step, dict(row)))


def _drive(cb: SignalCallback, steps, trainer, force_first: bool = False) -> list[float]:
    for i, s in enumerate(steps):
        cb._run(trainer, None, s, force=force_first and i == 0)
    return [row[NULL_WALK] for _, row in trainer.logger.rows]


def test_the_walk_survives_a_checkpoint_resume_through_the_callback_state():
    straight = _trainer()
    full = _drive(SignalCallback((), seed=5), [0, 10, 20, 30, 40], straight, force_first=True)
    first = _trainer()
    cb = SignalCallback((), seed=5)
    _drive(cb, [0, 10, 20], first, force_first=True)
    state = cb.state_dict()
    resumed_cb = SignalCallback((), seed=5)
    resumed_cb.load_state_dict(state)
    second = _trainer()
    # Lightning calls on_train_start (a forced run) at the restored step: the point is repeated, not redrawn
    after = _drive(resumed_cb, [20, 30, 40], second, force_first=True)
    assert after == full[2:]


def test_random_walk_increments_are_standard_normal_and_seeded():
    w = RandomWalk(3)
    vals = [w.advance() for _ in range(2000)]
    inc = pl.Series([vals[0]] + [b - a for a, b in zip(vals, vals[1:])])
    assert abs(inc.mean()) < 0.1 and abs(inc.std() - 1) < 0.1
    assert RandomWalk(3).advance() == vals[0] != RandomWalk(4).advance()
    assert RandomWalk(-3).advance() != vals[0]


@pytest.mark.parametrize("every", [{"cheap": 7}])
def test_nulls_follow_a_custom_cheap_schedule(every):
    trainer = _trainer()
    cb = SignalCallback(("weight_norm",), every=every)
    cb.signals = []  # no module here: only the nulls are due
    for s in range(0, 22):
        cb._run(trainer, None, s, force=s == 0)
    assert [s for s, _ in trainer.logger.rows] == [0, 7, 14, 21]
    assert [r[NULL_STEP] for _, r in trainer.logger.rows] == [0.0, 7.0, 14.0, 21.0]


def test_the_walk_survives_a_real_lightning_checkpoint_resume(tmp_path):
    import pytorch_lightning as L
    from pytorch_lightning.loggers import Logger

    from phenomon.datamodules.modular import ModularDataModule
    from phenomon.models.grokking import GrokkingModule, build_network
    from phenomon.runner import quiet_lightning

    quiet_lightning()

    class Rows(Logger):
        name, version = "rows", "0"

        def __init__(self):
            super().__init__()
            self.walk: dict[int, float] = {}

        def log_metrics(self, metrics, step=None):
            if NULL_WALK in metrics:
                self.walk[step] = metrics[NULL_WALK]

        def log_hyperparams(self, *a, **k):
            pass

    def fit(max_steps, ckpt=None, save=None):
        import torch

        torch.manual_seed(0)
        module = GrokkingModule(build_network("mlp", 7, d_embed=4, hidden=8), 7)
        log = Rows()
        t = L.Trainer(max_steps=max_steps, logger=log, callbacks=[SignalCallback(("weight_norm",), seed=2,
                                                                                 every={"cheap": 5})],
                      enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                      val_check_interval=5, check_val_every_n_epoch=None, num_sanity_val_steps=0, accelerator="cpu")
        t.fit(module, datamodule=ModularDataModule(7, "+", 0.5, seed=0), ckpt_path=ckpt)
        if save:
            t.save_checkpoint(save)
        return log.walk

    straight = fit(20)
    first = fit(10, save=tmp_path / "half.ckpt")
    second = fit(20, ckpt=str(tmp_path / "half.ckpt"))
    assert sorted(straight) == [0, 5, 10, 15, 20]
    assert {**first, **second} == straight
