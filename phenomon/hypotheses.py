"""Preregistered hypotheses: stated before the runs, content-hashed, immutable, checked against later runs only.

A hypothesis names a signal, a phenomenon, what is expected of the signal and a threshold:

    track      the signal's changes track the outcome's (q < 0.05) with mean |Δ-ρ| ≥ threshold (default 0.3)
    lead       the interval of the median onset lead lies above threshold (default 0: the signal moves first)
    beyond     the interval of the partial ρ given the weight norm lies beyond ±threshold (default 0.2)
    nothing    the interval of the partial ρ given the weight norm lies inside ±threshold (default 0.2)
    intervene  when a toggle moves the phenomenon, the signal moves as predicted in ≥ threshold of pairs (0.5)

Units where a statistic is undefined do not count; "not enough runs" names the cause.

Stored as `<runs>/.hypotheses/<id>.json`, id = hash of every field (the registration time included); created with
O_EXCL and never rewritten. `ledger.jsonl` beside them is append-only, each entry chaining the previous entry's hash:
an edited, backdated, deleted or unlisted hypothesis is reported, not trusted.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from phenomon import store
from phenomon.config import UsageError

EXPECT = {"track": 0.3, "lead": 0.0, "beyond": 0.2, "nothing": 0.2, "intervene": 0.5}
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


FIELDS = ("text", "signal", "phenomenon", "expect", "threshold", "created")  # all hashed: none can move unnoticed
LEDGER = "ledger.jsonl"  # append-only: each entry chains the previous entry's hash


def _hash(obj: dict) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def hypothesis_id(content: dict) -> str:
    """The id: a hash of every field, `created` included (backdating or postdating changes the id)."""
    return _hash({k: content[k] for k in FIELDS})[:10]


def _ledger(root: Path, problems: list[str] | None) -> list[dict]:
    """The ledger's entries, in order, after checking the chain; a break is reported (edits, deletions)."""
    p = _dir(root) / LEDGER
    try:
        lines = p.read_text().splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as e:
        _say(problems, f"{p}: unreadable ledger ({e.__class__.__name__})")
        return []
    out, prev = [], ""
    for n, line in enumerate(lines, 1):
        try:
            e = json.loads(line)
            ok = isinstance(e, dict) and e.get("prev") == prev and isinstance(e.get("id"), str)
        except ValueError:
            ok = False
        if not ok:
            _say(problems, f"{p}: entry {n} breaks the chain: the ledger was edited; later entries not trusted")
            break
        out.append(e)
        prev = _hash(e)
    return out


def _append(root: Path, entry: dict) -> None:
    entries = _ledger(root, None)
    entry = {**entry, "prev": _hash(entries[-1]) if entries else ""}
    with open(_dir(root) / LEDGER, "a") as fh:
        fh.write(json.dumps(entry, sort_keys=True) + "\n")


def _say(problems: list[str] | None, line: str) -> None:
    if problems is not None:
        problems.append(line)


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
    if not math.isfinite(thr):
        raise UsageError(f"--threshold must be a finite number, got {thr}")
    if expect in ("track", "beyond", "nothing", "intervene") and not 0.0 <= thr <= 1.0:
        raise UsageError(f"--threshold for {expect} must be in [0, 1], got {thr}")
    if expect == "lead" and not -1.0 <= thr <= 1.0:
        raise UsageError(f"--threshold for lead is a fraction of the run in [-1, 1], got {thr}")
    content = {"text": text.strip(), "signal": signal.removeprefix("signal/"), "phenomenon": phenomenon,
               "expect": expect, "threshold": thr}
    same = [h for h in load(root) if all(getattr(h, k) == v for k, v in content.items())]
    if same:
        raise UsageError(f"hypothesis {same[0].id} is already registered (identical content)")
    content["created"] = time.time()
    h = Hypothesis(**content, id=hypothesis_id(content))
    d = _dir(root)
    try:
        d.mkdir(parents=True, exist_ok=True)
        fd = os.open(d / f"{h.id}.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    except FileExistsError:
        raise UsageError(f"hypothesis {h.id} is already registered (identical content)") from None
    except OSError as e:
        raise UsageError(f"cannot write hypotheses in {d}: {e.strerror}") from None
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(h), fh, indent=1)
    _append(root, {"op": "add", "id": h.id, "created": h.created})
    return h


def _why_invalid(d) -> str | None:
    if not isinstance(d, dict):
        return "not an object"
    for k in ("text", "signal", "phenomenon", "expect", "id"):
        if not isinstance(d.get(k), str):
            return f"{k} is {json.dumps(d.get(k))[:30]}, not text"
    if d["expect"] not in EXPECT:
        return f"expect {d['expect']!r} is not one of {', '.join(EXPECT)}"
    for k in ("threshold", "created"):
        v = d.get(k)
        if type(v) not in (int, float) or not math.isfinite(v):
            return f"{k} is {json.dumps(v)[:30]}, not a number"
    return None


