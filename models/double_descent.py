"""Double descent models: an MLP whose width is the sweep axis, and random features with a closed-form head.

Both log `{stage}/loss`, `{stage}/acc` and `{stage}/error` on the whole train, test and validation splits at every
evaluation (nothing per training step: a step of these MLPs costs less than a `self.log`), plus `epochs` (epochs of
training so far), and keep the evaluations in `evals` for the run's summary.
"""

from __future__ import annotations

import math

import pytorch_lightning as L
import torch
import torch.nn.functional as F
from torch import nn

STAGES = ("train", "test", "val")  # the datamodule's evaluation loaders, in order


class MLP(nn.Sequential):
    """d_in → width (× depth, ReLU) → d_out with PyTorch's default init: width² + 52·width + 10 parameters at depth 2
    on MNIST-1D."""

    def __init__(self, d_in: int, width: int, d_out: int, depth: int = 2):
        if width < 1 or depth < 1:
            raise ValueError(f"width and depth must be positive, got {width}, {depth}")
        layers, d = [], d_in
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.ReLU()]
            d = width
        super().__init__(*layers, nn.Linear(d, d_out))


class RandomFeatures(nn.Module):
    """Frozen relu(x W)/√N with W ~ N(0, 1/d_in) (a buffer: never trained), then a bias-free linear head."""

    def __init__(self, d_in: int, n_features: int, d_out: int, seed: int = 0):
        super().__init__()
        if n_features < 1:
            raise ValueError(f"n_features must be positive, got {n_features}")
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("W", torch.randn(d_in, n_features, generator=g) / math.sqrt(d_in))
        self.head = nn.Linear(n_features, d_out, bias=False)
        nn.init.zeros_(self.head.weight)

    def features(self, x: torch.Tensor) -> torch.Tensor:  # (batch, d_in) -> (batch, N)
        return F.relu(x @ self.W) / math.sqrt(self.W.shape[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (batch, d_out)


def least_squares_head(feats: torch.Tensor, targets: torch.Tensor, ridge: float = 0.0) -> torch.Tensor:
    """argmin ||F w − Y||² + ridge·||w||², the minimum-norm solution when ridge = 0; (d_out, N), float64 inside.

    Through the n×n Gram matrix when N ≥ n (w = Fᵀ (F Fᵀ + λI)⁺ Y), else the N×N one: the cost stays at the smaller.
    """
    X, Y = feats.detach().double().cpu(), targets.double().cpu()  # gelsd (rank-revealing) runs on the CPU
    n, N = X.shape
    eye = torch.eye(min(n, N), dtype=X.dtype, device=X.device)
    if N >= n:
        w = X.T @ torch.linalg.lstsq(X @ X.T + ridge * eye, Y, driver="gelsd").solution
    else:
        w = torch.linalg.lstsq(X.T @ X + ridge * eye, X.T @ Y, driver="gelsd").solution
    return w.T.to(feats.dtype).to(feats.device)


def _mlp_layers(net: nn.Module) -> list[nn.Linear] | None:
    """The Linear layers of a Linear-ReLU-…-Linear stack with every parameter trained and no hooks; else None."""
    mods = list(net.children()) if type(net) in (MLP, nn.Sequential) else []
    if len(mods) < 1 or len(mods) % 2 != 1:
        return None
    for i, m in enumerate(mods):
        want = nn.Linear if i % 2 == 0 else nn.ReLU
        if type(m) is not want or m._forward_hooks or m._forward_pre_hooks or m._backward_hooks:
            return None
        if i % 2 == 0 and (m.bias is None or not all(p.requires_grad for p in m.parameters())):
            return None
    return mods[::2]


def _autocast() -> bool:
    """Whether autocast is on for any device type (mixed precision): the analytic step is written for one dtype."""
    return any(torch.is_autocast_enabled(d) for d in ("cpu", "cuda"))


def analytic_ok(module: "WidthModule", opt: torch.optim.Optimizer) -> bool:
    """Whether `sgd_epoch` trains `module` exactly as autograd and `opt.step()` would: a plain MLP, the base
    cross-entropy loss, plain SGD (momentum and weight decay allowed; no dampening, Nesterov or maximize) over
    exactly the net's parameters, and no autocast."""
    layers = _mlp_layers(module.net)
    if layers is None or type(module).loss is not WidthModule.loss or type(opt) is not torch.optim.SGD:
        return False
    if _autocast() or len(opt.param_groups) != 1:
        return False
    g = opt.param_groups[0]
    if g.get("nesterov") or g.get("dampening") or g.get("maximize"):
        return False
    return [id(p) for p in g["params"]] == [id(p) for m in layers for p in (m.weight, m.bias)]


def sgd_epoch(net: nn.Module, opt: torch.optim.SGD, xs: torch.Tensor, ys: torch.Tensor,
              num_classes: int) -> torch.Tensor:
    """Minibatch SGD over one epoch of an MLP (`analytic_ok`) with the gradients written out instead of autograd.

    Cross-entropy's gradient is (softmax − one-hot)/batch; each Linear's is gᵀh and Σg, and each ReLU passes g where
    its output is positive (`threshold_backward`, what autograd runs). The update is torch's SGD: d = g + wd·p,
    momentum buffer b ← μb + d (b = d at the first step), p ← p − lr·b, with the buffers kept in `opt.state`, so
    a later `opt.step()` carries on. The logits are computed transposed, (classes, batch): torch's softmax over a
    row of 10 costs ~23 µs on a CPU thread, over a column 2.6 µs. Autograd's per-op bookkeeping is most of a small
    MLP's step: this is ~3× faster at width 8 and 1.3× at 384 on one CPU thread (same updates to float rounding).
    Returns the last minibatch's loss, before its update.
    """
    layers = _mlp_layers(net)
    params = [p for m in layers for p in (m.weight, m.bias)]
    *hidden, last = layers
    group = opt.param_groups[0]
    lr, mom, wd = group["lr"], group["momentum"], group["weight_decay"]
    bufs = [opt.state[p].get("momentum_buffer") for p in params] if mom else []
    fresh = bool(mom) and any(b is None for b in bufs)
    inv_b, n = 1.0 / xs.shape[1], len(xs)
    with torch.no_grad():
        onehots = F.one_hot(ys, num_classes).to(xs.dtype).transpose(1, 2).contiguous()  # (steps, classes, batch)
        last_b = last.bias.unsqueeze(1)  # a view: follows the in-place updates
        for k in range(n):
            hs = [xs[k]]
            for m in hidden:
                hs.append(torch.addmm(m.bias, hs[-1], m.weight.t()).relu_())
            logits_t = torch.addmm(last_b, last.weight, hs[-1].t())  # (classes, batch)
            g_t = torch.softmax(logits_t, 0).sub_(onehots[k]).mul_(inv_b)
            grads = [g_t.mm(hs[-1]), g_t.sum(1)]  # the last layer's weight and bias; earlier layers prepended
            g = torch.ops.aten.threshold_backward(g_t.t().mm(last.weight), hs[-1], 0)
            for i in range(len(hidden) - 1, -1, -1):
                grads[:0] = [g.t().mm(hs[i]), g.sum(0)]
                if i:
                    g = torch.ops.aten.threshold_backward(g.mm(hidden[i].weight), hs[i], 0)
            if k == n - 1:
                last_grads = [d.clone() for d in grads]  # left in p.grad, as autograd leaves them
            if wd:
                torch._foreach_add_(grads, params, alpha=wd)  # d = g + wd·p
            if not mom:
                torch._foreach_add_(params, grads, alpha=-lr)
                continue
            if fresh:
                fresh = False
            else:
                torch._foreach_add_(grads, bufs, alpha=mom)  # b ← d + μb, written into d (a fresh tensor)
            bufs = grads
            torch._foreach_add_(params, bufs, alpha=-lr)
        for p, d in zip(params, last_grads):
            p.grad = d
        for p, b in zip(params, bufs):
            opt.state[p]["momentum_buffer"] = b
        return F.cross_entropy(logits_t.t(), ys[-1])


class WidthModule(L.LightningModule):
    """Cross-entropy minibatch training with SGD + momentum (the model-wise double descent recipe).

    One Lightning step is one epoch: the batch is the epoch's minibatches stacked, (steps, batch, d_in) inputs and
    (steps, batch) labels (`MNIST1DDataModule(whole_epochs=True)`), and `training_step` steps through them with
    manual optimisation. A minibatch step of these MLPs costs about as much as Lightning's own per-step work, which
    is now paid once per epoch. `global_step` still counts minibatch steps: rows, signals, `max_steps` and `epochs`
    read it as before.
    """

    analytic = True  # train a plain MLP with `sgd_epoch` (the same updates without autograd); False: autograd

    def __init__(self, net: nn.Module, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 0.0,
                 steps_per_epoch: int = 1, num_classes: int = 10):
        super().__init__()
        self.automatic_optimization = False
        self.net, self.lr, self.momentum, self.weight_decay = net, lr, momentum, weight_decay
        self.steps_per_epoch, self.num_classes = steps_per_epoch, num_classes
        self.evals: list[dict[str, float]] = []  # one dict per evaluation: step, epochs, train/error, ...

    def forward(self, x):
        return self.net(x)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y)

    def _common_step(self, batch, stage: str):
        x, y = batch
        logits = self.net(x)
        loss = self.loss(logits, y)
        if stage != "fit":
            err = (logits.argmax(1) != y).float().mean()
            vals = {f"{stage}/loss": loss, f"{stage}/acc": 1 - err, f"{stage}/error": err}
            if stage == "train":
                vals["epochs"] = self.global_step / self.steps_per_epoch
                self.evals.append({"step": self.global_step})
            self.log_dict(vals, add_dataloader_idx=False)
            self.evals[-1].update({k: float(v) for k, v in vals.items()})
        return loss

    def training_step(self, batch, batch_idx):  # batch: one epoch, (steps, batch, d_in) and (steps, batch)
        xs, ys = batch
        if self.trainer.max_steps > 0:  # the last epoch may be cut short by max_steps
            xs, ys = xs[: self.trainer.max_steps - self.global_step], ys[: self.trainer.max_steps - self.global_step]
        # the torch optimizer itself: Lightning's wrapper costs ~10% of a width-16 step; its count is kept below
        opt, loss = self.optimizers().optimizer, None
        if len(xs) and self.analytic and analytic_ok(self, opt):
            loss = sgd_epoch(self.net, opt, xs, ys, self.num_classes)
            self._count_steps(len(xs))
            return loss
        for x, y in zip(xs, ys):
            loss = self._common_step((x, y), "fit")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        self._count_steps(len(xs))
        return None if loss is None else loss.detach()

    def _count_steps(self, k: int) -> None:
        """Advance Lightning's count of manual optimiser steps (what `global_step` reports) by `k`."""
        progress = self.trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
        for _ in range(k):
            progress.increment_ready()
            progress.increment_completed()

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        return self._common_step(batch, STAGES[dataloader_idx])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)


