"""Tickets before training (the registry entry): can SNIP, GraSP, SynFlow, magnitude or random pruning at
initialisation find masks that train as well as the IMP ticket, at the same per-layer sparsities?

The position paper's table says lottery tickets "cannot be found before training"; Frankle, Dziugaite, Roy & Carbin
(ICLR 2021) find the pruning-at-init methods no better than random masks with the same per-layer sparsities. One
run per method and seed holds every sparsity level (the lottery ticket's code path and rounds: round r has the IMP
ticket's per-layer counts after r rounds; the at-init methods prune the untrained network straight to that level
and train it once). `phenomon experiment tickets_at_init` runs the ticket and the five methods × 3 seeds and judges
them together: which method (if any) matches the ticket, with n and a paired interval, and what the ticket cost in
training (IMP's rounds × epochs against one training run).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from phenomon.phenomena.lottery_ticket.config import LotteryConfig
from phenomon.phenomena.lottery_ticket.training import execute
from phenomon.phenomena.lottery_ticket.verdict import MATCH, criterion, sparsest_match
from phenomon.registry import Phenomenon, Toggle, Verdict, register
from phenomon.store.axis import RoundMetric

CLAIM = ("Lottery tickets cannot be found before training (Jeffares & van der Schaar 2025); pruning at init (SNIP, "
         "GraSP, SynFlow) is no better than random masks at the same per-layer sparsities (Frankle et al. 2021)")
METHODS = {"snip": "snip", "grasp": "grasp", "synflow": "synflow", "prune_at_init": "magnitude at init",
           "random_prune": "random"}


@dataclass(frozen=True)
class TicketsAtInitConfig(LotteryConfig):
    # 36% of the remaining weights per round (two of Frankle & Carbin's 20% rounds in one): 8 levels from 64% to
    # 2.8% of the hidden weights, so every method trains 9 times rather than 17
    prune_rate: float = 0.36
    prune_rate_output: float = 0.19
    target_remaining: float = 0.04
    seeds: tuple[int, ...] = (0, 1, 2)  # the experiment's seeds (`phenomon experiment tickets_at_init`)
    score_batch: int = 100  # snip, grasp: training samples (a seeded draw) the scores are computed on
    synflow_iterations: int = 100

    def validate(self) -> None:
        super().validate()
        for k in ("score_batch", "synflow_iterations"):
            if getattr(self, k) < 1:
                raise ValueError(f"{k} must be a positive integer, got {getattr(self, k)}")
        if self.score_batch > self.train_size:
            raise ValueError(f"score_batch ({self.score_batch}) exceeds train_size ({self.train_size})")


TOGGLES = (
    Toggle("snip", "N", {"prune_by": "snip"},
           "SNIP (Lee et al. 2019), |g ⊙ w| on one batch at init: no better than random at these per-layer "
           "sparsities (Frankle et al. 2021)"),
    Toggle("grasp", "A", {"prune_by": "grasp"},
           "GraSP (Wang et al. 2020), −w ⊙ Hg, keeps gradient flow: no better than random (Frankle et al. 2021)"),
    Toggle("synflow", "F", {"prune_by": "synflow"},
           "SynFlow (Tanaka et al. 2020), data-free, iterative: no better than random at fixed per-layer sparsity"),
    Toggle("prune_at_init", "i", {"prune_by": "init"},
           "magnitudes before training: no better than random (Frankle et al. 2021)"),
    Toggle("random_prune", "P", {"prune_by": "random"},
           "random masks at the ticket's per-layer sparsities: the control every method is measured against"),
)

PRESETS = {
    # under 2 minutes on 2 cores: one seed, 5 epochs per level, 4 levels (64% → 17% of hidden weights)
    "quick": {"epochs": 5, "target_remaining": 0.2, "eval_every": 20, "seeds": (0,)},
}


def _paired(ticket: dict[int, float], other: dict[int, float]) -> dict:
    """Mean and Student-t 95% interval of other − ticket over the seeds both have (None when n < 3)."""
    import numpy as np

    from phenomon.scorecard.stats import mean_ci

    seeds = sorted(set(ticket) & set(other))
    d = np.array([other[s] - ticket[s] for s in seeds])
    lo, hi = mean_ci(d) if len(d) else (None, None)
    return {"n": len(seeds), "diff": float(d.mean()) if len(d) else None, "lo": lo, "hi": hi}


def _word(p: dict) -> str:
    if p["diff"] is None:
        return "no paired seeds"
    if p["diff"] >= -MATCH:
        return "matches"
    if p["hi"] is not None and p["hi"] < -MATCH:
        return "below"
    return "undecided"


def group_criterion(frame: pl.DataFrame, cfg: LotteryConfig) -> Verdict:
    """Each method against the IMP ticket at the ticket's sparsest level within 1 point of dense (the level the
    claim is about), paired by seed; effect True when some method matches the ticket there (a ticket found before
    training), False when every method's interval lies more than 1 point below, None otherwise."""
    need = {"weights_remaining", "round/test_acc", "toggles", "round", "seed"}
    if frame.height == 0 or not need <= set(frame.columns):
        return Verdict(None, "no finished rounds in the group yet")
    t = (frame.filter(pl.col("weights_remaining").is_not_null())
         .with_columns(pl.col("toggles").replace_strict({"": "ticket", **{k: k for k in METHODS}}, default=None)
                       .alias("variant"))
         .filter(pl.col("variant").is_not_null()))
    have = set(t["variant"].unique().to_list())
    methods = [m for m in METHODS if m in have]
    if "ticket" not in have or not methods:
        return Verdict(None, f"needs the ticket and at least one method; has {', '.join(sorted(have)) or 'none'} "
                             f"(`phenomon experiment tickets_at_init` runs all)")
    acc = {(v, r, s): a for v, r, s, a in t.select("variant", "round", "seed", "round/test_acc").iter_rows()}
    rem = dict(t.filter(pl.col("variant") == "ticket").group_by("round").agg(pl.col("weights_remaining").mean())
               .iter_rows())
    dense = [a for (v, r, _), a in acc.items() if v == "ticket" and r == 0]
    if not dense:
        return Verdict(None, "the ticket's dense round has not finished yet")
    d_mean = sum(dense) / len(dense)
    done = {(v, r) for v, r, _ in acc}
    rounds = sorted(r for r in rem if r > 0 and all((m, r) in done for m in methods))
    if not rounds:
        return Verdict(None, "no pruned level finished by the ticket and every method yet")
    tick = pl.Series([_ms([acc[("ticket", r, s)] for s in _seeds(acc, "ticket", r)])["mean"] for r in rounds])
    i = sparsest_match(tick, d_mean)
    at = rounds[i] if tick[0] >= d_mean - MATCH else rounds[0]
    per_level = {}
    for r in rounds:
        tk = {s: acc[("ticket", r, s)] for s in _seeds(acc, "ticket", r)}
        per_level[r] = {"remaining": rem[r], "ticket": _ms(list(tk.values())),
                        **{m: {**_ms([acc[(m, r, s)] for s in _seeds(acc, m, r)]),
                               **_paired(tk, {s: acc[(m, r, s)] for s in _seeds(acc, m, r)})} for m in methods}}
    lvl = per_level[at]
    words = {m: _word(lvl[m]) for m in methods}
    matching = [METHODS[m] for m in methods if words[m] == "matches"]
    seeds = len(_seeds(acc, "ticket", at))
    epochs = cfg.epochs
    cost = (f"cost: IMP trained {at + 1} × {epochs} = {(at + 1) * epochs} epochs to find this ticket (dense + {at} "
            f"rounds), a method at init {epochs} epochs plus its scoring ({at + 1}× less training)")
    pm = lambda d: f"{d['mean']:.3f}" + (f" ± {d['sd']:.3f}" if d["n_runs"] > 1 else "")  # noqa: E731
    parts = [f"{METHODS[m]} {pm(lvl[m])} ({_diff_text(lvl[m])}: {words[m]})" for m in methods]
    head = (f"at {rem[at]:.1%} of weights (the ticket's sparsest level within 1 pt of dense {d_mean:.3f}) the IMP "
            f"ticket has {pm(lvl['ticket'])}; " + "; ".join(parts)
            + f"; {seeds} seed{'s' if seeds != 1 else ''}, paired 95% t intervals of method − ticket (none with "
              f"fewer than 3 seeds); {cost}")
    nums = {"level_round": at, "level_remaining": rem[at], "dense_acc": d_mean, "seeds": seeds,
            "matching": matching, "imp_epochs": (at + 1) * epochs, "init_epochs": epochs,
            "levels": {str(r): v for r, v in per_level.items()}}
    if matching:
        return Verdict(True, f"a ticket before training: {', '.join(matching)} match the IMP ticket — {head}", nums)
    if all(w == "below" for w in words.values()):
        return Verdict(False, f"no ticket before training: every method is more than 1 pt below the IMP ticket — "
                              f"{head}", nums)
    return Verdict(None, f"undecided: no method matches the ticket, not all are clearly below — {head}", nums)


