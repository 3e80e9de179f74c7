"""Masked MLPs for lottery tickets, the mask arithmetic of pruning rounds, and the Lightning module training them.

Masks are boolean buffers (they move with the module and survive `state_dict`); the forward pass multiplies each
weight by its mask, so pruned weights get no gradient, and `apply_masks_` re-zeroes them after every optimiser step
as a guard against decay terms or carried optimiser state. Only weights are pruned; biases stay dense.
"""

from __future__ import annotations

import math

import pytorch_lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.functional.classification import multiclass_accuracy

INITS = ("default", "glorot", "kaiming")
Masks = dict[str, torch.Tensor]  # "layers.<i>.weight" -> bool tensor of the weight's shape


class MaskedLinear(nn.Linear):
    def __init__(self, d_in: int, d_out: int):
        super().__init__(d_in, d_out)
        self.register_buffer("mask", torch.ones_like(self.weight, dtype=torch.bool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MaskedMLP(nn.Module):
    """in → hidden… → out with ReLU; `hidden=(300, 100)` on 784 inputs is LeNet-300-100 (Frankle & Carbin 2019)."""

    def __init__(self, d_in: int, hidden: tuple[int, ...], d_out: int, init: str = "default"):
        super().__init__()
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; valid: {', '.join(INITS)}")
        sizes = [d_in, *hidden, d_out]
        self.layers = nn.ModuleList(MaskedLinear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        for layer in self.layers:
            if init == "glorot":
                nn.init.xavier_normal_(layer.weight)
                nn.init.zeros_(layer.bias)
            elif init == "kaiming":
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, d_in)
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)  # (batch, d_out)

    def masks(self) -> Masks:
        return {f"layers.{i}.weight": layer.mask for i, layer in enumerate(self.layers)}

    @torch.no_grad()
    def set_masks(self, masks: Masks) -> None:
        check_masks(self, masks)
        for name, m in self.masks().items():
            m.copy_(masks[name])
        self.apply_masks_()

    @torch.no_grad()
    def apply_masks_(self) -> None:
        for layer in self.layers:
            layer.weight.mul_(layer.mask)

    def remaining(self) -> float:
        """Fraction of (prunable) weights still present."""
        kept = sum(int(m.sum()) for m in self.masks().values())
        return kept / sum(m.numel() for m in self.masks().values())


def check_masks(net: MaskedMLP, masks: Masks) -> None:
    """One-line ValueError unless `masks` has exactly the network's layers and shapes."""
    want = {k: tuple(v.shape) for k, v in net.masks().items()}
    got = {k: tuple(v.shape) for k, v in masks.items()}
    if set(want) != set(got):
        raise ValueError(f"masks do not fit the network: layers {sorted(got)} vs {sorted(want)}")
    bad = [f"{k} {got[k]} vs {want[k]}" for k in want if got[k] != want[k]]
    if bad:
        raise ValueError(f"masks do not fit the network: {'; '.join(bad)}")


# ------------------------------------------------------------------------------------------ mask arithmetic


from phenomon.models.schedule import _groups, group_rates, keep_counts, keep_schedule, remaining_after  # noqa: E402,F401


@torch.no_grad()
def topk_masks(scores: dict[str, torch.Tensor], allowed: Masks | None,
               counts: list[tuple[list[str], int]]) -> Masks:
    """Keep the `k` highest-scoring weights of each group among those `allowed` (all when None)."""
    out: Masks = {}
    for names, k in counts:
        flat = []
        for n in names:
            s = scores[n].detach().float().flatten().clone()
            if allowed is not None:
                s[~allowed[n].flatten()] = -math.inf
            flat.append(s)
        s = torch.cat(flat)
        keep = torch.zeros_like(s, dtype=torch.bool)
        keep[torch.topk(s, k, sorted=False).indices] = True
        for n, part in zip(names, keep.split([scores[n].numel() for n in names])):
            out[n] = part.view_as(scores[n])
    return out


# ------------------------------------------------------------------------------------------ training


class LotteryModule(L.LightningModule):
    """Minibatch training of a masked network; full-split train/test evaluations are logged and kept in `evals`.

    `prefix` namespaces the logged names (a lineage trained beside a control logs under `imp/`). Nothing is logged
    per training step (per-step `self.log` costs more than a step of this MLP).
    """

    def __init__(self, net: MaskedMLP, optimizer: str = "adam", lr: float = 1e-3, momentum: float = 0.9,
                 weight_decay: float = 0.0, prefix: str = "", num_classes: int = 10):
        super().__init__()
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"unknown optimizer {optimizer!r}; valid: adam, sgd")
        self.net, self.optimizer, self.lr, self.momentum, self.weight_decay = net, optimizer, lr, momentum, weight_decay
        self.prefix, self.num_classes = prefix, num_classes
        self.evals: list[dict[str, float]] = []  # one dict per evaluation: step, train/acc, test/loss, ...

    STAGES = ("train", "test", "val")

    def forward(self, x):
        return self.net(x)

    def _common_step(self, batch, stage: str):
        x, y = batch
        logits = self.net(x)
        loss = F.cross_entropy(logits, y)
        if stage != "fit":
            acc = multiclass_accuracy(logits, y, self.num_classes, average="micro")
            self.log(f"{self.prefix}{stage}/loss", loss, add_dataloader_idx=False)
            self.log(f"{self.prefix}{stage}/acc", acc, add_dataloader_idx=False)
            if stage == "train" or not self.evals or self.evals[-1]["step"] != self.global_step:
                self.evals.append({"step": self.global_step})
            self.evals[-1].update({f"{stage}/loss": float(loss), f"{stage}/acc": float(acc)})
        return loss

    def training_step(self, batch, batch_idx):
        return self._common_step(batch, "fit")

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        return self._common_step(batch, self.STAGES[dataloader_idx])

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.net.apply_masks_()

    def configure_optimizers(self):
        if self.optimizer == "sgd":
            return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=self.momentum,
                                   weight_decay=self.weight_decay)
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
