"""Emergence training: one width's data, model and fit, and the run's reported point."""

from __future__ import annotations

from phenomon.phenomena.emergence.config import EmergenceConfig
from phenomon.session import Session


def execute(cfg: EmergenceConfig, session: Session) -> None:
    import torch

    from phenomon.datamodules.addition import AdditionDataModule
    from phenomon.models.emergence import EmergenceModule

    if cfg.width == 0:
        raise ValueError("width 0 is the whole sweep: `phenomon run emergence` starts one run per width")
    dm = AdditionDataModule(cfg.k, cfg.train_size, cfg.test_size, cfg.batch_size, seed=cfg.seed,
                            data_seed=cfg.data_seed)
    torch.manual_seed(cfg.seed)
    module = EmergenceModule(cfg.k, cfg.width, cfg.depth, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps, every = cfg.max_steps, cfg.eval_every
    # 2,000 steps: norms and counts at every evaluation (10), gradients, ranks and margins 10 times, sharpness 4
    schedule = {"cheap": every, "medium": max(1, steps // 10), "expensive": max(1, steps // 4)}
    session.fit(module, dm, max_steps=steps, eval_every=every, signal_every=schedule)
    session.out.log_summary(summary(module.evals, cfg, module), step=steps)


def summary(evals: list[dict], cfg: EmergenceConfig, module=None) -> dict[str, float]:
    """The run's reported point: its last evaluation's test metrics as `final/<metric>` (train ones as
    `final/train_<metric>`), the chosen metric as `final/score`, k and the parameters trained."""
    ev = [e for e in evals if "test/exact_match" in e]
    if not ev:
        return {}
    last = ev[-1]
    out = {f"final/{k.removeprefix('test/')}": v for k, v in last.items() if k.startswith("test/") and k != "test/acc"}
    out.update({f"final/train_{k.removeprefix('train/')}": v for k, v in last.items()
                if k.startswith("train/") and k != "train/acc"})
    out["final/score"] = out[f"final/{cfg.metric}"]
    out["final/k"] = float(cfg.k)
    out["final/step"] = float(last["step"])
    if module is not None:
        out["params"] = float(sum(p.numel() for p in module.parameters() if p.requires_grad))
    return out
