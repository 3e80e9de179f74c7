"""Pruning at initialisation: known answers for SNIP, GraSP and SynFlow, the masks they give, and bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from phenomon.models.lottery import MaskedMLP, keep_counts
from phenomon.models.prune_init import (METHODS, grasp_from_loss, masks_at_init, snip_scores, synflow_masks,
                                        synflow_scores, synaptic_saliency_per_layer)


def _net(seed=0, hidden=(6, 5), bias=True):
    torch.manual_seed(seed)
    net = MaskedMLP(4, hidden, 3)
    if not bias:
        with torch.no_grad():
            for layer in net.layers:
                layer.bias.zero_()
    return net


def _shapes(net):
    return {k: tuple(m.shape) for k, m in net.masks().items()}


def test_snip_scores_equal_abs_gradient_times_weight_by_hand():
    """A one-layer net: dL/dW for cross-entropy is (softmax(z) − onehot(y))ᵀ x / n; SNIP is |that ⊙ W|."""
    torch.manual_seed(1)
    net = MaskedMLP(4, (), 3)
    x, y = torch.randn(5, 4), torch.tensor([0, 2, 1, 1, 0])
    w, b = net.layers[0].weight.detach(), net.layers[0].bias.detach()
    p = torch.softmax(x @ w.T + b, 1)
    grad = (p - F.one_hot(y, 3).float()).T @ x / 5  # (3, 4)
    s = snip_scores(net, x, y)
    torch.testing.assert_close(s["layers.0.weight"], (grad * w).abs())
    assert torch.equal(net.layers[0].weight.detach(), w), "the network handed in is not changed"


def test_grasp_sign_convention_on_a_quadratic():
    """L = ½ θᵀAθ − bᵀθ: g = Aθ − b, H g = A g, so the score is −θ ⊙ A(Aθ − b); the highest score is the weight
    whose removal raises the gradient norm most (first order), and GraSP removes it."""
    A = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 3.0]])
    b = torch.tensor([1.0, -1.0, 0.5])
    theta = torch.tensor([0.3, -0.8, 1.2], requires_grad=True)
    s = grasp_from_loss({"w": theta}, lambda: 0.5 * theta @ A @ theta - b @ theta)["w"]
    g = A @ theta.detach() - b
    torch.testing.assert_close(s, -theta.detach() * (A @ g))
    # first-order change of ‖g‖² when weight q is set to 0 (δ = −θ_q e_q) is 2 δᵀ A g = 2 s_q
    for q in range(3):
        d = torch.zeros(3)
        d[q] = -theta.detach()[q]
        assert float(2 * d @ A @ g) == pytest.approx(2 * float(s[q]), rel=1e-6)


def test_grasp_keeps_the_lowest_scores():
    net = _net()
    x, y = torch.randn(20, 4), torch.randint(0, 3, (20,))
    from phenomon.models.prune_init import grasp_scores

    scores = grasp_scores(net, x, y)
    counts = keep_counts(_shapes(net), 0.5, 0.5, "layer", 1)
    m = masks_at_init("grasp", net, counts, x, y)
    for k, s in scores.items():
        assert float(s[m[k]].max()) <= float(s[~m[k]].min()), "the highest-scoring weights are the ones removed"


def test_synflow_conserves_synaptic_saliency_per_layer_on_a_linear_net():
    """With biases 0 and |W| everywhere the net is linear on positive inputs; R is linear in each layer's weights,
    so each layer's scores sum to R (Tanaka et al. 2020, Theorem 2)."""
    net = _net(bias=False)
    s = synaptic_saliency_per_layer(synflow_scores(net, 4))
    ws = [layer.weight.detach().double().abs() for layer in net.layers]
    r = float(torch.ones(1, 3, dtype=torch.float64) @ ws[2] @ ws[1] @ ws[0] @ torch.ones(4, 1, dtype=torch.float64))
    assert list(s.values()) == pytest.approx([r] * 3, rel=1e-9)


def test_synflow_is_data_free_iterative_and_hits_the_counts_exactly():
    net = _net()
    counts = keep_counts(_shapes(net), 0.8, 0.5, "layer", 1)
    m = synflow_masks(net, 4, counts, iterations=100)
    assert [int(m[k].sum()) for k in m] == [k for _, k in counts]
    assert all(net.layers[i].mask.all() for i in range(3)), "the network handed in keeps its masks"
    assert all(bool((m[k] <= 1).all()) for k in m)
    kept_scores = synflow_scores(_net(), 4)  # on the dense net: a weight kept scores at least one removed, mostly
    assert any(float(kept_scores[k][m[k]].mean()) > float(kept_scores[k][~m[k]].mean()) for k in m)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_keeps_the_given_per_layer_counts(method):
    net = _net(hidden=(16, 8))
    x, y = torch.randn(30, 4), torch.randint(0, 3, (30,))
    counts = keep_counts(_shapes(net), 0.6, 0.3, "layer", 2)
    m = masks_at_init(method, net, counts, x, y, seed=3)
    assert {k: int(v.sum()) for k, v in m.items()} == {names[0]: k for names, k in counts}


def test_unknown_method_is_one_line_listing_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown pruning-at-init method 'snipp'; valid: snip, grasp, synflow, "
                                         r"magnitude, random$"):
        masks_at_init("snipp", _net(), [])
    with pytest.raises(ValueError, match="batch of training data"):
        masks_at_init("snip", _net(), [])
