"""Emergence as a metric artefact: an MLP that answers k tokens at once, and every metric of a k-token answer.

`answer_metrics` scores the same predictions five ways (Schaeffer, Miranda & Koyejo 2023): exact match (all k
tokens right: the "emergent" metric), per-token accuracy, token edit distance and the answer's log-likelihood (the
smooth ones), and the product of the per-position accuracies, which is what exact match would be if the k tokens
erred independently. The module logs them all on the whole train and test splits at every evaluation.
"""

from __future__ import annotations

import pytorch_lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from phenomon.models.double_descent import MLP

STAGES = ("train", "test")  # the datamodule's evaluation loaders, in order


def edit_distance(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Levenshtein distance between each row of `pred` (n, m) and of `target` (n, k), in tokens: (n,) float.

    The dynamic programme runs over positions with the whole batch as vectors (no per-sample Python)."""
    n, m = pred.shape
    k = target.shape[1]
    prev = torch.arange(k + 1, dtype=torch.float32).expand(n, k + 1).clone()  # distance of "" to target[:j]
    for i in range(1, m + 1):
        cur = torch.empty_like(prev)
        cur[:, 0] = i
        sub = prev[:, :-1] + (pred[:, i - 1:i] != target).float()  # (n, k)
        dele = prev[:, 1:] + 1
        best = torch.minimum(sub, dele)
        for j in range(1, k + 1):  # insertions chain along j
            cur[:, j] = torch.minimum(best[:, j - 1], cur[:, j - 1] + 1)
        prev = cur
    return prev[:, k]


def answer_metrics(pred: torch.Tensor, target: torch.Tensor, logp: torch.Tensor | None = None) -> dict[str, float]:
    """Metrics of k-token answers: `pred`, `target` (n, k) tokens; `logp` (n, k, vocab) log-probabilities or None.

    exact_match: share of answers with all k tokens right; token_acc: share of tokens right; edit_distance: mean
    token Levenshtein distance; exact_pred: Π over positions of each position's accuracy (exact match under
    independent errors); exact_match_j (j < k): all of the first j tokens right. With `logp`: answer_ll, the mean
    over answers of Σ_j log p(target_j) (nats), and loss, the mean per-token cross-entropy.
    """
    if pred.shape != target.shape or pred.ndim != 2:
        raise ValueError(f"pred and target must both be (n, k), got {tuple(pred.shape)} and {tuple(target.shape)}")
    right = (pred == target).float()  # (n, k)
    k = target.shape[1]
    out = {"exact_match": float(right.prod(1).mean()), "token_acc": float(right.mean()),
           "edit_distance": float(edit_distance(pred, target).mean()),
           "exact_pred": float(right.mean(0).prod())}
    prefix = right.cumprod(1).mean(0)  # (k,) all of the first j+1 right
    out.update({f"exact_match_{j}": float(prefix[j - 1]) for j in range(1, k)})
    if logp is not None:
        ll = logp.gather(-1, target[..., None]).squeeze(-1)  # (n, k)
        out["answer_ll"] = float(ll.sum(1).mean())
        out["loss"] = float(-ll.mean())
    return out


def token_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy per answer token: logits (n, k, vocab), y (n, k)."""
    return F.cross_entropy(logits.flatten(0, 1), y.flatten())


class EmergenceModule(L.LightningModule):
    """Minibatch Adam on the per-token cross-entropy; every answer metric on the whole train and test splits at each
    evaluation (nothing per training step). `evals` keeps them for the run's summary."""

    def __init__(self, k: int, width: int, depth: int = 2, lr: float = 3e-3, weight_decay: float = 0.0,
                 vocab: int = 10):
        super().__init__()
        self.k, self.vocab, self.lr, self.weight_decay = k, vocab, lr, weight_decay
        # one-hot digits of a and b (2k × vocab) → k × vocab logits; the MLP's first ReLU layer carries the
        # invariance check (phenomon.models.rescaling finds it as `net`)
        self.net = MLP(2 * k * vocab, width, k * vocab, depth)
        self.evals: list[dict[str, float]] = []

    loss_fn = staticmethod(token_cross_entropy)  # the signals' loss (sharpness, gradient noise)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, 2k) tokens -> (batch, k, vocab): every token at once
        h = F.one_hot(x, self.vocab).float().flatten(1)  # (batch, 2k·vocab)
        return self.net(h).view(len(x), self.k, self.vocab)

    def _common_step(self, batch, stage: str):
        x, y = batch
        logits = self(x)
        loss = token_cross_entropy(logits, y)
        if stage != "fit":
            m = answer_metrics(logits.argmax(-1), y, torch.log_softmax(logits.float(), -1))
            vals = {f"{stage}/{name}": v for name, v in m.items()}
            vals[f"{stage}/acc"] = m["exact_match"]  # an answer is right when all of it is
            if stage == "train":
                self.evals.append({"step": self.global_step})
            self.log_dict(vals, add_dataloader_idx=False)
            self.evals[-1].update(vals)
        return loss

    def training_step(self, batch, batch_idx):
        return self._common_step(batch, "fit")

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        return self._common_step(batch, STAGES[dataloader_idx])

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
