"""Lottery-ticket training: iterative pruning rounds, each a fresh fit of the masked network from its rewind point."""

from __future__ import annotations

import math
import time

from phenomon.phenomena.lottery_ticket.config import D_IN, D_OUT, LotteryConfig
from phenomon.phenomena.lottery_ticket.masks import load_masks, masks_bytes
from phenomon.session import Session

# pruning at init on `lottery_ticket` (tickets_at_init makes both config fields; new fields here would change the
# persisted identity of every lottery_ticket run)
SCORE_BATCH, SYNFLOW_ITERATIONS = 100, 100
LAST_EVALS = 3  # a round's accuracy: mean of its last evaluations (one evaluation is noisy by ±1-3 points)


def execute(cfg: LotteryConfig, session: Session) -> None:
    import torch

    from phenomon.callbacks.pruning import Snapshot, StepTimer
    from phenomon.datamodules.mnist1d import MNIST1DDataModule
    from phenomon.models.lottery import LotteryModule, MaskedMLP, keep_counts

    rounds = cfg.rounds()
    dm = MNIST1DDataModule(cfg.train_size, cfg.test_size, batch_size=cfg.batch_size, seed=cfg.seed,
                           data_seed=cfg.data_seed)
    out = session.out

    def train(net: MaskedMLP, rnd: int, prefix: str = "", callbacks: tuple = ()):
        timer = StepTimer()
        module = LotteryModule(net, cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay, prefix=prefix)
        label = f"{session.label} round {rnd}/{rounds}{' ' + prefix.rstrip('/') if prefix else ''}"
        # the x axis is rounds: signals at each round's start and end (and cheap ones 4 times) are what it needs
        steps = cfg.steps_per_round
        session.fit(module, dm, max_steps=steps, eval_every=cfg.eval_every, callbacks=(timer, *callbacks),
                    signal_every={"cheap": max(1, steps // 4), "medium": steps, "expensive": steps}, label=label)
        summary = round_summary(module.evals, prefix)
        summary[f"{prefix}time/step_ms"] = timer.median_ms()
        return {k: v.detach().cpu().clone() for k, v in net.named_parameters()}, summary

    def log_round(rnd: int, net: MaskedMLP, summary: dict, score_s: float | None = None) -> None:
        per_layer = {f"remaining/{k.removesuffix('.weight')}": float(m.float().mean()) for k, m in net.masks().items()}
        if score_s is not None:
            summary = {**summary, "time/score_s": score_s}
        out.log_summary({"weights_remaining": net.remaining(), **per_layer, **summary}, step=cfg.steps_per_round)
        out.save_file(f"masks/round_{rnd:02d}.pt", masks_bytes(net.masks()))

    theta0 = {k: v.detach().clone() for k, v in new_net(cfg, cfg.seed).named_parameters()}
    if cfg.masks_from:  # one round: the loaded masks on this seed's init (or a fresh one)
        masks = load_masks(cfg.masks_from, cfg.shapes())
        net = reinitialised(cfg, 1, masks) if cfg.reinit else rewound(cfg, theta0, masks)
        out.start_round(1, 1)
        _, summary = train(net, 1)
        log_round(1, net, summary)
        return

    # round 0: the dense network, which also fixes where survivors rewind to
    ones = {k: torch.ones(s, dtype=torch.bool) for k, s in cfg.shapes().items()}
    net = rewound(cfg, theta0, ones)
    snap = Snapshot(cfg.rewind_step)
    out.start_round(0, rounds)
    dense, summary = train(net, 0, callbacks=(snap,))
    log_round(0, net, summary)
    start, trained, masks = snap.state, dense, ones
    # magnitude pruning of a reinitialised net needs the rewound lineage trained beside it for its next masks
    lineage_apart = cfg.reinit and cfg.prune_by == "magnitude"
    batch = score_batch(cfg, dm) if cfg.prune_by in ("snip", "grasp") else None
    for rnd in range(1, rounds + 1):
        counts = keep_counts(cfg.shapes(), cfg.prune_rate, cfg.prune_rate_output, cfg.scope, rnd)
        t0 = time.process_time()
        masks = next_masks(cfg, rnd, masks, trained, dense, theta0, counts, batch)
        score_s = time.process_time() - t0
        out.start_round(rnd, rounds)
        if lineage_apart:
            trained, lin = train(rewound(cfg, start, masks), rnd, prefix="imp/")
            out.log_summary({"imp/round/test_acc": lin["imp/round/test_acc"]}, step=cfg.steps_per_round)
        net = reinitialised(cfg, rnd, masks) if cfg.reinit else rewound(cfg, start, masks)
        weights, summary = train(net, rnd)
        if not lineage_apart:
            trained = weights
        log_round(rnd, net, summary, score_s)


def new_net(cfg: LotteryConfig, seed: int):
    import torch

    from phenomon.models.lottery import MaskedMLP

    torch.manual_seed(seed)
    return MaskedMLP(D_IN, cfg.hidden, D_OUT, cfg.init)


def rewound(cfg: LotteryConfig, state, masks):
    """The network with the saved parameters (init or step k) for survivors and zeros for pruned weights."""
    import torch

    net = new_net(cfg, cfg.seed)
    with torch.no_grad():
        for k, p in net.named_parameters():
            p.copy_(state[k])
    net.set_masks(masks)
    return net


def reinitialised(cfg: LotteryConfig, rnd: int, masks):
    """The same masks on fresh random weights, a different draw each round."""
    net = new_net(cfg, _reinit_seed(cfg.seed, rnd))
    net.set_masks(masks)
    return net


def _reinit_seed(seed: int, rnd: int) -> int:
    return 1_000_003 * (seed + 1) + rnd


def score_batch(cfg: LotteryConfig, dm):
    """The training samples SNIP and GraSP score on: a draw of `score_batch` seeded by the run's seed."""
    import torch

    x, y = dm.train
    n = getattr(cfg, "score_batch", SCORE_BATCH)
    idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(cfg.seed + 7))[:n]
    return x[idx], y[idx]


def next_masks(cfg: LotteryConfig, rnd: int, prev, trained, dense, theta0, counts, batch=None):
    """Round `rnd`'s masks: the same keep counts for every variant; only the scores (and nesting) differ."""
    import torch

    from phenomon.models.lottery import topk_masks

    if cfg.prune_by in ("snip", "grasp", "synflow"):  # from the untrained network, one shot to this level
        from phenomon.models.prune_init import masks_at_init

        x, y = batch if batch is not None else (None, None)
        return masks_at_init(cfg.prune_by, rewound(cfg, theta0, {k: torch.ones_like(m) for k, m in prev.items()}),
                             counts, x, y, iterations=getattr(cfg, "synflow_iterations", SYNFLOW_ITERATIONS))

    if cfg.prune_by == "magnitude":  # IMP: the previous round's trained survivors
        return topk_masks({k: trained[k].abs() for k in prev}, prev, counts)
    if cfg.prune_by == "one_shot":  # straight from the dense network to this sparsity
        return topk_masks({k: dense[k].abs() for k in prev}, None, counts)
    if cfg.prune_by == "init":  # before any training
        return topk_masks({k: theta0[k].abs() for k in prev}, None, counts)
    g = torch.Generator().manual_seed(_reinit_seed(cfg.seed, rnd) + 17)
    return topk_masks({k: torch.rand(v.shape, generator=g) for k, v in prev.items()}, prev, counts)


def round_summary(evals: list[dict], prefix: str = "") -> dict[str, float]:
    """A round's accuracy (mean of its last evaluations), best accuracy, and early-stopping step (min test loss)."""
    ev = [e for e in evals if "test/acc" in e]
    if not ev:
        return {}
    last = ev[-LAST_EVALS:]
    stop = min(ev, key=lambda e: e["test/loss"])
    out = {"round/test_acc": sum(e["test/acc"] for e in last) / len(last),
           "round/train_acc": sum(e.get("train/acc", math.nan) for e in last) / len(last),
           "round/best_test_acc": max(e["test/acc"] for e in ev),
           "round/early_stop_step": float(stop["step"]), "round/early_stop_acc": stop["test/acc"]}
    return {prefix + k: v for k, v in out.items()}
