"""The arithmetic of pruning rounds (how many weights each round keeps): pure Python, so a config can be validated
without importing torch (the monitor validates before it launches)."""

from __future__ import annotations

import math


def keep_schedule(n: int, rate: float, rounds: int) -> list[int]:
    """Weights kept after each round 0..rounds when every round removes `rate` of the *remaining* ones (≥ 1 kept)."""
    if not 0.0 < rate < 1.0:
        raise ValueError(f"pruning rate must be in (0, 1), got {rate}")
    out = [n]
    for _ in range(rounds):
        k = out[-1]
        out.append(max(1, k - round(k * rate)))
    return out


def _groups(names: list[str], scope: str) -> list[list[str]]:
    """Layers pruned together: each alone ("layer"), or all but the output layer pooled ("global")."""
    if scope == "layer":
        return [[n] for n in names]
    if scope == "global":
        return [names[:-1], names[-1:]] if len(names) > 1 else [names]
    raise ValueError(f"unknown pruning scope {scope!r}; valid: layer, global")


def group_rates(names: list[str], rate: float, rate_output: float, scope: str) -> list[tuple[list[str], float]]:
    """(layers, rate) per pruning group; the output layer at its own rate (Frankle & Carbin: half the hidden rate)."""
    return [(g, rate_output if g == names[-1:] else rate) for g in _groups(names, scope)]


def keep_counts(shapes: dict[str, tuple[int, ...]], rate: float, rate_output: float, scope: str,
                rnd: int) -> list[tuple[list[str], int]]:
    """(layers, weights kept) per pruning group after round `rnd`: the same for every variant at that round."""
    names = list(shapes)
    return [(g, keep_schedule(sum(math.prod(shapes[n]) for n in g), r, rnd)[-1])
            for g, r in group_rates(names, rate, rate_output, scope)]


def remaining_after(shapes: dict[str, tuple[int, ...]], rate: float, rate_output: float, scope: str,
                    rnd: int) -> float:
    total = sum(math.prod(s) for s in shapes.values())
    return sum(k for _, k in keep_counts(shapes, rate, rate_output, scope, rnd)) / total
