"""Function-preserving ReLU rescalings per model family: hidden units' incoming weights and bias × c, outgoing × 1/c.

relu(c·z) = c·relu(z) for c > 0, so the network computes the same function (Dinh et al. 2017). Factors are powers
of two, so the rescaled products are exact in floating point and the logits come out bit-identical.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

PER_UNIT = (0.5, 1.0, 2.0, 4.0)  # a c per hidden unit is drawn from these

Scaled = list[tuple[torch.Tensor, int]]  # (tensor, the axis that indexes the hidden units)
Rescaling = tuple[Scaled, Scaled, str]  # (× c, × 1/c, what was rescaled)


def _mlp(net) -> Rescaling:  # double descent: Linear, ReLU, Linear, ReLU, ..., Linear; weights are (out, in)
    lin = [m for m in net if isinstance(m, nn.Linear)]
    return ([(lin[0].weight, 0), (lin[0].bias, 0)], [(lin[1].weight, 1)],
            "first hidden layer: 0.weight, 0.bias × c; 2.weight × 1/c")


def _random_features(net) -> Rescaling:  # relu(x W c)/√N · (head / c): the frozen features carry the c
    return [(net.W, 1)], [(net.head.weight, 1)], "frozen features W (a buffer) × c; head.weight × 1/c"


def _masked_mlp(net) -> Rescaling:  # masks unchanged: pruned weights stay exactly zero
    a, b = net.layers[0], net.layers[1]
    return ([(a.weight, 0), (a.bias, 0)], [(b.weight, 1)],
            "first hidden layer: layers.0.weight, layers.0.bias × c; layers.1.weight × 1/c")


def _embed_mlp(net) -> Rescaling:
    return ([(net.hidden.weight, 0), (net.hidden.bias, 0)], [(net.out.weight, 1)],
            "hidden.weight, hidden.bias × c; out.weight × 1/c")


def _transformer(net) -> Rescaling:  # W_in (d_model, d_mlp), W_out (d_mlp, d_model)
    return [(net.W_in, 1), (net.b_in, 0)], [(net.W_out, 0)], "MLP block: W_in, b_in × c; W_out × 1/c"


RESCALINGS: dict[str, Callable[[nn.Module], Rescaling]] = {
    "MLP": _mlp, "RandomFeatures": _random_features, "MaskedMLP": _masked_mlp, "EmbedMLP": _embed_mlp,
    "OneLayerTransformer": _transformer,
}


def rescaling(module: nn.Module) -> Rescaling:
    """The ReLU rescaling of a LightningModule's `net` (or of the network itself); ValueError naming the known ones."""
    net = getattr(module, "net", module)
    name = type(net).__name__
    if name not in RESCALINGS:
        raise ValueError(f"no ReLU rescaling for {name}; known: {', '.join(RESCALINGS)}")
    return RESCALINGS[name](net)


@torch.no_grad()
def rescale_(r: Rescaling, c: torch.Tensor) -> None:
    """Hidden unit i's incoming weights and bias × c[i], its outgoing weights × 1/c[i], in place."""
    up, down, _ = r
    for group, op in ((up, torch.Tensor.mul_), (down, torch.Tensor.div_)):
        for t, axis in group:
            shape = [1] * t.ndim
            shape[axis] = -1
            op(t, c.to(t.device, t.dtype).view(shape))


def n_units(r: Rescaling) -> int:
    t, axis = r[0][0]
    return t.shape[axis]


def per_unit_factors(n: int, seed: int = 0) -> torch.Tensor:
    """A different c for each hidden unit, from PER_UNIT (powers of two: the rescaled products stay exact)."""
    g = torch.Generator().manual_seed(seed)
    return torch.tensor(PER_UNIT)[torch.randint(len(PER_UNIT), (n,), generator=g)]
