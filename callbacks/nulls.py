"""Null signals logged beside every run's explanation signals: the step itself and a seeded Gaussian random walk.

Two curves that both move with training time correlate whatever they are; an explanation is worth something only
if it beats these. Row names come from `phenomon.catalog` (torch-free, shared with the scorecard).
"""

from __future__ import annotations

import numpy as np

from phenomon.catalog import NULL_STEP, NULL_WALK

_TAG = 0x6E756C6C  # "null": keeps the walk's stream apart from anything else seeded with the run's seed


class RandomWalk:
    """A Gaussian random walk: one N(0, 1) increment per `advance()`, increment n drawn from a generator seeded by
    (seed, n). A run's walk is therefore reproducible from its seed alone and different across seeds, and the
    state that must survive a checkpoint resume is just (n, value)."""

    def __init__(self, seed: int = 0):
        self.seed = int(seed)
        self.n, self.value = 0, 0.0

    def advance(self) -> float:
        rng = np.random.default_rng([abs(self.seed), int(self.seed < 0), _TAG, self.n])
        self.value += float(rng.standard_normal())
        self.n += 1
        return self.value

    def state_dict(self) -> dict:
        return {"seed": self.seed, "n": self.n, "value": self.value}

    def load_state_dict(self, state: dict) -> None:
        self.seed = int(state.get("seed", self.seed))
        self.n, self.value = int(state.get("n", 0)), float(state.get("value", 0.0))


def null_row(step: int, walk: RandomWalk, advance: bool = True) -> dict[str, float]:
    """The nulls at `step`; `advance=False` repeats the walk's current value (a point logged again after a resume)."""
    return {NULL_STEP: float(step), NULL_WALK: walk.advance() if advance else walk.value}
