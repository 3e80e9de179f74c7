"""Modular arithmetic `a ∘ b mod p` as full-batch tensors kept in memory."""

from __future__ import annotations

from typing import Iterator

import pytorch_lightning as L
import torch
from torch.utils.data import DataLoader, IterableDataset

OPS = ("+", "-", "*", "/")


from phenomon.datamodules.primes import is_prime  # noqa: E402,F401  (torch-free: configs validate with it)


def modular_table(p: int, op: str) -> tuple[torch.Tensor, torch.Tensor]:
    """All pairs (a, b) with their answers. Inputs are tokens `a b =` with `=` encoded as p."""
    if not is_prime(p):
        raise ValueError(f"p must be prime, got {p}")
    if op not in OPS:
        raise ValueError(f"op must be one of {' '.join(OPS)}, got {op!r}")
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    if op == "/":  # division needs b != 0; a / b = a * b^(p-2) by Fermat
        keep = b != 0
        a, b = a[keep], b[keep]
        y = (a * torch.tensor([pow(int(v), p - 2, p) for v in range(p)])[b]) % p
    elif op == "+":
        y = (a + b) % p
    elif op == "-":
        y = (a - b) % p
    else:
        y = (a * b) % p
    x = torch.stack([a, b, torch.full_like(a, p)], dim=1)
    return x, y


class _Repeat(IterableDataset):
    """Yields the same full batch forever: one long epoch, validation by `val_check_interval`."""

    def __init__(self, batch):
        self.batch = batch

    def __iter__(self) -> Iterator:
        while True:
            yield self.batch


class ModularDataModule(L.LightningDataModule):
    """Seeded train/test split of the full table; full batch (minibatch noise blurs the grokking transition)."""

    def __init__(self, p: int = 97, op: str = "+", train_fraction: float = 0.5, seed: int = 0):
        super().__init__()
        if not 0.0 < train_fraction < 1.0:
            raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
        self.p, self.op, self.train_fraction, self.seed = p, op, train_fraction, seed
        x, y = modular_table(p, op)
        g = torch.Generator().manual_seed(seed)
        perm = torch.randperm(len(y), generator=g)
        n_train = max(1, min(len(y) - 1, round(train_fraction * len(y))))
        tr, te = perm[:n_train], perm[n_train:]
        self.train = (x[tr], y[tr])
        self.test = (x[te], y[te])

    @property
    def num_classes(self) -> int:
        return self.p

    def train_dataloader(self):
        return DataLoader(_Repeat(self.train), batch_size=None)

    def val_dataloader(self):
        # evaluation on the whole train split and the whole test split, one batch each
        return [DataLoader([self.train], batch_size=None), DataLoader([self.test], batch_size=None)]