def _seeds(acc: dict, v: str, r: int) -> list[int]:
    return sorted(s for vv, rr, s in acc if vv == v and rr == r)


def _ms(xs: list[float]) -> dict:
    n = len(xs)
    m = sum(xs) / n
    sd = (sum((x - m) ** 2 for x in xs) / (n - 1)) ** 0.5 if n > 1 else 0.0
    return {"mean": m, "sd": sd, "n_runs": n}


def _diff_text(p: dict) -> str:
    if p["lo"] is None:
        return f"{100 * p['diff']:+.1f} pts, n={p['n']}, no interval"
    return f"{100 * p['diff']:+.1f} pts [{100 * p['lo']:+.1f}, {100 * p['hi']:+.1f}], n={p['n']}"


PHENOMENON = register(Phenomenon(
    name="tickets_at_init",
    summary="pruning at initialisation (SNIP, GraSP, SynFlow, magnitude, random) against the IMP ticket at the "
            "same per-layer sparsities (MNIST-1D MLP)",
    config_cls=TicketsAtInitConfig,
    toggles=TOGGLES,
    criterion=criterion,
    execute=execute,
    presets=PRESETS,
    headline=("test/acc", "weights_remaining"),
    notes="the lottery ticket's recipe (MNIST-1D 4,000/1,000, MLP 40-300-100-10, Adam 1e-3, 20 epochs per level) "
          "at 36% per round to 2.8% of hidden weights; `phenomon experiment tickets_at_init` runs the IMP ticket "
          "and the five at-init methods × 3 seeds.",
    x_axis=RoundMetric("weights_remaining"),
    experiment={"ticket": (), **{m: (m,) for m in METHODS}},
    group_criterion=group_criterion,
    claim=CLAIM,
))
