"""Names of the signals' rows that the scorecard, the report, the CLI and the monitor show: one list, torch-free.

The signals themselves (and their code) live in `phenomon.callbacks.signals`, which imports torch; everything that
only names rows reads this module instead, so the monitor never imports torch.
"""

from __future__ import annotations

# null signals, logged on every run on the cheapest schedule: an explanation must beat the passage of time
NULL_STEP = "null/step"
NULL_WALK = "null/random_walk"
NULLS = (NULL_STEP, NULL_WALK)

# the broad baseline and the magnitude family (the prime count's confounders: mean |w|, how many |w| >= 1.5)
BASELINE = "signal/weight_norm"
MAGNITUDE = {"signal/weight_norm": "norm", "signal/magnitude/mean_abs": "mean|w|",
             "signal/magnitude/n_ge_1.5": "#|w|≥1.5"}

# the rows shown by default (`phenomon score`, the monitor's scorecard, the report); `--all` shows every variant
MAIN_SIGNALS = ("signal/weight_norm", "signal/magnitude/mean_abs", "signal/prime_count", "signal/prime_count/scaled10",
                "signal/fourier_sparsity", "signal/effective_rank", "signal/sharpness", "signal/grad_norm",
                "signal/grad_norm/snr", "signal/softmax_collapse", "signal/margin", "signal/sparsity",
                "signal/effective_parameters") + NULLS


def is_scored(name: str) -> bool:
    """Rows the scorecard scores: signals (not their per-layer `@tensor` values) and the nulls."""
    return (name.startswith("signal/") and "@" not in name) or name in NULLS


_MAIN_BASES = frozenset(m.split("/")[1] for m in MAIN_SIGNALS if m.startswith("signal/"))


def shown_by_default(name: str) -> bool:
    """Main rows, the nulls, and signals of other people's code; hidden: the variants of our own signals."""
    if name in MAIN_SIGNALS:
        return True
    return not (name.startswith("signal/") and name.split("/")[1] in _MAIN_BASES)
