"""Lottery-ticket verdicts: one run's curve against its own dense round, and a group's ticket against its controls."""

from __future__ import annotations

import polars as pl

from phenomon.phenomena.lottery_ticket.config import LotteryConfig
from phenomon.registry import Verdict

MATCH = 0.01  # "within one point of the dense network"
LEVEL = 0.20  # the ticket must match down to at least this fraction of weights


def round_table(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per round: the summary rows each round writes at its end."""
    cols = ["round", "weights_remaining", "round/test_acc", "round/early_stop_step", "time/step_ms"]
    if frame.height == 0 or any(c not in frame.columns for c in cols):
        return pl.DataFrame(schema={c: pl.Float64 for c in cols})
    return frame.filter(pl.col("weights_remaining").is_not_null()).select(cols).sort("round")


def sparsest_match(acc: pl.Series, dense: float) -> int:
    """Index of the sparsest level (`acc` ordered from dense to sparse) reached without dropping more than MATCH
    below dense accuracy."""
    best = 0
    for i, a in enumerate(acc.to_list()):
        if a is None or a < dense - MATCH - 1e-12:
            break
        best = i
    return best


def _step_ms(t: pl.DataFrame) -> tuple[float | None, float | None, float | None]:
    """Median step time of the dense round and of the round nearest 10% of weights remaining."""
    if t.height < 2:
        return None, None, None
    dense = t["time/step_ms"][0]
    near = t.slice(1).with_columns((pl.col("weights_remaining") - 0.1).abs().alias("d")).sort("d").row(0, named=True)
    return dense, near["time/step_ms"], near["weights_remaining"]


def criterion(frame: pl.DataFrame, cfg: LotteryConfig) -> Verdict:
    """This run's own curve: how far it stays within one point of its dense round (True when down to ≤ 20%)."""
    t = round_table(frame)
    if t.height == 0:
        return Verdict(None, "no finished round yet")
    if t["round"][0] != 0:
        r = t.row(-1, named=True)
        return Verdict(None, f"trained the loaded masks: test acc {r['round/test_acc']:.3f} at "
                             f"{r['weights_remaining']:.1%} of weights", {"test_acc": r["round/test_acc"]})
    dense = t["round/test_acc"][0]
    i = sparsest_match(t["round/test_acc"], dense)
    s, a = t["weights_remaining"][i], t["round/test_acc"][i]
    last = t.row(-1, named=True)
    ms_dense, ms_sparse, rem_sparse = _step_ms(t)
    nums = {"dense_acc": dense, "sparsest_match": s, "acc_at_sparsest": a, "rounds_done": t.height - 1,
            "final_remaining": last["weights_remaining"], "final_acc": last["round/test_acc"],
            "step_ms_dense": ms_dense, "step_ms_sparse": ms_sparse, "sparse_remaining": rem_sparse}
    line = f"within 1 pt of its dense acc {dense:.3f} down to {s:.1%} of weights ({a:.3f})"
    if t.height > 1:
        line += f"; {last['round/test_acc']:.3f} at {last['weights_remaining']:.1%}"
    if ms_dense is not None:
        line += f"; step {ms_dense:.2f} ms dense vs {ms_sparse:.2f} ms at {rem_sparse:.0%} weights"
    done = t.height - 1 >= cfg.rounds()
    if s <= LEVEL + 1e-9:
        return Verdict(True, "matches dense: " + line, nums)
    return Verdict(False if done else None, ("not down to 20%: " if done else "so far ") + line, nums)


def with_variants(frame: pl.DataFrame) -> pl.DataFrame:
    """A `variant` column: the run's toggles minus those every run shares ("ticket" when none is left).

    So an experiment run with a toggle on throughout (say `rewind`) still reads as ticket vs its controls.
    """
    sets = {t: set(filter(None, t.split(","))) for t in frame["toggles"].unique().to_list()}
    common = set.intersection(*sets.values()) if sets else set()
    names = {t: ",".join(sorted(v - common)) or "ticket" for t, v in sets.items()}
    return frame.with_columns(pl.col("toggles").replace_strict(names, return_dtype=pl.String).alias("variant"))


def group_criterion(frame: pl.DataFrame, cfg: LotteryConfig) -> Verdict:
    """Ticket vs reinit vs random pruning vs dense, mean ± sd over seeds, level by level (runs × rounds frame).

    `frame`: the wide rows of a group's runs with `toggles` and `seed` columns (see `phenomon.experiment`).
    """
    need = {"ticket", "reinit", "random_prune"}
    if frame.height == 0 or "weights_remaining" not in frame.columns or "toggles" not in frame.columns:
        return Verdict(None, "no finished rounds in the group yet")
    t = (with_variants(frame).filter(pl.col("weights_remaining").is_not_null())
         .select("variant", "seed", "round", "weights_remaining", "round/test_acc", "time/step_ms"))
    have = set(t["variant"].unique().to_list())
    if not need <= have:
        return Verdict(None, f"needs ticket, reinit and random_prune runs; has {', '.join(sorted(have)) or 'none'} "
                             f"(`phenomon experiment lottery_ticket` runs all three)")
    dense = t.filter(pl.col("round") == 0).group_by("seed").agg(pl.col("round/test_acc").mean())["round/test_acc"]
    d_mean, d_sd = dense.mean(), dense.std() or 0.0
    per = (t.filter(pl.col("round") > 0).group_by("variant", "round")
           .agg(pl.col("round/test_acc").mean().alias("mean"), pl.col("round/test_acc").std().fill_null(0).alias("sd"),
                pl.col("weights_remaining").mean().alias("rem"), pl.len().alias("n"))
           .sort("round"))
    wide = per.pivot(on="variant", index="round", values=["mean", "sd", "rem", "n"])
    wide = wide.filter(pl.all_horizontal(pl.col(f"mean_{v}").is_not_null() for v in need)).sort("round")
    if wide.height == 0:
        return Verdict(None, "no pruned round finished by every variant yet")
    i = sparsest_match(wide["mean_ticket"], d_mean)
    if wide["mean_ticket"][0] < d_mean - MATCH:
        i = -1
    seeds = int(t["seed"].n_unique())
    nums = {"dense_acc": d_mean, "dense_sd": d_sd, "seeds": seeds,
            "curve": {v: wide.select("rem_ticket", f"mean_{v}", f"sd_{v}").rows() for v in sorted(have)
                      if f"mean_{v}" in wide.columns}}
    if i < 0:
        r = wide.row(0, named=True)
        return Verdict(False, f"no ticket: at {r['rem_ticket']:.1%} of weights the ticket has {r['mean_ticket']:.3f} "
                              f"vs dense {d_mean:.3f} ± {d_sd:.3f} ({seeds} seeds)", nums)
    r = wide.row(i, named=True)
    gap = (wide["mean_ticket"] - wide["mean_reinit"]).slice(0, i + 1)
    widening = pl.DataFrame({"k": range(gap.len()), "g": gap}).select(pl.corr("k", "g", method="spearman")).item() \
        if gap.len() >= 3 else float("nan")
    s = r["rem_ticket"]
    controls_below = all(r[f"mean_{v}"] < d_mean - MATCH for v in ("reinit", "random_prune"))
    widens = widening == widening and widening > 0 and gap[-1] > gap[0]
    nums.update(sparsest_match=s, ticket_acc=r["mean_ticket"], ticket_sd=r["sd_ticket"],
                reinit_acc=r["mean_reinit"], reinit_sd=r["sd_reinit"], random_acc=r["mean_random_prune"],
                random_sd=r["sd_random_prune"], gap_reinit_first=gap[0], gap_reinit_at_sparsest=gap[-1],
                gap_widening_spearman=widening)
    others = "".join(f", {v} {r[f'mean_{v}']:.3f}" for v in sorted(have - need) if r.get(f"mean_{v}") is not None)
    line = (f"ticket within 1 pt of dense ({d_mean:.3f} ± {d_sd:.3f}) down to {s:.1%} of weights: "
            f"{r['mean_ticket']:.3f} ± {r['sd_ticket']:.3f} vs reinit {r['mean_reinit']:.3f} ± {r['sd_reinit']:.3f} "
            f"({100 * (r['mean_reinit'] - r['mean_ticket']):+.1f} pts), random {r['mean_random_prune']:.3f} ± "
            f"{r['sd_random_prune']:.3f} ({100 * (r['mean_random_prune'] - r['mean_ticket']):+.1f} pts){others}; "
            f"ticket−reinit gap {100 * gap[0]:.1f} → {100 * gap[-1]:.1f} pts; {seeds} seeds")
    ok = s <= LEVEL + 1e-9 and controls_below and widens
    why = [] if ok else [w for w, bad in ((f"matches only down to {s:.0%}", s > LEVEL + 1e-9),
                                          ("a control matches dense too", not controls_below),
                                          ("the gap to reinit does not widen", not widens)) if bad]
    return Verdict(ok, ("winning ticket: " if ok else f"no clear ticket ({'; '.join(why)}): ") + line, nums)