def load(root: Path, problems: list[str] | None = None) -> list[Hypothesis]:
    """Registered hypotheses whose files are intact; each problem (edited, deleted, unlisted, unreadable) one line."""
    out = []
    d = _dir(root)
    if not d.exists():
        return out
    ledger = _ledger(root, problems)
    listed = {e["id"]: e for e in ledger if e.get("op") == "add"}
    withdrawn = {e["id"] for e in ledger if e.get("op") == "withdraw"}
    seen = set()
    for p in sorted(d.glob("*.json")):
        try:
            raw = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            _say(problems, f"{p}: unreadable hypothesis ({e.__class__.__name__})")
            continue
        why = _why_invalid(raw)
        if why is not None:
            _say(problems, f"{p}: unreadable hypothesis ({why})")
            continue
        h = Hypothesis(**{k: raw[k] for k in (*FIELDS, "id")})
        seen.add(h.id)
        if hypothesis_id(asdict(h)) != h.id or p.stem != h.id:
            _say(problems, f"{p}: content does not match its hash {h.id}: edited after registration")
            continue
        if ledger and h.id not in listed:
            _say(problems, f"{p}: not in the ledger: added outside `phenomon hypothesis add`")
        elif h.id in listed and listed[h.id].get("created") != h.created:
            _say(problems, f"{p}: its registration time differs from the ledger's: backdated or postdated")
            continue
        out.append(h)
    for hid in set(listed) - seen - withdrawn:
        _say(problems, f"hypothesis {hid} is in the ledger but its file is gone: deleted without withdrawal")
    return sorted(out, key=lambda h: h.created)


def runs_after(root: Path, h: Hypothesis) -> list[store.RunInfo]:
    return [r for r in store.list_runs(root)
            if r.phenomenon == h.phenomenon and (r.manifest.get("started") or 0) > h.created
            and r.state in ("finished", "killed", "dead")]


def withdraw(root: Path, hid: str) -> None:
    """Remove the hypothesis with exactly this id, while no run was made after it."""
    matches = [h for h in load(root) if h.id == hid]
    if not matches:
        raise UsageError(f"no hypothesis has the id {hid!r} (give the full id, as `phenomon hypothesis list` shows)")
    h = matches[0]
    n = len(runs_after(root, h))
    if n:
        raise UsageError(f"hypothesis {h.id} is immutable: {n} run(s) were made after it (negative results stay)")
    _append(root, {"op": "withdraw", "id": h.id, "at": time.time()})
    (_dir(root) / f"{h.id}.json").unlink()


def check(root: Path, h: Hypothesis) -> tuple[str, str]:
    """('supported' | 'refuted' | 'not enough runs', the numbers behind it: estimate, interval, n)."""
    import polars as pl

    from phenomon import scorecard

    runs = runs_after(root, h)
    if not runs:
        return "not enough runs", "no runs made after registration"
    pts = scorecard.series(runs)
    name = f"signal/{h.signal}"
    if pts.height == 0 or pts.filter(pl.col("signal").str.starts_with(name)).height == 0:
        return "not enough runs", f"{name} is not logged by the {len(runs)} run(s) made after registration"
    table = scorecard.score(runs, pts=pts)
    rows = table.filter((pl.col("signal") == name) & (pl.col("phenomenon") == h.phenomenon))
    if rows.height == 0:
        return "not enough runs", f"{name} has no points with the outcome in these runs"
    r = rows.row(0, named=True)
    n = r["n_units"]
    if h.expect == "intervene":
        if not r.get("iv_pairs"):
            return "not enough runs", "no (baseline, toggled) pair of one seed whose effect moved"
        agree = r["intervention"]
        return (("supported" if agree >= h.threshold else "refuted"),
                f"agreement {r['iv_agree']}/{r['iv_pairs']} pairs [{r['intervention_lo']:.2f}, {r['intervention_hi']:.2f}]")
    if n < MIN_UNITS:
        why = r.get("why_tracking") or "undefined"
        return "not enough runs", f"{n} unit(s) with a defined statistic (need {MIN_UNITS}): {why}"
    if h.expect == "track":
        v, q = abs(r["tracking"]), r["q"]
        ok = bool(r["tracks"]) and v >= h.threshold
        return ("supported" if ok else "refuted"), f"mean |Δ-ρ| {v:.2f}, q={q:.3f}, n={n}{_interval(r, 'tracking')}"
    if h.expect == "lead":
        if r["lead"] is None:
            from phenomon.store.axis import Step, parse

            on_steps = isinstance(parse(r["axis"]), Step)
            return "not enough runs", f"no onset lead: {'a curve never moves' if on_steps else 'leads are judged over steps only'}"
        if r["lead_lo"] is None:
            return "not enough runs", f"median lead {r['lead']:+.2f} from {r['lead_n']} unit(s): no interval (need 3)"
        ok = r["lead_lo"] > h.threshold
        return ("supported" if ok else "refuted"), f"median lead {r['lead']:+.2f}{_interval(r, 'lead')}, n={r['lead_n']}"
    v, lo, hi = r["partial_norm"], r["partial_norm_lo"], r["partial_norm_hi"]
    if v is None:
        return "not enough runs", f"partial ρ given the norm undefined: {r.get('why_partial_norm') or 'no units'}"
    if lo is None:
        return "not enough runs", f"partial ρ given the norm {v:+.2f} from {r['partial_norm_n']} unit(s): no interval (need 3)"
    if h.expect == "beyond":
        ok = lo >= h.threshold or hi <= -h.threshold
    else:  # nothing: the whole interval inside ±threshold
        ok = -h.threshold < lo and hi < h.threshold
    return ("supported" if ok else "refuted"), f"partial ρ given the norm {v:+.2f}{_interval(r, 'partial_norm')}, n={r['partial_norm_n']}"


def _interval(r: dict, key: str) -> str:
    lo, hi = r.get(f"{key}_lo"), r.get(f"{key}_hi")
    return f" [{lo:+.2f}, {hi:+.2f}]" if lo is not None else " (no interval)"
