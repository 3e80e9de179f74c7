"""Edge of stability (the registry entry; Cohen et al., ICLR 2021): under full-batch gradient descent with step size
η the sharpness (top Hessian eigenvalue of the training loss) rises ("progressive sharpening") until it reaches 2/η,
then hovers there while the loss keeps falling, non-monotonically.

Its parts: `config` (hyperparameters, toggles, presets), `training` (data, model, the sharpness tracker), `verdict`
(the run and group criteria). The power iteration and its tracker: `phenomon.callbacks.sharpness`.
"""

from __future__ import annotations

from phenomon.phenomena.edge_of_stability.figure import figure
from phenomon.phenomena.edge_of_stability.config import PRESETS, TOGGLES, EdgeOfStabilityConfig
from phenomon.phenomena.edge_of_stability.training import execute
from phenomon.phenomena.edge_of_stability.verdict import criterion, group_criterion
from phenomon.registry import Phenomenon, register

PHENOMENON = register(Phenomenon(
    name="edge_of_stability",
    summary="under full-batch gradient descent the sharpness rises to 2/η and hovers there while the loss keeps "
            "falling, non-monotonically (MNIST-1D tanh MLP, MSE)",
    config_cls=EdgeOfStabilityConfig,
    toggles=TOGGLES,
    criterion=criterion,
    execute=execute,
    presets=PRESETS,
    headline=("eos/sharpness_ratio", "train/loss"),
    notes="defaults: MNIST-1D 1,000 train / 1,000 test, MLP 40-200-200-10 tanh, ½‖f−y‖² loss, full-batch gradient "
          "descent η = 0.1 (2/η = 20), 6,000 steps; sharpness of the full training loss every 20 steps by 5 "
          "warm-started power iterations. Monitor: the metric picker (g) starts at eos/sharpness, "
          "eos/sharpness_ratio (λη/2: 1 is the edge, whatever η) and eos/threshold (2/η).",
    # the baseline, the η toggles (the plateau follows 2/η), SGD and warm-up, × seeds 0, 1, 2
    experiment={"baseline": (), "lr_half": ("lr_half",), "lr_double": ("lr_double",), "sgd": ("sgd",),
                "warmup": ("warmup",)},
    group_criterion=group_criterion,
    figures=figure,
))
