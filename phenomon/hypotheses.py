"""Preregistered hypotheses: stated before the runs, content-hashed, immutable, checked against later runs only.

A hypothesis names a signal, a phenomenon, what is expected of the signal and a threshold:

    track      median |ρ| with the outcome ≥ threshold (default 0.5)
    lead       median lead > threshold (default 0: the signal moves before the outcome), in most units
    beyond     median |partial ρ given the weight norm| ≥ threshold (default 0.2): it adds something to the norm
    nothing    median |partial ρ| given the norm, or given any weight-magnitude statistic, < threshold (default 0.2)
    intervene  when a toggle changes the outcome, the signal changes as predicted in ≥ threshold of pairs (0.5)

Stored as `<runs>/.hypotheses/<id>.json`, id = hash of the content; created with O_EXCL and never rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from phenomon import store
from phenomon.config import UsageError

EXPECT = {"track": 0.5, "lead": 0.0, "beyond": 0.2, "nothing": 0.2, "intervene": 0.5}
MIN_UNITS = 2  # units (runs, sweeps) where the outcome moved, needed before a verdict


@dataclass(frozen=True)
class Hypothesis:
    text: str
    signal: str
    phenomenon: str
    expect: str
    threshold: float
    created: float = 0.0
    id: str = ""


def _dir(root: Path) -> Path:
    return Path(root) / ".hypotheses"


def valid_signal_names() -> list[str]:
    from phenomon.callbacks import signals as S  # imports torch: only when a hypothesis is added

    return sorted(S.SIGNALS)


def add(root: Path, text: str, signal: str, phenomenon: str, expect: str, threshold: float | None) -> Hypothesis:
    from phenomon import registry

    if not text.strip():
        raise UsageError("a hypothesis needs a statement")
    registry.get(phenomenon)  # unknown phenomenon -> the valid names
    base = signal.removeprefix("signal/").split("/")[0]
    if base not in valid_signal_names():
        raise UsageError(f"unknown signal {signal!r}; valid: {', '.join(valid_signal_names())}")
    if expect not in EXPECT:
        raise UsageError(f"unknown expectation {expect!r}; valid: {', '.join(EXPECT)}")
    thr = EXPECT[expect] if threshold is None else float(threshold)
    if expect in ("track", "beyond", "nothing", "intervene") and not 0.0 <= thr <= 1.0:
        raise UsageError(f"--threshold for {expect} must be in [0, 1], got {thr}")
    if expect == "lead" and not -1.0 <= thr <= 1.0:
        raise UsageError(f"--threshold for lead is a fraction of the run in [-1, 1], got {thr}")
    content = {"text": text.strip(), "signal": signal.removeprefix("signal/"), "phenomenon": phenomenon,
               "expect": expect, "threshold": thr}
    hid = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:10]
    h = Hypothesis(**content, created=time.time(), id=hid)
    d = _dir(root)
    try:
        d.mkdir(parents=True, exist_ok=True)
        fd = os.open(d / f"{hid}.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    except FileExistsError:
        raise UsageError(f"hypothesis {hid} is already registered (identical content)") from None
    except OSError as e:
        raise UsageError(f"cannot write hypotheses in {d}: {e.strerror}") from None
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(h), fh, indent=1)
    return h


def load(root: Path, problems: list[str] | None = None) -> list[Hypothesis]:
    out = []
    d = _dir(root)
    if not d.exists():
        return out
    for p in sorted(d.glob("*.json")):
        try:
            h = Hypothesis(**json.loads(p.read_text()))
        except (ValueError, TypeError) as e:
            if problems is not None:
                problems.append(f"{p}: unreadable hypothesis ({e.__class__.__name__})")
            continue
        content = {k: getattr(h, k) for k in ("text", "signal", "phenomenon", "expect", "threshold")}
        if hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:10] != h.id:
            if problems is not None:
                problems.append(f"{p}: content does not match its hash {h.id}: edited after registration")
            continue
        out.append(h)
    return sorted(out, key=lambda h: h.created)


def runs_after(root: Path, h: Hypothesis) -> list[store.RunInfo]:
    return [r for r in store.list_runs(root)
            if r.phenomenon == h.phenomenon and (r.manifest.get("started") or 0) > h.created
            and r.state in ("finished", "killed", "dead")]


def withdraw(root: Path, hid: str) -> None:
    matches = [h for h in load(root) if h.id.startswith(hid)]
    if len(matches) != 1:
        raise UsageError(f"no single hypothesis matches {hid!r}")
    h = matches[0]
    n = len(runs_after(root, h))
    if n:
        raise UsageError(f"hypothesis {h.id} is immutable: {n} run(s) were made after it (negative results stay)")
    (_dir(root) / f"{h.id}.json").unlink()


def check(root: Path, h: Hypothesis) -> tuple[str, str]:
    """('supported' | 'refuted' | 'not enough runs', the numbers behind it)."""
    import polars as pl

    from phenomon import scorecard

    runs = runs_after(root, h)
    if not runs:
        return "not enough runs", "no runs made after registration"
    units = scorecard.per_unit(scorecard.series(runs))
    sig = units.filter(pl.col("signal") == f"signal/{h.signal}")
    moving = sig.filter(pl.col("outcome_shift") >= pl.col("moves"))
    if h.expect == "intervene":
        iv = scorecard.intervention(units).filter(pl.col("signal") == f"signal/{h.signal}")
        if iv.height == 0 or iv["n_pairs"].sum() < 1:
            return "not enough runs", "no baseline/toggle pair whose outcome differs"
        agree = float(iv["intervention"][0])
        return ("supported" if agree >= h.threshold else "refuted"), f"agreement {agree:.2f} over {iv['n_pairs'][0]} pair(s)"
    if moving.height < MIN_UNITS:
        return "not enough runs", f"{moving.height} unit(s) where the outcome moved; need {MIN_UNITS}"
    if h.expect == "track":
        v = float(moving["rho"].abs().median())
        return ("supported" if v >= h.threshold else "refuted"), f"median |ρ| {v:.2f} over {moving.height} units"
    if h.expect == "lead":
        leads = moving["lead"].drop_nulls()
        v, frac = float(leads.median()), float((leads > h.threshold).mean())
        ok = v > h.threshold and frac >= 0.5
        return ("supported" if ok else "refuted"), f"median lead {v:+.2f} of the run, leads in {frac:.0%} of units"
    v = moving["partial"].drop_nulls().abs().median()
    if h.expect == "nothing":
        m = moving["partial_mag"].drop_nulls().median()
        v = m if v is None else (v if m is None else min(v, m))
    if v is None:
        return "not enough runs", "partial correlation undefined (is the weight norm logged?)"
    v = float(v)
    ok = v >= h.threshold if h.expect == "beyond" else v < h.threshold
    return ("supported" if ok else "refuted"), f"median |partial ρ| {v:.2f} over {moving.height} units"
