"""Edge-of-stability model: an MLP trained by plain gradient descent (no momentum) with a constant step size η, or
η warmed up linearly, on MSE (Cohen et al. 2021's main setting) or cross-entropy.

Logs `{stage}/loss`, `{stage}/acc` on the whole train and test splits at every evaluation; the per-step loss and the
sharpness come from `phenomon.callbacks.sharpness.SharpnessTracker`.
"""

from __future__ import annotations

import pytorch_lightning as L
import torch
import torch.nn.functional as F
from torch import nn

STAGES = ("train", "test")  # the datamodule's evaluation loaders, in order
ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


class MLP(nn.Sequential):
    """d_in → width (× depth, tanh or ReLU) → d_out, PyTorch's default init (Cohen et al.'s fc-tanh: depth 2, 200)."""

    def __init__(self, d_in: int, width: int, d_out: int, depth: int = 2, activation: str = "tanh"):
        if width < 1 or depth < 1:
            raise ValueError(f"width and depth must be positive, got {width}, {depth}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}")
        layers, d = [], d_in
        for _ in range(depth):
            layers += [nn.Linear(d, width), ACTIVATIONS[activation]()]
            d = width
        super().__init__(*layers, nn.Linear(d, d_out))


def half_squared_error(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """½‖f(x) − onehot(y)‖² averaged over samples: Cohen et al.'s MSE (its sharpness scale sets where 2/η lies)."""
    return 0.5 * (logits - F.one_hot(y, logits.shape[1]).to(logits.dtype)).pow(2).sum(1).mean()


LOSSES = {"mse": half_squared_error, "ce": F.cross_entropy}


class GDModule(L.LightningModule):
    """Gradient descent with step size `lr`, linearly warmed up from 0 over `warmup_steps` (0: constant)."""

    def __init__(self, net: nn.Module, lr: float, loss: str = "mse", warmup_steps: int = 0):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
        self.net, self.lr, self.warmup_steps = net, lr, warmup_steps
        self.loss_fn = LOSSES[loss]  # the signals' and the sharpness tracker's loss: the one being descended

    def forward(self, x):
        return self.net(x)

    def lr_now(self, step: int) -> float:
        """η in force for the update after `step` updates: η·(step+1)/warmup_steps during warm-up, then η."""
        if self.warmup_steps and step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        return self.lr

    def _common_step(self, batch, stage: str):
        x, y = batch
        logits = self.net(x)
        loss = self.loss_fn(logits, y)
        if stage != "fit":
            acc = (logits.argmax(1) == y).float().mean()
            self.log_dict({f"{stage}/loss": loss, f"{stage}/acc": acc}, add_dataloader_idx=False)
        return loss

    def training_step(self, batch, batch_idx):
        return self._common_step(batch, "fit")

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        return self._common_step(batch, STAGES[dataloader_idx])

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=self.lr)  # no momentum: the threshold 2/η is plain GD's
        if not self.warmup_steps:
            return opt
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: self.lr_now(s) / self.lr)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