class ClosedFormModule(WidthModule):
    """Random features whose head is solved, not trained: one manual-optimisation step writes the least-squares
    solution on one-hot targets. Gradient descent on the head acts like ridge with λ ≈ 1/(lr·steps) and shows no
    peak in any practical budget; the closed form shows the textbook one.

    Exposes `features(x)`, `train_x`, `eval_x` (held-out inputs, no labels) and `ridge`: the effective-parameters
    signal treats it as the linear smoother it is (Curth et al. 2023).
    """

    def __init__(self, net: RandomFeatures, train_x: torch.Tensor, ridge: float = 0.0, num_classes: int = 10,
                 eval_x: torch.Tensor | None = None):
        super().__init__(net, steps_per_epoch=1, num_classes=num_classes)
        self.ridge = ridge
        # buffers: they move with the module to the device
        self.register_buffer("train_x", train_x, persistent=False)
        self.register_buffer("eval_x", train_x if eval_x is None else eval_x, persistent=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # what the head minimises: squared error to one-hot targets (per sample)
        return (logits - F.one_hot(y, self.num_classes).to(logits.dtype)).pow(2).sum(1).mean()

    loss_fn = loss  # the signals' loss (sharpness, gradient noise) is the one the head solves

    def training_step(self, batch, batch_idx):  # batch: the whole train split
        x, y = batch
        opt = self.optimizers()
        with torch.no_grad():
            w = least_squares_head(self.net.features(x), F.one_hot(y, self.num_classes).to(x.dtype), self.ridge)
            self.net.head.weight.copy_(w)
        opt.step()  # no gradients: it only counts the step

    def configure_optimizers(self):
        return torch.optim.SGD(self.net.head.parameters(), lr=0.0)
