"""Omnigrok's MLP (Liu, Michaud & Tegmark, ICLR 2023): every initial parameter multiplied by α, MSE on one-hot
targets, AdamW; and the Lightning module training it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from phenomon.models.grokking import TrainTestClassifier


def scaled_mlp(d_in: int, width: int, depth: int, n_out: int, init_scale: float = 1.0) -> nn.Sequential:
    """`depth` Linear layers (ReLU between), PyTorch's default init, then every weight and bias times `init_scale`."""
    if depth < 1 or width < 1:
        raise ValueError(f"depth and width must be positive, got {depth}, {width}")
    dims = [d_in] + [width] * (depth - 1) + [n_out]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims, dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < depth - 1:
            layers.append(nn.ReLU())
    net = nn.Sequential(*layers)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(init_scale)
    return net


class OmnigrokModule(TrainTestClassifier):
    """MSE between the outputs and one-hot targets (mean over samples and classes, as nn.MSELoss), or CE."""

    def __init__(self, net: nn.Module, num_classes: int, lr: float = 1e-3, weight_decay: float = 0.1,
                 loss: str = "mse"):
        super().__init__()
        if loss not in ("mse", "ce"):
            raise ValueError(f"loss must be mse or ce, got {loss!r}")
        self.net, self.num_classes, self.lr, self.weight_decay, self.loss_kind = net, num_classes, lr, weight_decay, loss
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, x):
        return self.net(x)

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.loss_kind == "ce":
            return F.cross_entropy(out, y)
        return F.mse_loss(out, F.one_hot(y, self.num_classes).to(out.dtype))

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
