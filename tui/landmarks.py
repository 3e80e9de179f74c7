"""The phenomenon's landmarks and verdict for the compare chart, from its own criteria (torch-free, polars only).

Grokking: each configuration's memorisation step (train acc ≥ 99%) and generalisation step (test acc ≥ 95%);
double descent: the interpolation threshold (the first width whose train error is ≤ 1%) and the test-error peak;
lottery tickets: the sparsest round within one point of the dense accuracy. Every number comes from the criterion the
runner and the report use (`grokking.criterion`, `double_descent.verdict.judge`, `lottery_ticket.verdict.criterion`)
applied to each run's rows as the monitor holds them; seeds of one configuration are summarised with their n and
range, never averaged into a step no seed reached.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import polars as pl

from phenomon import registry, store
from phenomon.config import UsageError, from_dict
from phenomon.store.axis import ConfigField, RoundMetric, Step

# numbers a per-run verdict reports -> (tag drawn at the top of the marker, what the tag means)
STEP_MARKS = {"train_99_step": ("m", "train ≥99%"), "test_95_step": ("g", "test ≥95%")}
ROUND_MARKS = {"sparsest_match": ("★", "sparsest within 1 pt of dense")}
SWEEP_MARKS = {"threshold_width": ("T", "interpolation threshold: train error ≤ 1%"),
               "peak_width": ("P", "test error peak")}


@dataclass(frozen=True)
class Marker:
    """A vertical line on every panel at x (data units) in the configuration's colour, tagged at its top."""

    x: float
    key: str  # the configuration (hidden configurations hide their markers too)
    color: int
    tag: str


@dataclass(frozen=True)
class Landmarks:
    markers: tuple[Marker, ...] = ()
    verdicts: dict | None = None  # configuration key -> one line (n and range where seeds disagree); None: not yet
    legend: str = ""  # what the tags mean


def _wide(run: dict[str, pl.DataFrame], names) -> pl.DataFrame:
    """`store.wide` of the named metrics, by joins of the per-metric frames the watcher holds (a group-by and pivot
    of the long rows cost ~10× more: 220 ms against ~20 ms per 100k-row run on a loaded machine)."""
    out = None
    for n in sorted(names):
        if n not in run:
            continue
        f = run[n].select("step", "round", pl.col("value").alias(n))
        out = f if out is None else out.join(f, on=["step", "round"], how="full", coalesce=True, nulls_equal=True)
    if out is None:
        return pl.DataFrame(schema={"step": pl.Int64, "round": pl.Int64})
    return out.sort(["round", "step"], nulls_last=False)


def _cfg(ph, manifest: dict):
    try:
        return from_dict(ph.config_cls, manifest.get("config") or {})
    except Exception:  # noqa: BLE001 - a config this version cannot rebuild has no verdict here
        return None


def _range(xs: list[float]) -> str:
    lo, hi = min(xs), max(xs)
    return f"{lo:g}" if lo == hi else f"{lo:g}–{hi:g}"


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    k = len(s) // 2
    return s[k] if len(s) % 2 else (s[k - 1] + s[k]) / 2


# live runs are judged again on all their rows: together at most this share of one core. A quarter of a percent: at
# 4 live runs × 100k rows (~5 ms a judgement) a live verdict is ~8 s behind its rows, and the compare screen's idle
# CPU keeps under 3% (issue 12: at 1% the landmarks were a quarter of it)
DUTY = 0.0025


@dataclass
class Judged:
    """Verdicts kept between refreshes (run id -> (rows judged, verdict)) and when each live run may be judged again.

    A criterion reads a run's every row, so judging each live run on every refresh costs more the longer the runs
    get (the monitor's CPU rose with uptime, issue 12). A live run whose last judgement cost `d` seconds waits
    `d * n_live / DUTY` before the next, so all live runs together stay under DUTY of a core at any length: the
    verdict of a long live run lags a few seconds behind its rows, never its CPU. A run that ended is judged once
    on its final rows, at once."""

    verdicts: dict = field(default_factory=dict)
    due: dict = field(default_factory=dict)  # run id -> monotonic time its next judgement may start
    min_wait: float = 1.0

    def get(self, rid, rows, live: bool):
        """The kept verdict when it may stand: same rows, or a live run not yet due. Else None (judge it)."""
        hit = self.verdicts.get(rid)
        if hit is None:
            return None
        if hit[0] == rows or (live and time.monotonic() < self.due.get(rid, 0.0)):
            return hit
        return None

    def put(self, rid, rows, verdict, cost: float, n_live: int) -> None:
        self.verdicts[rid] = (rows, verdict)
        self.due[rid] = time.monotonic() + max(self.min_wait, cost * max(1, n_live) / DUTY)


def _verdict(ph, frames, manifests, rid, names, cache: Judged | None, live: frozenset = frozenset()):
    """One run's criterion on its rows. With a `cache` a run whose rows did not change since (finished runs: all of
    them) is not judged again, nor is a live run before its turn."""
    run = frames[rid]
    rows = tuple(run[n].height for n in sorted(names) if n in run)
    if cache is not None and (hit := cache.get(rid, rows, rid in live)) is not None:
        return hit[1]
    t = time.perf_counter()
    cfg = _cfg(ph, manifests[rid])
    v = None if cfg is None else ph.criterion(_wide(run, names), cfg)
    if cache is not None:
        cache.put(rid, rows, v, time.perf_counter() - t, len(live))
    return v


