"""Full reproductions (minutes): `./phenomon.sh slow`."""

from __future__ import annotations

import pytest

from phenomon import registry, runner

pytestmark = pytest.mark.slow


def test_default_grokking_groks_and_the_weight_decay_ablation_does_not(runs):
    ph = registry.get("grokking")
    base = runner.run(ph, ph.resolve(), runner.RunOptions(root=runs))
    assert base.state == "finished"
    assert base.manifest["verdict_effect"] is True, base.manifest["verdict"]
    n = base.manifest["verdict_numbers"]
    assert n["train_99_step"] <= 200 and n["test_95_step"] <= 1200
    ablated = runner.run(ph, ph.resolve(toggles=["weight_decay"]), runner.RunOptions(root=runs))
    assert ablated.manifest["verdict_effect"] is False, ablated.manifest["verdict"]
    assert ablated.manifest["verdict_numbers"]["test_95_step"] is None
