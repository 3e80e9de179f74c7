"""Pruning at initialisation: SNIP, GraSP and SynFlow scores, magnitude and random baselines, and the masks they give.

Every method scores the prunable weights of an untrained network and keeps, per pruning group, the counts it is
given (the IMP ticket's per-layer counts, so every method is compared at the same per-layer sparsities, as Frankle
et al. 2021 do). Scores are computed on a copy: the network handed in is never changed.

- SNIP (Lee, Ajanthan & Torr, ICLR 2019): connection sensitivity |∂L/∂c| = |g ⊙ w| on one batch; keep the largest.
- GraSP (Wang, Zhang & Grosse, ICLR 2020): S = −w ⊙ (H g), the first-order change in the gradient norm when a
  weight is removed; the *highest* scores are removed (their removal preserves gradient flow best), so the lowest
  are kept. H g by double backpropagation; logits divided by a temperature (200 in their code).
- SynFlow (Tanaka, Kunin, Yamins & Ganguli, NeurIPS 2020): data-free. Parameters replaced by their absolute values,
  R = 1ᵀ(∏|W|)1 is the output summed on an all-ones input, scores |∂R/∂w ⊙ w|; pruned iteratively, 100 times, the
  kept fraction following an exponential schedule, the scores recomputed on the survivors each time.
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

METHODS = ("snip", "grasp", "synflow", "magnitude", "random")
Scores = dict[str, torch.Tensor]


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown pruning-at-init method {method!r}; valid: {', '.join(METHODS)}")
    return method


def prunable(net: nn.Module) -> dict[str, nn.Parameter]:
    """The weights a mask covers (`net.masks()` names), as parameters of `net`."""
    params = dict(net.named_parameters())
    return {k: params[k] for k in net.masks()}


# ------------------------------------------------------------------------------------------ scores from a loss


def snip_from_loss(params: dict[str, torch.Tensor], loss_fn: Callable[[], torch.Tensor]) -> Scores:
    """|g ⊙ w| with g = ∂loss/∂w at the current weights."""
    grads = torch.autograd.grad(loss_fn(), list(params.values()))
    return {k: (g * w).abs().detach() for (k, w), g in zip(params.items(), grads)}


def grasp_from_loss(params: dict[str, torch.Tensor], loss_fn: Callable[[], torch.Tensor]) -> Scores:
    """−w ⊙ (H g): g = ∇loss (held fixed), H g = ∇(gᵀ ∇loss) by a second backward pass through the first."""
    ws = list(params.values())
    g = [x.detach() for x in torch.autograd.grad(loss_fn(), ws)]
    g2 = torch.autograd.grad(loss_fn(), ws, create_graph=True)
    z = sum((a * b).sum() for a, b in zip(g, g2))
    hg = torch.autograd.grad(z, ws)
    return {k: (-w * h).detach() for (k, w), h in zip(params.items(), hg)}


# ------------------------------------------------------------------------------------------ scores of a network


def _classification_loss(net: nn.Module, x: torch.Tensor, y: torch.Tensor, temperature: float = 1.0):
    return lambda: F.cross_entropy(net(x) / temperature, y)


def snip_scores(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Scores:
    work = copy.deepcopy(net)
    return snip_from_loss(prunable(work), _classification_loss(work, x, y))


def grasp_scores(net: nn.Module, x: torch.Tensor, y: torch.Tensor, temperature: float = 200.0) -> Scores:
    work = copy.deepcopy(net)
    return grasp_from_loss(prunable(work), _classification_loss(work, x, y, temperature))


def synflow_scores(net: nn.Module, d_in: int) -> Scores:
    """One SynFlow evaluation on a copy of `net` (masks as they are): |∂R/∂w ⊙ w| with every parameter made
    non-negative, float64, R the summed output on one all-ones input (ReLUs are then the identity)."""
    work = copy.deepcopy(net).double()
    with torch.no_grad():
        for p in work.parameters():
            p.abs_()
    params = prunable(work)
    r = work(torch.ones(1, d_in, dtype=torch.float64)).sum()
    grads = torch.autograd.grad(r, list(params.values()))
    return {k: (g * w * m).abs().detach() for (k, w), g, m in zip(params.items(), grads, work.masks().values())}


# ------------------------------------------------------------------------------------------ masks


def synflow_masks(net: nn.Module, d_in: int, counts: list[tuple[list[str], int]], iterations: int = 100):
    """SynFlow's iterative pruning: after iteration k of n each group keeps N·(K/N)^(k/n) weights (K its final
    count), chosen by scores recomputed on the survivors; nested, ending at exactly K."""
    from phenomon.models.lottery import topk_masks

    if iterations < 1:
        raise ValueError(f"synflow needs at least one iteration, got {iterations}")
    work = copy.deepcopy(net)
    sizes = {tuple(names): sum(work.masks()[n].numel() for n in names) for names, _ in counts}
    masks = {k: torch.ones_like(m) for k, m in work.masks().items()}
    for it in range(1, iterations + 1):
        work.set_masks(masks)
        step = [(names, max(k, round(sizes[tuple(names)] * (k / sizes[tuple(names)]) ** (it / iterations))))
                for names, k in counts]
        masks = topk_masks(synflow_scores(work, d_in), masks, step)
    return masks


def masks_at_init(method: str, net: nn.Module, counts: list[tuple[list[str], int]], x: torch.Tensor | None = None,
                  y: torch.Tensor | None = None, seed: int = 0, iterations: int = 100):
    """The masks `method` chooses for the untrained `net` at the given per-group counts (one shot, from dense)."""
    from phenomon.models.lottery import topk_masks

    check_method(method)
    if method in ("snip", "grasp") and (x is None or y is None):
        raise ValueError(f"{method} scores the weights on a batch of training data: pass x and y")
    weights = prunable(net)
    if method == "synflow":
        d_in = next(iter(weights.values())).shape[1]
        return synflow_masks(net, d_in, counts, iterations)
    if method == "snip":
        scores = snip_scores(net, x, y)
    elif method == "grasp":
        scores = {k: -s for k, s in grasp_scores(net, x, y).items()}  # remove the highest: keep the lowest
    elif method == "magnitude":
        scores = {k: w.detach().abs() for k, w in weights.items()}
    else:
        g = torch.Generator().manual_seed(seed)
        scores = {k: torch.rand(w.shape, generator=g) for k, w in weights.items()}
    return topk_masks(scores, None, counts)


def synaptic_saliency_per_layer(scores: Scores) -> dict[str, float]:
    """Σ of the scores per layer: SynFlow's conserved quantity (equal across the layers of a bias-free linear net)."""
    return {k: float(s.sum()) for k, s in scores.items()}

