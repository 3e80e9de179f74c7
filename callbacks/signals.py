"""Explanation signals: small registered measurements of a model, each standing for a theory of what it learns.

A signal is `compute(module, probe) -> {part: value}`; rows are written as `signal/<name>` (part ""),
`signal/<name>/<part>` (a variant) or `signal/<name>@<tensor>` (part "@<tensor>": a per-layer value). `module` is the LightningModule (or any nn.Module); `probe` a fixed train batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

COSTS = {"cheap": 10, "medium": 50, "expensive": 250}  # default schedule: every N optimiser steps


class SignalUnavailable(Exception):
    """The signal does not apply to this model (e.g. Fourier sparsity without a token embedding)."""


@dataclass(frozen=True)
class Probe:
    """A fixed batch of training data for signals that need inputs (sharpness, margin, softmax collapse)."""

    x: torch.Tensor
    y: torch.Tensor


@dataclass(frozen=True)
class Signal:
    name: str
    theory: str
    phenomena: tuple[str, ...]  # ("*",) for every phenomenon
    cost: str  # cheap | medium | expensive
    compute: Callable[[nn.Module, Probe | None], dict[str, float]]
    needs_probe: bool = False
    description: str = ""

    def applies_to(self, phenomenon: str) -> bool:
        return "*" in self.phenomena or phenomenon in self.phenomena


SIGNALS: dict[str, Signal] = {}


def signal(name, theory, phenomena=("*",), cost="cheap", needs_probe=False, description=""):
    if cost not in COSTS:
        raise ValueError(f"unknown cost {cost!r}; valid: {', '.join(COSTS)}")

    def deco(fn):
        SIGNALS[name] = Signal(name, theory, tuple(phenomena), cost, fn, needs_probe, description or fn.__doc__ or "")
        return fn

    return deco


# ----------------------------------------------------------------------------------------------- helpers


def _params(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach() for p in module.parameters()]


def _flat(module: nn.Module) -> torch.Tensor:
    return torch.cat([p.reshape(-1) for p in _params(module)]) if _params(module) else torch.zeros(0)


def _matrices(module: nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [(n, p.detach()) for n, p in module.named_parameters() if p.ndim == 2 and min(p.shape) > 1]


def _loss_fn(module: nn.Module):
    return getattr(module, "loss_fn", None) or F.cross_entropy


def _forward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    was = module.training
    module.eval()
    try:
        return module(x)
    finally:
        module.train(was)


_SIEVE = torch.zeros(0, dtype=torch.bool, device="cpu")


def is_prime_table(n: int) -> torch.Tensor:
    """Boolean table t[k] = k is prime, for 0 <= k <= n (sieve of Eratosthenes, cached and grown on demand)."""
    global _SIEVE
    if _SIEVE.numel() <= n:
        size = max(n + 1, 2 * _SIEVE.numel(), 1024)
        t = torch.ones(size, dtype=torch.bool, device="cpu")
        t[:2] = False
        for k in range(2, int(math.isqrt(size - 1)) + 1):
            if t[k]:
                t[k * k::k] = False
        _SIEVE = t
    return _SIEVE


def prime_count(values: torch.Tensor) -> int:
    """Number of entries whose value is a (positive) prime integer."""
    v = values.to(torch.int64)
    pos = v[v >= 2]
    if pos.numel() == 0:
        return 0
    return int(is_prime_table(int(pos.max())).to(pos.device)[pos].sum())  # the table lives on the CPU


# ----------------------------------------------------------------------------------------------- signals


@signal("weight_norm", "norm / complexity (Omnigrok, weight decay)")
def weight_norm(module, probe=None):
    """L2 norm of all parameters, and of each parameter tensor."""
    out = {"": float(torch.linalg.vector_norm(_flat(module)))}
    for n, p in module.named_parameters():
        out[f"@{n}"] = float(torch.linalg.vector_norm(p.detach()))
    return out


@signal("magnitude", "norm / complexity: the prime count's confounders")
def magnitude(module, probe=None):
    """Mean |w| and the number of weights with |w| >= 1.5 (the only ones that can round to a prime)."""
    w = _flat(module).abs()
    return {"mean_abs": float(w.mean()) if w.numel() else 0.0, "n_ge_1.5": float((w >= 1.5).sum())}


@signal("prime_count", "ad hoc (the position paper's deliberately absurd counterexample)")
def primes(module, probe=None):
    """Parameters whose rounded value is a positive prime (faithful); |round(w)| prime; round(10·w) prime (ours)."""
    w = _flat(module)
    r = torch.round(w)
    return {"": float(prime_count(r)), "abs": float(prime_count(r.abs())),
            "scaled10": float(prime_count(torch.round(10 * w).abs()))}


def _embedding(module: nn.Module) -> tuple[torch.Tensor, int]:
    p = getattr(module, "num_classes", None) or getattr(getattr(module, "hparams", None), "p", None)
    for name, prm in module.named_parameters():
        if prm.ndim == 2 and (name.endswith("embed.weight") or name.endswith("W_E")):
            n = p if p is not None and p <= prm.shape[0] else prm.shape[0]
            return prm.detach()[:n], n
    raise SignalUnavailable("no token embedding (a parameter named *embed.weight or W_E)")


@signal("fourier_sparsity", "circuits / progress measures (Nanda et al. 2023)",
        phenomena=("grokking", "grokking_data"))
def fourier_sparsity(module, probe=None, k: int = 5):
    """Fraction of the embedding's non-constant Fourier power in its top-k frequencies (random ≈ k/(p//2))."""
    E, p = _embedding(module)  # (p, d)
    power = torch.fft.rfft(E.double(), dim=0).abs().pow(2).sum(1)[1:]  # (p//2,) drop the constant term
    top = torch.topk(power, min(k, power.numel())).values.sum()
    return {"": float(top / power.sum().clamp_min(1e-30))}


