"""One width of the double-descent MLP trained at several weight decays at once: K independent networks stacked
along a leading axis, one batched matmul per layer, the same minibatches for all.

Tuning weight decay per width (Nakkiran, Venkat, Kakade & Ma, ICLR 2021) multiplies the sweep's cost by the grid
size; at the small widths around the interpolation threshold a step is overhead, not arithmetic, so K networks in
one module cost little more than one. Each member is exactly the `MLP` of `models/double_descent.py` (PyTorch's
default init) trained by SGD + momentum with its own coupled weight decay: the loss adds wd_k/2·‖θ_k‖², whose
gradient wd_k·θ_k is what `torch.optim.SGD(weight_decay=wd_k)` adds, and the members share no parameter.
"""

from __future__ import annotations

import math

import pytorch_lightning as L
import torch
import torch.nn.functional as F
from torch import nn

STAGES = ("train", "test", "val")  # the datamodule's evaluation loaders, in order


class StackedMLP(nn.Module):
    """K MLPs d_in → width (× depth, ReLU) → d_out; weights (K, fan_in, fan_out), biases (K, 1, fan_out)."""

    def __init__(self, k: int, d_in: int, width: int, d_out: int, depth: int = 2):
        super().__init__()
        if k < 1 or width < 1 or depth < 1:
            raise ValueError(f"k, width and depth must be positive, got {k}, {width}, {depth}")
        sizes = [d_in] + [width] * depth + [d_out]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(sizes[:-1], sizes[1:]):
            bound = 1 / math.sqrt(a)  # nn.Linear's default: kaiming_uniform(a=√5) gives U(±1/√fan_in), bias too
            self.weights.append(nn.Parameter(torch.empty(k, a, b).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(k, 1, b).uniform_(-bound, bound)))
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, d_in) -> (K, batch, d_out)
        h = x.unsqueeze(0).expand(self.k, -1, -1)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < len(self.weights) - 1:
                h = F.relu(h)
        return h

    def sq_norms(self) -> torch.Tensor:  # (K,): ‖θ_k‖² over every weight and bias of member k
        return sum(p.pow(2).flatten(1).sum(1) for p in [*self.weights, *self.biases])


class GridModule(L.LightningModule):
    """Cross-entropy SGD + momentum of K stacked members, member k with weight decay `wds[k]`.

    Every evaluation logs `wd<v>/{stage}/error` and `/loss` per member on the whole train, test and validation
    splits (plus `epochs`), and keeps them in `evals` (one dict per evaluation, lists indexed by member).
    """

    def __init__(self, net: StackedMLP, wds: tuple[float, ...], lr: float = 0.01, momentum: float = 0.9,
                 steps_per_epoch: int = 1):
        super().__init__()
        if len(wds) != net.k:
            raise ValueError(f"{len(wds)} weight decays for {net.k} stacked networks")
        self.net, self.lr, self.momentum, self.steps_per_epoch = net, lr, momentum, steps_per_epoch
        self.wds = tuple(float(w) for w in wds)
        self.register_buffer("wd", torch.tensor(self.wds), persistent=False)
        self.evals: list[dict] = []

    def forward(self, x):
        return self.net(x)

    def _common_step(self, batch, stage: str):
        x, y = batch
        logits = self.net(x)  # (K, batch, classes)
        ce = F.cross_entropy(logits.flatten(0, 1), y.repeat(self.net.k), reduction="none").view(self.net.k, -1)
        if stage == "fit":  # each member's mean CE plus its own ℓ2 term; the sum keeps their gradients apart
            return (ce.mean(1) + 0.5 * self.wd * self.net.sq_norms()).sum()
        err = (logits.argmax(-1) != y).float().mean(1)  # (K,)
        loss = ce.mean(1)
        if stage == "train":
            self.evals.append({"step": self.global_step, "epochs": self.global_step / self.steps_per_epoch})
        self.evals[-1][f"{stage}/error"] = err.tolist()
        vals = {f"wd{w:g}/{stage}/{m}": v[i] for i, w in enumerate(self.wds) for m, v in (("error", err),
                                                                                           ("loss", loss))}
        if stage == "train":
            vals["epochs"] = torch.tensor(self.global_step / self.steps_per_epoch)
        self.log_dict(vals, add_dataloader_idx=False)
        return loss.mean()

    def training_step(self, batch, batch_idx):
        return self._common_step(batch, "fit")

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        return self._common_step(batch, STAGES[dataloader_idx])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=self.momentum)


def select(evals: list[dict], wds: tuple[float, ...]) -> dict[str, float]:
    """The reported points of one width, from its evaluations (each with `train/`, `test/`, `val/error` lists):

    - `final/*`: weight decay and epoch chosen together on the validation split (tuned ℓ2 + early stopping);
    - `wd_only/*`: weight decay chosen on validation, read at the last epoch;
    - `es_only/*`: no weight decay, the best validation epoch;
    - `untuned/*`: no weight decay, the last epoch (the plain double-descent recipe).
    Ties go to the earlier epoch and the smaller weight decay.
    """
    ev = [e for e in evals if "val/error" in e and "test/error" in e]
    if not ev:
        return {}
    zero = wds.index(0.0) if 0.0 in wds else None

    def point(prefix: str, i: int, k: int) -> dict[str, float]:
        e = ev[i]
        return {f"{prefix}/test_error": e["test/error"][k], f"{prefix}/train_error": e["train/error"][k],
                f"{prefix}/val_error": e["val/error"][k], f"{prefix}/weight_decay": wds[k],
                f"{prefix}/epochs": e["epochs"]}

    both = min(((e["val/error"][k], i, wds[k], k) for i, e in enumerate(ev) for k in range(len(wds))))
    last = min(((ev[-1]["val/error"][k], wds[k], k) for k in range(len(wds))))
    out = {**point("final", both[1], both[3]), **point("wd_only", len(ev) - 1, last[2])}
    if zero is not None:
        es = min((e["val/error"][zero], i) for i, e in enumerate(ev))
        out.update({**point("es_only", es[1], zero), **point("untuned", len(ev) - 1, zero)})
    return out