def _per_run(ph, frames, manifests, rids, names, marks, cache=None,
             live: frozenset = frozenset()) -> tuple[dict[str, list[float]], list[tuple]]:
    """Each run's verdict: the landmark numbers it reports, and (seed, effect, line)."""
    found: dict[str, list[float]] = {k: [] for k in marks}
    lines = []
    for rid in rids:
        if rid not in frames:
            continue
        v = _verdict(ph, frames, manifests, rid, names, cache, live)
        if v is None:
            continue
        for k in marks:
            if isinstance(v.numbers.get(k), (int, float)):
                found[k].append(float(v.numbers[k]))
        lines.append((manifests[rid].get("seed"), v.effect, v.line))
    return found, lines


def _summary(found: dict[str, list[float]], lines: list[tuple], marks: dict, noun: str) -> str:
    n = len(lines)
    if n == 0:
        return "no rows yet"
    if n == 1:
        return lines[0][2]
    yes = sum(1 for _, e, _ in lines if e is True)
    undecided = sum(1 for _, e, _ in lines if e is None)
    parts = [f"{noun} in {yes} of {n} seeds" + (f" ({undecided} undecided yet)" if undecided else "")]
    for k, (tag, what) in marks.items():
        xs = found[k]
        if xs:
            parts.append(f"{what} in {len(xs)}/{n} at {_range(xs)} (median {_median(xs):g})")
        else:
            parts.append(f"{what} in 0/{n}")
    return "; ".join(parts)


def for_runs(frames, manifests: dict[str, dict], x_axis=None, cache: Judged | None = None,
             live=frozenset()) -> Landmarks:
    """Markers and a verdict line per configuration of the compared runs (one phenomenon: the first run's). Drawn
    on the phenomenon's own x axis; on another (a sweep seen over steps) the verdicts stay and the markers go.
    `live`: the ids of runs still being written (with a `Judged` cache, judged again only in their turn)."""
    if not manifests:
        return Landmarks((), {})
    try:
        ph = registry.get(next(iter(manifests.values())).get("phenomenon", ""))
    except UsageError:  # other people's runs: no criterion to apply
        return Landmarks((), {})
    mine = {r: m for r, m in manifests.items() if m.get("phenomenon") == ph.name}
    lm = _sweep(ph, frames, mine) if isinstance(ph.x_axis, ConfigField) else _runs(ph, frames, mine, cache, frozenset(live))
    if x_axis is not None and x_axis != ph.x_axis:
        return Landmarks((), lm.verdicts, "")
    return lm


def _runs(ph, frames, mine, cache=None, live: frozenset = frozenset()) -> Landmarks:
    marks = ROUND_MARKS if isinstance(ph.x_axis, RoundMetric) else STEP_MARKS
    names = {"train/acc", "test/acc"} if isinstance(ph.x_axis, Step) else {
        "weights_remaining", "round/test_acc", "round/early_stop_step", "time/step_ms"}
    noun = "grokked" if ph.name == "grokking" else "shown"
    markers, verdicts = [], {}
    for n, (ck, rids) in enumerate(store.by_configuration(mine).items()):
        found, lines = _per_run(ph, frames, mine, rids, names, marks, cache, live)
        verdicts[ck] = _summary(found, lines, marks, noun)
        for k, (tag, _) in marks.items():
            if found[k]:  # the median over the seeds that reached it (the status line gives n and the range)
                markers.append(Marker(_median(found[k]), ck, n, tag))
    legend = " · ".join(f"{tag} {what}" for tag, what in marks.values())
    return Landmarks(tuple(markers), verdicts, legend)


def _sweep(ph, frames, manifests) -> Landmarks:
    """Per label (the sweep's configurations): `judge` over the widths and seeds finished so far."""
    from phenomon.phenomena.double_descent.verdict import judge  # the only sweep phenomenon registered

    field = ph.x_axis.name
    rows: dict[str, list[dict]] = {}
    for rid, m in manifests.items():
        f = frames.get(rid) or {}
        te, tr = (f.get(f"final/{k}_error") if f.get(f"final/{k}_error") is not None else f.get(f"{k}/error")
                  for k in ("test", "train"))
        x = (m.get("config") or {}).get(field)
        if te is None or tr is None or x is None:
            continue
        te, tr = te["value"].drop_nulls(), tr["value"].drop_nulls()
        if te.len() and tr.len():
            rows.setdefault(store.label_of(m), []).append(
                {"width": float(x), "seed": m.get("seed") or 0, "test_error": te[-1], "train_error": tr[-1]})
    markers, verdicts = [], {}
    for n, (label, rs) in enumerate(rows.items()):
        v = judge(pl.DataFrame(rs))
        verdicts[label] = v.line
        for k, (tag, _) in SWEEP_MARKS.items():
            if isinstance(v.numbers.get(k), (int, float)):
                markers.append(Marker(float(v.numbers[k]), label, n, tag))
    return Landmarks(tuple(markers), verdicts, " · ".join(f"{t} {w}" for t, w in SWEEP_MARKS.values()))
