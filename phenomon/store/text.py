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
    here), the first `limit` names in sorted order.
    """
    keys = list(keys) or sorted(values)[:limit]
    return "  ".join(f"{k} {values[k]:.3f}" for k in keys if isinstance(values.get(k), (int, float)))
