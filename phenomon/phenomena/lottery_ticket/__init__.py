"""Lottery tickets (the registry entry): iterative magnitude pruning with rewinding, against the controls that
make it a finding.

One run holds every round of one variant (the `round` column; round 0 is the dense network). The variants are
toggles of one code path: where the masks come from (`prune_by`), where the survivors start (`reinit`,
`rewind_step`). A ticket is only a finding next to its controls, so the group criterion reads the runs of a
comparison group (`phenomon experiment lottery_ticket`: ticket, reinit and random pruning over 3 seeds).

Its parts: `config` (hyperparameters, toggles, presets), `masks` (mask files), `verdict` (the run and group
criteria), `training` (the pruning rounds).
"""

from __future__ import annotations

from phenomon.phenomena.lottery_ticket.config import PRESETS, TOGGLES, LotteryConfig
from phenomon.phenomena.lottery_ticket.training import execute
from phenomon.phenomena.lottery_ticket.verdict import criterion, group_criterion
from phenomon.registry import Phenomenon, register
from phenomon.store.axis import RoundMetric

PHENOMENON = register(Phenomenon(
    name="lottery_ticket",
    summary="prune the smallest weights in rounds, rewind the survivors to init, retrain: sparse nets that match "
            "dense accuracy (MNIST-1D MLP)",
    config_cls=LotteryConfig,
    toggles=TOGGLES,
    criterion=criterion,
    execute=execute,
    presets=PRESETS,
    headline=("test/acc", "weights_remaining"),
    notes="defaults: MNIST-1D (4,000/1,000), MLP 40-300-100-10, Adam 1e-3, batch 100, 20 epochs per round, 20% of "
          "remaining weights pruned per round per layer (output 10%), rewind to init, down to 2% of weights; "
          "`phenomon experiment lottery_ticket` runs ticket, reinit and random_prune × 3 seeds and judges them together.",
    x_axis=RoundMetric("weights_remaining"),
    experiment={"reinit": ("reinit",), "ticket": (), "random_prune": ("random_prune",)},
    group_criterion=group_criterion,
))
