"""Emergence as a metric artefact (the registry entry): exact match on a k-token answer seems to jump with model
size, while per-token accuracy, edit distance and the answer's log-likelihood improve smoothly on the same models
(Schaeffer, Miranda & Koyejo, NeurIPS 2023, "Are emergent abilities of large language models a mirage?").

A sweep phenomenon like double descent: one run per width (`--set width=N`), all in one comparison group;
`phenomon run emergence` (width left at 0) starts the whole sweep and judges it with the group criterion. Its
parts: `config` (hyperparameters, toggles, presets), `verdict` (abruptness per metric, the sweep and run criteria),
`training` (one width's fit and its reported point), `figure` (the report's metric-by-metric figure).
"""

from __future__ import annotations

from phenomon.phenomena.emergence.config import PRESETS, TOGGLES, EmergenceConfig
from phenomon.phenomena.emergence.figure import figure
from phenomon.phenomena.emergence.training import execute
from phenomon.phenomena.emergence.verdict import criterion, group_criterion
from phenomon.registry import Phenomenon, register
from phenomon.store.axis import ConfigField

PHENOMENON = register(Phenomenon(
    name="emergence",
    summary="exact match on a k-digit answer seems to jump with model size while per-token accuracy, edit "
            "distance and log-likelihood rise smoothly (k-digit addition, MLP width sweep)",
    config_cls=EmergenceConfig,
    toggles=TOGGLES,
    criterion=criterion,
    execute=execute,
    presets=PRESETS,
    headline=("test/token_acc", "test/exact_match"),
    notes="defaults: a + b mod 10^5 as 5 answer digits, 20,000 train / 4,000 test pairs (disjoint), MLP "
          "(one-hot digits) 100-h-h-50, Adam 3e-3, batch 256, 2,000 steps, widths 4…256 × seeds 0,1,2; every "
          "metric is logged, `metric` picks final/score; `phenomon experiment emergence` adds k = 2.",
    x_axis=ConfigField("width"),
    experiment={"baseline": (), "k": ("k",)},
    group_criterion=group_criterion,
    outcome="final/score",
    outcome_moves=0.1,
    sweep=lambda cfg: cfg.widths,
    figures=figure,
))
