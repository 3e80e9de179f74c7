"""Edge-of-stability training: MNIST-1D, an MLP, gradient descent (or SGD) with the sharpness tracked as it goes."""

from __future__ import annotations

from phenomon.phenomena.edge_of_stability.config import EdgeOfStabilityConfig
from phenomon.session import Session


def datamodule(cfg: EdgeOfStabilityConfig):
    from phenomon.datamodules.mnist1d import MNIST1DDataModule

    return MNIST1DDataModule(train_size=cfg.train_size, test_size=cfg.test_size, seed=cfg.seed,
                             data_seed=cfg.data_seed, batch_size=None if cfg.full_batch else cfg.batch_size)


def build_module(cfg: EdgeOfStabilityConfig):
    import torch

    from phenomon.models.eos import MLP, GDModule

    torch.manual_seed(cfg.seed)
    net = MLP(40, cfg.width, 10, cfg.depth, cfg.activation)  # MNIST-1D: 40 inputs, 10 classes
    return GDModule(net, cfg.eta, cfg.loss, cfg.warmup_steps)


def tracker(cfg: EdgeOfStabilityConfig, dm):
    """Sharpness of the training loss on a fixed probe: the whole train set unless `probe_size` says fewer (then a
    seeded subset, the same for the whole run)."""
    from phenomon.callbacks.sharpness import SharpnessTracker
    from phenomon.callbacks.signal_callback import make_probe

    x, y = dm.train
    if cfg.probe_size not in (0, len(y)):
        p = make_probe((x, y), cfg.seed, cfg.probe_size)
        x, y = p.x, p.y
    return SharpnessTracker((x, y), every=cfg.sharpness_every, iters=cfg.power_iters, seed=cfg.seed)


def execute(cfg: EdgeOfStabilityConfig, session: Session) -> None:
    dm = datamodule(cfg)
    module = build_module(cfg)
    steps = cfg.max_steps
    # the generic signals on a light schedule (the sharpness signal among them, on its own 512-sample probe from a
    # cold start): the tracker measures the full-batch sharpness every `sharpness_every` steps already
    schedule = {"cheap": cfg.eval_every, "medium": max(cfg.eval_every, steps // 20),
                "expensive": max(cfg.eval_every, steps // 10)}
    session.fit(module, dm, max_steps=steps, eval_every=cfg.eval_every, signal_every=schedule,
                callbacks=(tracker(cfg, dm),))
