"""MNIST-1D (Greydanus & Kobak) generated offline, cached by its arguments, served as in-memory tensors.

Nothing is downloaded: `mnist1d.data.get_dataset()` would try the network, so the data come from
`make_dataset(args)`, which reseeds Python's `random` and NumPy's global RNG; that state is saved and restored.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Iterator

import numpy as np
import pytorch_lightning as L
import torch
from torch.utils.data import DataLoader, IterableDataset

from phenomon import store

NUM_CLASSES = 10


def cache_dir() -> Path:
    return Path(os.environ.get("PHENOMON_CACHE", Path.home() / ".cache" / "phenomon")) / "mnist1d"


# mnist1d 0.0.2's `get_dataset_args()` without its `url`: the cache key. Importing `mnist1d.data` pulls in
# matplotlib and scipy (~1.5 s of every run's start-up), so it is imported only to generate; a test checks the copy.
MNIST1D_ARGS = {"num_samples": 5000, "train_split": 0.8, "template_len": 12, "padding": [36, 60], "scale_coeff": 0.4,
                "max_translation": 48, "corr_noise_scale": 0.25, "iid_noise_scale": 0.02, "shear_scale": 0.75,
                "shuffle_seq": False, "final_seq_length": 40, "seed": 42}


def generate(num_samples: int, seed: int = 42, **overrides) -> tuple[np.ndarray, np.ndarray]:
    """`num_samples` examples (x: (n, 40) float32, y: (n,) int64) in mnist1d's own order; cached on disk.

    The count is rounded down to a multiple of 10 by mnist1d (equal samples per class).
    """
    for k in overrides:
        if k not in MNIST1D_ARGS:
            raise ValueError(f"unknown mnist1d argument {k!r}")
    key = dict(sorted({**MNIST1D_ARGS, "num_samples": int(num_samples), "seed": int(seed), "train_split": 1.0,
                       **overrides}.items()))
    path = cache_dir() / f"{store.config_id(key, n=16)}.npz"  # the same names as before: old caches still hit
    try:
        with np.load(path, allow_pickle=False) as z:
            return z["x"], z["y"]
    except (OSError, ValueError, KeyError):
        pass  # absent or torn: regenerate
    from mnist1d.data import get_dataset_args

    args = get_dataset_args()
    for k, v in key.items():
        setattr(args, k, v)
    x, y = _make(args)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with store.atomic_path(path) as tmp:  # keeps the .npz suffix np.savez would otherwise append
            np.savez(tmp, x=x, y=y)
    except OSError:
        pass  # a read-only home only costs regeneration time
    return x, y


def _make(args) -> tuple[np.ndarray, np.ndarray]:
    from mnist1d.data import make_dataset

    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        d = make_dataset(args)  # reseeds both global RNGs
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return np.asarray(d["x"], dtype=np.float32), np.asarray(d["y"], dtype=np.int64)


def symmetric_label_noise(y: torch.Tensor, rate: float, seed: int,
                          num_classes: int = NUM_CLASSES) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace each label with probability `rate` by a uniform random class (possibly the same one).

    Returns the noisy labels and the indices that were replaced.
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"label noise must be in [0, 1), got {rate}")
    g = torch.Generator().manual_seed(seed)
    hit = torch.rand(len(y), generator=g) < rate
    idx = hit.nonzero().flatten()
    noisy = y.clone()
    noisy[idx] = torch.randint(num_classes, (len(idx),), generator=g)
    return noisy, idx


def flip_labels(y: torch.Tensor, fraction: float, seed: int,
                num_classes: int = NUM_CLASSES) -> tuple[torch.Tensor, torch.Tensor]:
    """Give exactly round(fraction · n) labels, chosen at random, a different class (uniform over the others).

    Returns the noisy labels and the (sorted) indices that were changed: every one of them is wrong.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"label noise must be in [0, 1), got {fraction}")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(y), generator=g)[: round(fraction * len(y))].sort().values
    noisy = y.clone()
    noisy[idx] = (y[idx] + torch.randint(1, num_classes, (len(idx),), generator=g)) % num_classes
    return noisy, idx


