"""Double-descent training: one width's data, model and fit, and the run's reported point."""

from __future__ import annotations

import math

from phenomon.phenomena.double_descent.config import DoubleDescentConfig
from phenomon.session import Session


def datamodule(cfg: DoubleDescentConfig, whole_epochs: bool | None = None):
    """The recipe's data; the MLP steps through an epoch per Lightning step (`whole_epochs`) unless told otherwise."""
    from phenomon.datamodules.mnist1d import MNIST1DDataModule
    from phenomon.datamodules.teacher import TeacherDataModule

    kw = dict(train_size=cfg.train_size, test_size=cfg.test_size, val_size=cfg.val_size, seed=cfg.seed,
              batch_size=None if cfg.model == "random_features" else cfg.batch_size, data_seed=cfg.data_seed,
              label_noise=cfg.label_noise, train_pool=cfg.train_pool, noise_seed=1000 + cfg.seed, exact_noise=True,
              whole_epochs=cfg.model == "mlp" if whole_epochs is None else whole_epochs)
    if cfg.data == "teacher":
        return TeacherDataModule(dim=cfg.teacher_dim, **kw)
    return MNIST1DDataModule(standardize=False, **kw)  # mnist1d already standardised the whole set


def build_module(cfg: DoubleDescentConfig, train_x, num_classes: int, eval_x=None):
    import torch

    from phenomon.models.double_descent import MLP, ClosedFormModule, RandomFeatures, WidthModule

    torch.manual_seed(cfg.seed)
    d_in = train_x.shape[1]
    if cfg.model == "random_features":
        return ClosedFormModule(RandomFeatures(d_in, cfg.width, num_classes, seed=cfg.seed), train_x, cfg.ridge,
                                num_classes, eval_x=eval_x)
    return WidthModule(MLP(d_in, cfg.width, num_classes, cfg.depth), cfg.lr, cfg.momentum, cfg.weight_decay,
                       steps_per_epoch=cfg.steps_per_epoch, num_classes=num_classes)


def execute(cfg: DoubleDescentConfig, session: Session) -> None:
    if cfg.width == 0:
        raise ValueError("width 0 is the whole sweep: `phenomon run double_descent` starts one run per width")
    dm = datamodule(cfg)
    held_out = (dm.val if dm.val is not None else dm.test)[0][:512]  # inputs only: p̂ of the effective-parameters signal
    module = build_module(cfg, dm.train[0], dm.num_classes, eval_x=held_out)
    steps = cfg.max_steps
    # evaluation is scheduled in Lightning steps (epochs: one per step, see WidthModule), signals in optimiser steps
    every = cfg.eval_every * cfg.steps_per_epoch if cfg.model == "mlp" else 1
    # 20,000 steps: norms and counts at every evaluation (50), gradients, ranks and margins 10 times, sharpness 4;
    # signals run after a Lightning step, so at whole epochs: each schedule is rounded to one
    spe = cfg.steps_per_epoch
    schedule = {"cheap": every, "medium": _whole(steps // 10, spe), "expensive": _whole(steps // 4, spe)}
    session.fit(module, dm, max_steps=steps, eval_every=cfg.eval_every if cfg.model == "mlp" else 1,
                signal_every=schedule)
    session.out.log_summary(summary(module.evals, cfg.early_stopping, module), step=steps)


def _whole(steps: int, per_epoch: int) -> int:
    """`steps` rounded to a whole number of epochs (at least one)."""
    return max(1, round(steps / per_epoch)) * per_epoch


def summary(evals: list[dict], early_stopping: bool, module=None) -> dict[str, float]:
    """The run's reported point: its last evaluation, or with early stopping the one with the lowest validation
    error (the test error a practitioner would see); parameters trained."""
    ev = [e for e in evals if "test/error" in e]
    if not ev:
        return {}
    pick = min(ev, key=lambda e: e.get("val/error", math.inf)) if early_stopping else ev[-1]
    out = {f"final/{k.replace('/', '_')}": v for k, v in pick.items() if k != "step"}
    out["final/step"] = float(pick["step"])
    if module is not None:
        out["params"] = float(sum(p.numel() for p in module.parameters() if p.requires_grad))
    return out
