"""Stored numbers as text: a run's headline metrics, and a number that may be missing (shown as "–")."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

MISSING = "–"


def fmt_value(v: Any, fmt: str = "{:+.2f}") -> str:
    """`fmt` applied to `v`, or "–" when it is missing (None or NaN)."""
    return MISSING if v is None or v != v else fmt.format(v)


def headline(values: Mapping[str, Any], keys: Iterable[str] = (), *, limit: int = 4) -> str:
    """The headline metrics in `values` (a manifest's summary, a writer's latest), as `test/acc 0.953  ...`.

    One format for `phenomon ls`, the progress line and the monitor. Without `keys` (a phenomenon not registered
    here), what `pick_headline` chooses from the names: the run's own losses and accuracies.
    """
    keys = list(keys) or pick_headline(values, limit)
    return "  ".join(f"{k} {values[k]:.3f}" for k in keys if isinstance(values.get(k), (int, float)))


_NOT_HEADLINE = ("signal/", "null/", "time/", "epoch", "hp_metric")
_STAGE = {"val": 0, "valid": 0, "validation": 0, "test": 1, "train": 2}


def pick_headline(names: Iterable[str], limit: int = 4) -> list[str]:
    """Headline metrics for a run whose phenomenon is not registered here: its losses, then its accuracies.

    Chosen from what the run logs, never a signal, a null or a timing: at most half losses and half accuracies
    (validation before test before train, epoch means before step values), then other metrics if room is left.
    """
    own = [n for n in names if not n.startswith(_NOT_HEADLINE)]

    def rank(n: str) -> tuple:
        parts = [p for p in n.replace("/", "_").split("_") if p]
        stage = min((_STAGE[p] for p in parts if p in _STAGE), default=3)
        return (stage, n.endswith("_step"), n)

    losses = sorted((n for n in own if "loss" in n.lower()), key=rank)
    accs = sorted((n for n in own if "acc" in n.lower() and n not in losses), key=rank)
    half = max(1, limit // 2)
    out = losses[:half] + accs[:half]
    rest = losses[half:] + accs[half:] + sorted((n for n in own if n not in losses and n not in accs), key=rank)
    return (out + rest)[:limit]