class ShuffledBatches(IterableDataset):
    """Endless shuffled minibatches by index slicing (no per-sample collation); `None` batch size = full batch."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int | None, seed: int):
        self.x, self.y, self.batch_size = x, y, batch_size
        self.g = torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator:
        n = len(self.y)
        if self.batch_size is None or self.batch_size >= n:
            while True:
                yield self.x, self.y
        while True:
            perm = torch.randperm(n, generator=self.g, device="cpu").to(self.x.device)
            for i in range(0, n - self.batch_size + 1, self.batch_size):  # drop the ragged tail
                idx = perm[i:i + self.batch_size]
                yield self.x[idx], self.y[idx]


class EpochBatches(ShuffledBatches):
    """The same minibatches as `ShuffledBatches`, one epoch per item: (steps, batch, ...) inputs and (steps, batch)
    labels, for a module that steps through an epoch itself (one Lightning step per epoch: Lightning's per-batch cost
    is paid once per epoch instead of once per minibatch)."""

    def __iter__(self) -> Iterator:
        n = len(self.y)
        if self.batch_size is None or self.batch_size >= n:
            while True:
                yield self.x.unsqueeze(0), self.y.unsqueeze(0)
        steps = n // self.batch_size
        while True:
            perm = torch.randperm(n, generator=self.g, device="cpu").to(self.x.device)[: steps * self.batch_size]
            yield (self.x[perm].view(steps, self.batch_size, *self.x.shape[1:]),
                   self.y[perm].view(steps, self.batch_size))


class MNIST1DDataModule(L.LightningDataModule):
    """Train and test splits of one generated MNIST-1D set (and an optional validation split from the train side).

    `label_noise` corrupts train labels only; `noisy_idx` records which and `y_train_clean` keeps the originals
    (`exact_noise`: exactly that fraction is changed to a wrong class, see `flip_labels`; `noise_seed` defaults to
    `data_seed + 1`). `train_pool` fixes how many generated samples precede validation and test, so train sizes up
    to it share one test set (default: `train_size`). Evaluation is one batch per split: the whole split.
    `whole_epochs`: the train loader yields one epoch per batch (`EpochBatches`), the same minibatches in the same order.
    """

    def __init__(self, train_size: int = 4000, test_size: int = 1000, val_size: int = 0, batch_size: int | None = 100,
                 seed: int = 0, data_seed: int = 42, label_noise: float = 0.0, standardize: bool = True,
                 train_pool: int | None = None, noise_seed: int | None = None, exact_noise: bool = False,
                 whole_epochs: bool = False):
        super().__init__()
        for k, v in (("train_size", train_size), ("test_size", test_size)):
            if v < 1:
                raise ValueError(f"{k} must be positive, got {v}")
        if val_size < 0:
            raise ValueError(f"val_size must be >= 0, got {val_size}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be positive (or None for full batch), got {batch_size}")
        pool = train_size if train_pool is None else train_pool
        if train_size > pool:
            raise ValueError(f"train_size ({train_size}) exceeds the train pool ({pool} samples)")
        self.batch_size, self.seed, self.whole_epochs = batch_size, seed, whole_epochs
        n = pool + val_size + test_size
        x, y = self._generate(n, data_seed)
        tr, va = slice(0, train_size), slice(pool, pool + val_size)
        te = slice(pool + val_size, n)
        if standardize:  # one scalar from the train split: keeps the signal's shape
            mu, sd = x[tr].mean(), x[tr].std()
            x = (x - mu) / sd
        self.y_train_clean = y[tr].clone()
        noise = flip_labels if exact_noise else symmetric_label_noise
        y_train, self.noisy_idx = noise(y[tr], label_noise, seed=data_seed + 1 if noise_seed is None else noise_seed,
                                        num_classes=self.num_classes)
        self.train = (x[tr], y_train)
        self.val = (x[va], y[va]) if val_size else None
        self.test = (x[te], y[te])

    num_classes = NUM_CLASSES

    def _generate(self, n: int, data_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = generate(-(-n // NUM_CLASSES) * NUM_CLASSES, seed=data_seed)  # round up to whole classes
        return torch.from_numpy(x), torch.from_numpy(y)

    @property
    def steps_per_epoch(self) -> int:
        n = len(self.train[1])
        return 1 if self.batch_size is None or self.batch_size >= n else n // self.batch_size

    def train_dataloader(self):
        batches = EpochBatches if self.whole_epochs else ShuffledBatches
        return DataLoader(batches(*self.train, self.batch_size, self.seed), batch_size=None)

    def val_dataloader(self):
        splits = [self.train, self.test] + ([self.val] if self.val is not None else [])
        return [DataLoader([s], batch_size=None) for s in splits]
