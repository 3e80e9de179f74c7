"""k-digit addition as k answer tokens: `a + b mod 10^k`, digits least significant first, generated and seeded.

The task of Schaeffer et al.'s emergence study (integer arithmetic), small enough for a CPU: the inputs are the 2k
digits of a and b, the answer the k digits of the sum (the carry out of the top digit dropped, so every answer has
exactly k tokens). Test pairs are drawn first and no train pair equals one of them; with few possible pairs (k ≤ 2)
the train split is every other pair.
"""

from __future__ import annotations

import pytorch_lightning as L
import torch
from torch.utils.data import DataLoader

from phenomon.datamodules.mnist1d import ShuffledBatches

MAX_K = 9  # 10^(2k) pair ids must fit in int64
ENUMERATE_BELOW = 10 ** 7  # pair spaces up to this size are permuted outright; larger ones are sampled


def digits(v: torch.Tensor, k: int) -> torch.Tensor:
    """(n,) non-negative integers -> (n, k) decimal digits, least significant first."""
    p = 10 ** torch.arange(k, dtype=torch.int64)
    return (v[:, None] // p) % 10


def answers(a: torch.Tensor, b: torch.Tensor, k: int) -> torch.Tensor:
    """The k answer tokens of `a + b mod 10^k`: (n, k) digits, least significant first."""
    return digits((a + b) % 10 ** k, k)


def distinct_pairs(n: int, k: int, seed: int) -> torch.Tensor:
    """`n` distinct pair ids (a · 10^k + b) in a seeded random order; the first m of a larger draw are the same m."""
    space = 10 ** (2 * k)
    if n > space:
        raise ValueError(f"{n:,} distinct pairs asked of k={k}: only {space:,} exist")
    g = torch.Generator().manual_seed(seed)
    if space <= ENUMERATE_BELOW:
        return torch.randperm(space, generator=g)[:n]
    out, seen = [], set()
    while len(out) < n:  # rejection of repeats (collisions are rare: space ≥ 10^8)
        for v in torch.randint(0, space, (2 * (n - len(out)) + 16,), generator=g).tolist():
            if v not in seen:
                seen.add(v)
                out.append(v)
                if len(out) == n:
                    break
    return torch.tensor(out, dtype=torch.int64)


def addition_split(k: int, train_size: int, test_size: int, seed: int) -> tuple[tuple, tuple]:
    """((x_train, y_train), (x_test, y_test)): x (n, 2k) digit tokens of a then b, y (n, k) answer digits.

    Test pairs come first in one draw of distinct pairs, train pairs after them: no pair is in both. The train
    split holds min(train_size, every pair not in test)."""
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be an integer in 1…{MAX_K}, got {k}")
    if test_size < 1 or train_size < 1:
        raise ValueError(f"train_size and test_size must be positive, got {train_size}, {test_size}")
    space = 10 ** (2 * k)
    if test_size >= space:
        raise ValueError(f"test_size {test_size:,} leaves no pair to train on: k={k} has {space:,} pairs")
    ids = distinct_pairs(test_size + min(train_size, space - test_size), k, seed)
    a, b = ids // 10 ** k, ids % 10 ** k
    x = torch.cat([digits(a, k), digits(b, k)], 1)  # (n, 2k)
    y = answers(a, b, k)  # (n, k)
    return (x[test_size:], y[test_size:]), (x[:test_size], y[:test_size])


class AdditionDataModule(L.LightningDataModule):
    """Shuffled minibatches of the train split; evaluation is one batch per split (the whole train, then test)."""

    def __init__(self, k: int = 5, train_size: int = 20000, test_size: int = 4000, batch_size: int = 256,
                 seed: int = 0, data_seed: int = 42):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.k, self.batch_size, self.seed = k, batch_size, seed
        self.train, self.test = addition_split(k, train_size, test_size, data_seed)

    num_classes = 10  # a token is a digit

    def train_dataloader(self):
        return DataLoader(ShuffledBatches(*self.train, self.batch_size, self.seed), batch_size=None)

    def val_dataloader(self):
        return [DataLoader([s], batch_size=None) for s in (self.train, self.test)]