def effective_rank_of(w: torch.Tensor) -> float:
    """Roy & Vetterli 2007: exp of the entropy of the normalised singular values."""
    s = torch.linalg.svdvals(w.double())
    q = s / s.sum().clamp_min(1e-30)
    q = q[q > 0]
    return float(torch.exp(-(q * q.log()).sum()))


@signal("effective_rank", "representation / feature learning", cost="medium")
def effective_rank(module, probe=None):
    """Mean effective rank over weight matrices, and each matrix's."""
    mats = _matrices(module)
    if not mats:
        raise SignalUnavailable("no weight matrices")
    per = {f"@{n}": effective_rank_of(m) for n, m in mats}
    return {"": sum(per.values()) / len(per), **per}


def _tokens(z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (n, vocab) and labels (n,); a model answering several tokens (n, k, vocab) counts each as a sample."""
    return (z.flatten(0, -2), y.flatten()) if z.ndim > 2 else (z, y)


def _loss_and_params(module, probe):
    params = [p for p in module.parameters() if p.requires_grad]
    loss = _loss_fn(module)(module(probe.x), probe.y)
    return loss, params


@signal("sharpness", "optimisation dynamics / edge of stability", cost="expensive", needs_probe=True)
def sharpness(module, probe, iters: int = 10):
    """Top Hessian eigenvalue of the probe loss by power iteration on Hessian-vector products (double backward)."""
    with torch.enable_grad():
        loss, params = _loss_and_params(module, probe)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        g = torch.Generator(device="cpu").manual_seed(0)
        v = [torch.randn(p.shape, generator=g, device="cpu").to(p.device) for p in params]
        lam = 0.0
        for _ in range(iters):
            norm = torch.sqrt(sum((x * x).sum() for x in v))
            v = [x / norm for x in v]
            hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)
            lam = float(sum((a * b).sum() for a, b in zip(hv, v)))
            v = [h.detach() for h in hv]
    return {"": lam}


@signal("grad_norm", "optimisation dynamics", cost="medium", needs_probe=True)
def grad_stats(module, probe, chunks: int = 8):
    """Norm of the probe-loss gradient, and its signal-to-noise: |mean g|² / mean |g_i − mean g|² over chunks."""
    n = probe.y.shape[0]
    size = max(1, n // chunks)
    flat = []
    with torch.enable_grad():
        for i in range(0, size * chunks, size):
            if i >= n:
                break
            loss, params = _loss_and_params(module, Probe(probe.x[i:i + size], probe.y[i:i + size]))
            gs = torch.autograd.grad(loss, params, allow_unused=True)
            flat.append(torch.cat([(z if z is not None else torch.zeros_like(p)).reshape(-1)
                                   for z, p in zip(gs, params)]))
    G = torch.stack(flat)  # (chunks, n_params)
    mean = G.mean(0)
    noise = (G - mean).pow(2).sum(1).mean()
    return {"": float(mean.norm()), "snr": float(mean.pow(2).sum() / noise.clamp_min(1e-30))}


@signal("softmax_collapse", "numerical stability of softmax (Prieto et al. 2025)", cost="medium", needs_probe=True)
def softmax_collapse(module, probe):
    """Fraction of probe samples with Σ exp(z − max z) == 1 in the logits' dtype: their loss gradient underflows."""
    with torch.no_grad():
        z, y = _tokens(_forward(module, probe.x), probe.y)
        s = torch.exp(z - z.max(-1, keepdim=True).values).sum(-1)
        zero_loss = F.cross_entropy(z, y, reduction="none") == 0
    return {"": float((s == 1).float().mean()), "zero_loss": float(zero_loss.float().mean())}


@signal("margin", "implicit bias / max-margin", cost="medium", needs_probe=True)
def margin(module, probe):
    """Train classification margin z_y − max_{j≠y} z_j: mean and minimum over the probe."""
    with torch.no_grad():
        z, y = _tokens(_forward(module, probe.x), probe.y)
        zy = z.gather(1, y[:, None]).squeeze(1)
        other = z.scatter(1, y[:, None], float("-inf")).max(1).values
        m = zy - other
    return {"": float(m.mean()), "min": float(m.min())}


@signal("sparsity", "sparsity (lottery tickets)", phenomena=("*",))
def sparsity(module, probe=None):
    """Fraction of weights exactly zero; with masks (buffers named *mask), the fraction of weights kept."""
    w = _flat(module)
    out = {"": float((w == 0).float().mean()) if w.numel() else 0.0}
    masks = [b for n, b in module.named_buffers() if n.endswith("mask")]
    if masks:
        m = torch.cat([b.reshape(-1).float() for b in masks])
        out["kept"] = float(m.mean())
    return out


def effective_parameters(features_train: torch.Tensor, features_eval: torch.Tensor, ridge: float = 0.0) -> float:
    """Curth et al. 2023: p̂ = (n/#I) Σ_i ||ŝ(x_i)||² for the linear smoother ŷ = S y of (ridge) least squares."""
    X = features_train.double()
    n, d = X.shape
    if n <= d:  # through the n×n Gram matrix
        K = X @ X.T + ridge * torch.eye(n, dtype=X.dtype, device=X.device)
        S = features_eval.double() @ X.T @ torch.linalg.pinv(K)
    else:
        A = X.T @ X + ridge * torch.eye(d, dtype=X.dtype, device=X.device)
        S = features_eval.double() @ torch.linalg.pinv(A) @ X.T
    return float(n / S.shape[0] * S.pow(2).sum())


@signal("effective_parameters", "bias–variance (Curth, Jeffares & van der Schaar 2023)",
        phenomena=("double_descent",), cost="medium", needs_probe=True)
def effective_params(module, probe):
    """For models exposing `features(x)` and a `ridge` (a linear head on fixed features): p̂ on the model's `eval_x`
    (held-out inputs, no labels: Curth et al.'s p̂_test, which peaks at interpolation) or else the probe inputs."""
    feats = getattr(module, "features", None)
    if feats is None:
        raise SignalUnavailable("model has no `features(x)` (effective parameters need a linear smoother)")
    with torch.no_grad():
        F_tr = feats(getattr(module, "train_x", probe.x))
        F_ev = feats(getattr(module, "eval_x", probe.x))
    return {"": effective_parameters(F_tr, F_ev, float(getattr(module, "ridge", 0.0)))}


DEFAULT = ("weight_norm", "magnitude", "prime_count", "fourier_sparsity", "effective_rank", "sharpness",
           "grad_norm", "softmax_collapse", "margin", "sparsity", "effective_parameters")
