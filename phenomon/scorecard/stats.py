"""The statistics behind the scorecard's verdicts, on small numpy arrays: intervals, permutation nulls, corrections.

Every function returns None (never a number) when its quantity is undefined, and says why through `why_undefined`.
"""

from __future__ import annotations

import functools
import math

import numpy as np

B_BOOT = 2000  # bootstrap resamples over units
N_SHIFTS = 199  # circular shifts for a permutation p-value (p >= 1/200)
MIN_UNITS_CI = 3  # an interval needs at least this many units
SEED = 20250713  # resampling is seeded: the same runs give the same table


def rank(a: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), as Spearman needs; vectorised (scipy's rankdata method)."""
    sorter = np.argsort(a, kind="mergesort")
    inv = np.empty(len(a), dtype=np.intp)
    inv[sorter] = np.arange(len(a))
    v = a[sorter]
    first = np.concatenate(([True], v[1:] != v[:-1]))
    dense = np.cumsum(first)[inv]
    bounds = np.concatenate((np.flatnonzero(first), [len(a)]))
    return 0.5 * (bounds[dense] + bounds[dense - 1] + 1)


def standardise(a: np.ndarray) -> np.ndarray | None:
    sd = a.std()
    if not np.isfinite(sd) or sd <= 1e-12 * (np.abs(a).max() + 1e-300):
        return None
    return (a - a.mean()) / sd


MAX_LAG = 0.10  # association is the strongest within ±10% of the unit's length (a cause may lead its effect)
MIN_LAGGED = 30  # shorter units (sweeps, rounds) are judged at lag 0


@functools.lru_cache(maxsize=64)
def _phases(m: int) -> np.ndarray:
    k = m // 2 + 1
    phase = np.exp(2j * np.pi * np.random.default_rng(SEED + m).random((N_SHIFTS, k))).astype(np.complex64)
    phase[:, 0] = 1.0
    if m % 2 == 0:
        phase[:, -1] = 1.0
    phase.setflags(write=False)
    return phase


def zrank(a: np.ndarray) -> np.ndarray | None:
    """Standardised ranks (None when constant or empty): Spearman's ρ of two series is the mean product of these."""
    return standardise(rank(a)) if len(a) else None


def association(sig: np.ndarray, out: np.ndarray, seed: int = SEED, *, zs: np.ndarray | None = None,
                zo: np.ndarray | None = None) -> tuple[float | None, int | None, np.ndarray | None]:
    """Spearman ρ of two equally long series of increments at their best lag within ±MAX_LAG of the length, the
    lag (> 0: the signal's changes come first), and its null: the same statistic for N_SHIFTS phase-randomised
    surrogates of the signal (same power spectrum, so the same autocorrelation; Theiler et al. 1992). Each
    surrogate is an independent draw, which circular shifts of one pair of series are not once the statistic
    maximises over lags. None where undefined (fewer than 4 points, a constant series)."""
    m = len(sig)
    if m < 4:
        return None, None, None
    a = zs if zs is not None else standardise(rank(sig))
    b = zo if zo is not None else standardise(rank(out))
    if a is None or b is None:
        return None, None, None
    obs, lags, null = association_many(a[None, :], b, [seed])
    return float(obs[0]), int(lags[0]), null[0]


def association_many(Z: np.ndarray, b: np.ndarray, seeds: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`association` for k signals of one unit at once: Z (k, m) the standardised ranks of each signal's increments,
    b (m,) the outcome's; one FFT for all of them and their surrogates."""
    k, m = Z.shape
    L = int(round(MAX_LAG * m)) if m >= MIN_LAGGED else 0
    win = np.arange(-L, L + 1) % m
    # single precision: correlations to 1e-6 are plenty, and the surrogates' FFTs are most of the scorecard's time
    A, B = np.fft.rfft(Z.astype(np.float32), axis=1), np.fft.rfft(b.astype(np.float32))
    # c[l] = mean_t a_t b_(t+l): the signal at t against the outcome l points later
    cw = (np.fft.irfft(np.conj(A) * B, n=m, axis=1) / m)[:, win]
    j = np.abs(cw).argmax(axis=1)
    obs = cw[np.arange(k), j]
    best = win[j]
    lags = np.where(best <= m // 2, best, best - m)
    # one bank of random phases per length, its rows dealt in a different order to every unit and signal (the k-th
    # draws of two units, averaged into a pooled null, must be independent)
    perms = np.stack([np.random.default_rng(s).permutation(N_SHIFTS) for s in seeds])
    P = _phases(m)[perms]  # (k, N, m//2+1), complex64
    cs = np.fft.irfft(np.conj(A[:, None, :] * P) * B, n=m, axis=2)[:, :, win] / m
    null = np.take_along_axis(cs, np.abs(cs).argmax(axis=2)[..., None], axis=2)[..., 0]
    return obs.astype(float), lags, null.astype(float)


def surrogate_z(obs: float | None, null: np.ndarray | None) -> float | None:
    """How far |obs| lies above the surrogates' |values|, in their standard deviations. The statistic is the largest
    |ρ| over lags, so its null is a distribution of magnitudes (signed, it would be two-humped): a normal fitted to
    the surrogate magnitudes gives p beyond the 1/(N+1) floor that 199 surrogates would otherwise impose."""
    if obs is None or null is None or len(null) < 20:
        return None
    mag = np.abs(np.asarray(null, dtype=float))
    sd = mag.std(ddof=1)
    if not np.isfinite(sd) or sd <= 0:
        return None
    return float((abs(obs) - mag.mean()) / sd)


def z_to_p(z: float | None) -> float | None:
    """One-sided upper-tail p of a standard normal z."""
    return None if z is None else float(0.5 * math.erfc(z / math.sqrt(2)))


def perm_p(obs: float | None, null: np.ndarray | None) -> float | None:
    """p of one unit's association against its surrogates (see `surrogate_z`)."""
    return z_to_p(surrogate_z(obs, null))


POOLED_DRAWS = 9999


def pooled_p(obs: list[float], nulls: list[np.ndarray], seed: int = SEED) -> float | None:
    """Two-sided p of the mean signed Δ-ρ over units against the mean of one surrogate draw per unit.

    Each unit's surrogates are independent draws under the null, so a pooled draw takes one of them per unit at
    random: POOLED_DRAWS such means give p down to 1e-4 (one unit alone has only its N_SHIFTS draws). Signs count
    here: units that agree in direction are evidence that surrogates of the same smoothness rarely match."""
    if not obs:
        return None
    n = len(obs)
    null = np.stack([np.asarray(x, dtype=float) for x in nulls])  # (n, N)
    rng = np.random.default_rng(seed)
    draws = null[np.arange(n), rng.integers(0, null.shape[1], (POOLED_DRAWS, n))].mean(axis=1)
    stat = abs(float(np.mean(obs)))
    return float((1 + np.sum(np.abs(draws) >= stat - 1e-12)) / (POOLED_DRAWS + 1))


def bh(p: list[float | None]) -> list[float | None]:
    """Benjamini–Hochberg q-values; None stays None and is not counted as a test."""
    idx = [i for i, v in enumerate(p) if v is not None]
    q: list[float | None] = [None] * len(p)
    if not idx:
        return q
    vals = np.array([p[i] for i in idx])
    order = np.argsort(vals)
    m = len(vals)
    adj = vals[order] * m / np.arange(1, m + 1)
    adj = np.minimum.accumulate(adj[::-1])[::-1].clip(max=1.0)
    for rank_i, j in enumerate(order):
        q[idx[j]] = float(adj[rank_i])
    return q


def boot_ci(x: np.ndarray, stat=np.mean, level: float = 0.95, seed: int = SEED) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of `stat` over units; (None, None) with fewer than MIN_UNITS_CI units."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < MIN_UNITS_CI:
        return None, None
    rng = np.random.default_rng(seed)
    draws = x[rng.integers(0, len(x), (B_BOOT, len(x)))]
    s = stat(draws, axis=1)
    a = (1 - level) / 2
    return float(np.quantile(s, a)), float(np.quantile(s, 1 - a))


_T975 = ((1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (5, 2.571), (6, 2.447), (7, 2.365), (8, 2.306),
         (9, 2.262), (10, 2.228), (12, 2.179), (15, 2.131), (20, 2.086), (30, 2.042), (60, 2.000), (120, 1.980))


def t975(df: int) -> float:
    """Student's t 97.5% quantile (interpolated from a table; 1.96 beyond 120 degrees of freedom)."""
    if df >= 120:
        return 1.96 if df > 1000 else 1.980
    xs, ys = zip(*_T975)
    return float(np.interp(df, xs, ys))


def mean_ci(x: np.ndarray) -> tuple[float | None, float | None]:
    """Student-t 95% interval of a mean over units (with 3–10 units a percentile bootstrap is far too narrow)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n < MIN_UNITS_CI:
        return None, None
    h = t975(n - 1) * x.std(ddof=1) / np.sqrt(n)
    return float(x.mean() - h), float(x.mean() + h)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float | None, float | None]:
    """Wilson score interval for k successes in n trials."""
    if n <= 0:
        return None, None
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return float(max(0.0, c - h)), float(min(1.0, c + h))


def loo_r2(x: np.ndarray, y: np.ndarray) -> float | None:
    """Leave-one-out R² of the line y ~ a + b x (predicting each unit from the others). None when undefined."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = len(x)
    if n < 4 or np.ptp(x) <= 1e-12 * (np.abs(x).max() + 1e-300) or np.ptp(y) <= 0:
        return None
    X = np.c_[np.ones(n), x]
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    H = X @ np.linalg.pinv(X.T @ X) @ X.T
    e = (y - X @ beta) / np.clip(1 - np.diag(H), 1e-9, None)
    # the mean a leave-one-out baseline would predict: the others' mean
    ybar_loo = (y.sum() - y) / (n - 1)
    return float(1 - np.sum(e ** 2) / np.sum((y - ybar_loo) ** 2))


def partial(r_xy: float | None, r_xz: float | None, r_yz: float | None) -> tuple[float | None, str | None]:
    """Partial correlation of x and y given z, or (None, why) when it is undefined."""
    if r_xy is None or r_xz is None or r_yz is None:
        return None, "too few points"
    if abs(r_xz) > 0.999:
        return None, "signal"
    if abs(r_yz) > 0.999:
        return None, "outcome"
    return (r_xy - r_xz * r_yz) / float(np.sqrt((1 - r_xz ** 2) * (1 - r_yz ** 2))), None


def onset(x: np.ndarray, v: np.ndarray, frac: float) -> float | None:
    """First x after which the curve stays past `frac` of its eventual change (last − first); None if it never moves."""
    if len(v) < 3:
        return None
    change = v[-1] - v[0]
    if not np.isfinite(change) or abs(change) <= 1e-12 * (np.abs(v).max() + 1e-300):
        return None
    progress = (v - v[0]) / change
    below = np.flatnonzero(progress < frac)
    if len(below) == 0:
        return float(x[0])
    if below[-1] + 1 >= len(x):
        return None
    return float(x[below[-1] + 1])
