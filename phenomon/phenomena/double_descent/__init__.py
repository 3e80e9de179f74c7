"""Double descent (the registry entry): test error falls, peaks where the model just interpolates the noisy train
set, falls again.

A sweep phenomenon: one run per width (`--set width=N`), all in one comparison group; `phenomon run double_descent`
(width left at 0) starts the whole sweep in parallel processes and judges it with the group criterion. Each run
also keeps its evaluations over epochs, so the epoch-wise picture comes from the same rows. The recipe (Greydanus &
Kobak's MNIST-1D sweep, the setting of the position paper's Figure 4) and why it gives a clear peak: README.md.

Its parts: `config` (hyperparameters, toggles, presets), `verdict` (the run and sweep criteria), `training`
(one width's fit and its reported point).
"""

from __future__ import annotations

from phenomon.phenomena.double_descent.config import PRESETS, TOGGLES, DoubleDescentConfig
from phenomon.phenomena.double_descent.training import execute
from phenomon.phenomena.double_descent.verdict import criterion, group_criterion
from phenomon.registry import Phenomenon, register
from phenomon.store.axis import ConfigField

PHENOMENON = register(Phenomenon(
    name="double_descent",
    summary="test error falls, peaks where the model just fits the noisy train labels, and falls again as width "
            "grows (MNIST-1D MLP width sweep)",
    config_cls=DoubleDescentConfig,
    toggles=TOGGLES,
    criterion=criterion,
    execute=execute,
    presets=PRESETS,
    headline=("train/error", "test/error"),
    notes="defaults: MNIST-1D 4,000 train (20% of labels wrong) / 2,000 val / 10,000 test, MLP 40-h-h-10, CE, SGD "
          "0.01 momentum 0.9, batch 100, 500 epochs, widths 8…384 × seeds 0,1,2; `phenomon run double_descent` runs "
          "the sweep (`--set width=N`: one width); `phenomon experiment double_descent` adds the weight-decay sweep.",
    x_axis=ConfigField("width"),
    experiment={"baseline": (), "weight_decay": ("weight_decay",)},
    group_criterion=group_criterion,
    outcome="final/test_error",
    outcome_moves=0.03,  # a sweep's error moves by points, not by the 0→1 of an accuracy jump
    sweep=lambda cfg: cfg.widths,
    sweep_cost=lambda width: width * width + 52 * width,  # the MLP's parameters: the widest runs take longest
))
