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


# ------------------------------------------------------------------------------------------ the experiment


def _group(curves: dict[str, list[float]], dense=0.60, seeds=(0, 1, 2), jitter=0.004):
    import polars as pl

    rem = [1.0, 0.64, 0.41, 0.27, 0.17, 0.11]
    rows = []
    for variant, accs in curves.items():
        toggles = "" if variant == "ticket" else variant
        for s in seeds:
            for rnd, (r, a) in enumerate(zip(rem, [dense, *accs])):
                rows.append({"run": f"{variant}-{s}", "toggles": toggles, "seed": s, "round": rnd, "step": 800,
                             "weights_remaining": r, "round/test_acc": a + jitter * (s - 1) * (variant != "ticket")})
    return pl.DataFrame(rows)


TICKET = [0.61, 0.62, 0.61, 0.595, 0.55]  # within 1 pt of dense down to 17% (round 4)


def test_group_verdict_no_method_matches_the_ticket_and_says_what_it_cost():
    from phenomon.phenomena.tickets_at_init import TicketsAtInitConfig, group_criterion

    low = [0.58, 0.55, 0.52, 0.48, 0.44]
    v = group_criterion(_group({"ticket": TICKET, **{m: low for m in ("snip", "grasp", "synflow", "prune_at_init",
                                                                        "random_prune")}}), TicketsAtInitConfig())
    assert v.effect is False and v.line.startswith("no ticket before training"), v.line
    assert v.numbers["level_round"] == 4 and v.numbers["level_remaining"] == pytest.approx(0.17)
    assert "snip 0.480 ± 0.004 (-11.5 pts [" in v.line and "n=3" in v.line
    assert "IMP trained 5 × 20 = 100 epochs" in v.line and v.numbers["imp_epochs"] == 100


def test_group_verdict_a_matching_method_and_an_undecided_one():
    from phenomon.phenomena.tickets_at_init import TicketsAtInitConfig, group_criterion

    v = group_criterion(_group({"ticket": TICKET, "synflow": TICKET, "random_prune": [0.5] * 5}),
                        TicketsAtInitConfig())
    assert v.effect is True and v.numbers["matching"] == ["synflow"]
    noisy = _group({"ticket": TICKET, "snip": [0.6, 0.6, 0.6, 0.58, 0.5]}, jitter=0.03)
    u = group_criterion(noisy, TicketsAtInitConfig())
    assert u.effect is None and "undecided" in u.line, u.line
    assert group_criterion(_group({"snip": TICKET}), TicketsAtInitConfig()).effect is None


@pytest.mark.parametrize("method", ["snip", "grasp", "synflow"])
def test_lottery_rounds_prune_the_untrained_network_with_the_method(method):
    """In a run's rounds the methods score θ0 (never the trained weights) at that round's per-layer counts."""
    from phenomon.phenomena.lottery_ticket.training import new_net, next_masks
    from phenomon.phenomena.tickets_at_init import TicketsAtInitConfig

    cfg = TicketsAtInitConfig(hidden=(16, 8), prune_by=method, synflow_iterations=20)
    net = new_net(cfg, cfg.seed)
    theta0 = {k: v.detach().clone() for k, v in net.named_parameters()}
    trained = {k: v + torch.randn_like(v) for k, v in theta0.items()}
    prev = {k: torch.ones_like(m) for k, m in net.masks().items()}
    counts = keep_counts(cfg.shapes(), 0.36, 0.19, "layer", 2)
    x, y = torch.randn(50, 40), torch.randint(0, 10, (50,))
    got = next_masks(cfg, 2, prev, trained, trained, theta0, counts, (x, y))
    want = masks_at_init(method, net, counts, x, y, iterations=20)
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_tiny_experiment_end_to_end(runs, tmp_path):
    """The ticket and two at-init methods, one seed, tiny net: every run finishes and the verdict names them."""
    from tests.conftest import phenomon

    r = phenomon("experiment", "tickets_at_init", "--runs", str(runs), "--variants", "ticket,snip,synflow",
                 "--seeds", "0", "--set", "hidden=16,8", "--set", "train_size=200", "--set", "test_size=100",
                 "--set", "batch_size=50", "--set", "epochs=2", "--set", "eval_every=2", "--set", "score_batch=50",
                 "--set", "target_remaining=0.3", "--set", "synflow_iterations=10", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "snip" in r.stdout and "synflow" in r.stdout and "epochs" in r.stdout
    from phenomon import store

    assert sum(x.state == "finished" for x in store.list_runs(runs)) == 3
    from phenomon.report import write_report

    assert "tickets_at_init_curves.png" in {p.name for p in write_report(runs, None, tmp_path / "report")}


def test_unknown_method_on_the_command_line_is_one_line(runs):
    from tests.conftest import phenomon

    r = phenomon("run", "tickets_at_init", "--set", "prune_by=snipp", "--runs", str(runs))
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "prune_by='snipp' is not one of: magnitude, one_shot, init, random, snip, grasp, synflow" in r.stderr
    r = phenomon("experiment", "tickets_at_init", "--variants", "ticket,snipp", "--runs", str(runs))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "unknown variant 'snipp'" in r.stderr
    assert "snip, grasp, synflow, prune_at_init, random_prune" in r.stderr
    assert not runs.exists() or not any(runs.iterdir())
