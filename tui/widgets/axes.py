"""Axis ticks: 1-2-5 steps for linear axes, powers of ten (with 2 and 5 inside a short decade) for log axes."""

from __future__ import annotations

import math

SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About `n` round ticks inside [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    out, t = [], first
    while t <= hi + step * 1e-9:
        out.append(round(t, 12))
        t += step
    return out


def log_ticks(lo: float, hi: float, n: int = 6) -> tuple[list[float], list[float]]:
    """(major, minor) ticks in data units for a log axis over [lo, hi] (lo > 0): majors at 10ⁿ."""
    a, b = math.log10(lo), math.log10(hi)
    majors = [10.0 ** k for k in range(math.ceil(a - 1e-9), math.floor(b + 1e-9) + 1)]
    if len(majors) > n:  # many decades: every other power
        stride = math.ceil(len(majors) / n)
        majors = majors[::stride]
    minors = [m * 10.0 ** k for k in range(math.floor(a), math.ceil(b) + 1) for m in range(2, 10)
              if lo <= m * 10.0 ** k <= hi]
    if len(majors) < 3:  # two decades or less in view: label 2 and 5 as well
        majors = sorted(set(majors) | {t for t in minors if str(int(t / 10 ** math.floor(math.log10(t))))[0] in "25"})
    return majors, minors


def fmt_log(t: float) -> str:
    k = math.log10(t)
    if abs(k - round(k)) < 1e-9:
        return "1" if round(k) == 0 else ("10" if round(k) == 1 else "10" + str(round(k)).translate(SUPERSCRIPT))
    return fmt_num(t)


def fmt_num(v: float) -> str:
    if v != v:
        return "–"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.3g}k"
    if a >= 100 or (a > 0 and float(v).is_integer()):
        return f"{v:.0f}"
    return f"{v:.3g}"
