"""MNIST-1D datamodule: offline, cached, seeded, leaves global RNGs alone, label noise on train only, fast batches."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from phenomon.datamodules import mnist1d
from phenomon.datamodules.mnist1d import MNIST1DDataModule, generate, symmetric_label_noise


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("PHENOMON_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def test_generation_is_cached_and_leaves_global_rngs_alone(monkeypatch):
    random.seed(123)
    np.random.seed(123)
    x, y = generate(200, seed=3)
    assert random.random() == random.Random(123).random()
    assert np.random.rand() == np.random.RandomState(123).rand()
    assert x.shape == (200, 40) and x.dtype == np.float32 and sorted(set(y.tolist())) == list(range(10))
    monkeypatch.setattr(mnist1d, "_make", lambda args: pytest.fail("regenerated instead of reading the cache"))
    x2, y2 = generate(200, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)


def test_splits_sizes_standardisation_and_seeding():
    dm = MNIST1DDataModule(train_size=300, test_size=100, val_size=50, batch_size=32)
    assert dm.train[0].shape == (300, 40) and len(dm.test[1]) == 100 and len(dm.val[1]) == 50
    assert abs(float(dm.train[0].mean())) < 1e-5 and abs(float(dm.train[0].std()) - 1) < 1e-4
    again = MNIST1DDataModule(train_size=300, test_size=100, val_size=50, batch_size=32)
    assert torch.equal(dm.train[0], again.train[0])
    assert dm.steps_per_epoch == 300 // 32
    with pytest.raises(ValueError, match="train_size"):
        MNIST1DDataModule(train_size=0)


def test_minibatches_are_shuffled_epochs_without_repeats():
    dm = MNIST1DDataModule(train_size=100, test_size=20, batch_size=25, seed=1)
    it = iter(dm.train_dataloader())
    xs = torch.cat([next(it)[0] for _ in range(4)])  # one epoch
    assert xs.shape == (100, 40)
    assert len({tuple(r) for r in xs.tolist()}) == 100, "each train example once per epoch"
    assert not torch.equal(xs, dm.train[0]), "shuffled"
    full = next(iter(MNIST1DDataModule(train_size=100, test_size=20, batch_size=None).train_dataloader()))
    assert full[0].shape == (100, 40)


def test_label_noise_on_train_only_with_recorded_indices():
    clean = MNIST1DDataModule(train_size=400, test_size=100)
    noisy = MNIST1DDataModule(train_size=400, test_size=100, label_noise=0.3)
    assert torch.equal(clean.test[1], noisy.test[1]) and torch.equal(clean.train[0], noisy.train[0])
    changed = (noisy.train[1] != noisy.y_train_clean).nonzero().flatten()
    assert set(changed.tolist()) <= set(noisy.noisy_idx.tolist())
    assert 0.2 < len(noisy.noisy_idx) / 400 < 0.4
    assert len(clean.noisy_idx) == 0
    y, idx = symmetric_label_noise(torch.zeros(1000, dtype=torch.long), 0.5, seed=0)
    assert len(idx) > 400 and int((y != 0).sum()) > 350  # uniform over 10 classes: ~90% of hits change
    with pytest.raises(ValueError, match="label noise"):
        symmetric_label_noise(y, 1.0, seed=0)
