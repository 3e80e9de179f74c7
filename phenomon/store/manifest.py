"""One validated reading of a manifest: the type and range of every field a reader uses, or one line saying why not.

Everything above the store (ls, show, score, report, the monitor's watcher, the scorecard) reads manifests through
`read_manifest`, so a run directory holding anything at all can only become "unreadable: <reason>" and never a
traceback further up. Also here: safe names (run ids, phenomena, file name parts) and the process identity a
liveness check or a stop compares (pid, its start time, a per-run token).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from phenomon.store.segments import StoreError

STATUSES = ("running", "finished", "failed", "killed")
PID_MAX = 2 ** 22  # Linux's PID_MAX_LIMIT: no process anywhere has a larger pid
MANIFEST_MAX_BYTES = 16 * 2 ** 20
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+=@-]{0,199}$")


def safe_name(s: Any) -> bool:
    """A name that can be one path component as it is: letters, digits and `_.+=@-`, no leading dot, ≤ 200 chars."""
    return isinstance(s, str) and bool(_NAME_RE.match(s)) and ".." not in s


def slug(s: Any, default: str = "x") -> str:
    """`s` reduced to a safe file name part (for names built from data: report figures, logger names)."""
    out = re.sub(r"[^A-Za-z0-9_.+=@-]+", "_", str(s)).strip("._")[:100].replace("..", "_")
    return out or default


def confined(root: Path, *parts: str) -> Path:
    """`root / parts...`, refusing any result that would leave `root` (`..`, absolute parts, symlinks out)."""
    root_r = Path(root).resolve()
    p = Path(root).joinpath(*parts)
    r = p.resolve()
    if r != root_r and root_r not in r.parents:
        raise StoreError(f"{'/'.join(parts)!r} would leave {root}")
    return p


# ------------------------------------------------------------------------------------------ process identity


def proc_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), None when unknown."""
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as fh:
            rest = fh.read().rsplit(b")", 1)[1].split()
        return int(rest[19])
    except (OSError, ValueError, IndexError):
        return None


def valid_pid(pid: Any) -> bool:
    """A pid that may be looked up at all: an int (not a bool), 2 ≤ pid ≤ PID_MAX (never 0, -1 or init)."""
    return type(pid) is int and 1 < pid <= PID_MAX


# ------------------------------------------------------------------------------------------ validation


def _num(v: Any) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def _int(v: Any, lo: int = 0, hi: int = 2 ** 63 - 1) -> bool:
    return type(v) is int and lo <= v <= hi


def _opt(check):
    return lambda v: v is None or check(v)


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, bool, int)) or (isinstance(v, float) and math.isfinite(v))


def _jsonval(v: Any, depth: int = 0) -> bool:
    """A plain JSON value: scalars, lists and objects of them (nested hyperparameters of other people's modules),
    at most 32 levels deep."""
    if depth > 32:
        return False
    if isinstance(v, list):
        return all(_jsonval(x, depth + 1) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _jsonval(x, depth + 1) for k, x in v.items())
    return _scalar(v)


def _str(v: Any) -> bool:
    return isinstance(v, str)


def _strlist(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _progress(v: Any) -> bool:
    return isinstance(v, dict) and all(_opt(_int)(v.get(k)) for k in ("step", "max_steps"))


def _summary(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and _num(x) for k, x in v.items())


def _round(v: Any) -> bool:
    return isinstance(v, dict) and all(_opt(_int)(v.get(k)) for k in ("round", "rounds"))


# field -> (check, what it must be); a field that is absent is not checked (older manifests lack some)
FIELDS: dict[str, tuple[Any, str]] = {
    "schema": (_opt(lambda v: _int(v, 0, 1000)), "a small integer"),
    "phenomenon": (safe_name, "a name (letters, digits, _.-)"),
    "config": (lambda v: isinstance(v, dict) and all(isinstance(k, str) and _jsonval(x) for k, x in v.items()),
               "an object of plain JSON values (numbers, text, booleans, lists, objects)"),
    "config_hash": (_opt(_str), "text"),
    "diff": (_opt(lambda v: isinstance(v, dict)), "an object"),
    "toggles": (_opt(_strlist), "a list of names"),
    "group": (_opt(lambda v: isinstance(v, str) and 0 < len(v) <= 400), "text"),
    "seed": (_opt(lambda v: _int(v, -(2 ** 63), 2 ** 63 - 1)), "an integer"),
    "status": (lambda v: v in STATUSES, f"one of {', '.join(STATUSES)}"),
    "pid": (_opt(lambda v: _int(v, 1, PID_MAX)), f"an integer pid, 1 to {PID_MAX}"),
    "pid_start": (_opt(_int), "an integer"),
    "token": (_opt(_str), "text"),
    "launch": (_opt(safe_name), "a launch id (letters, digits, _.-)"),
    "engine": (_opt(_str), "text"),
    "host": (_opt(_str), "text"),
    "started": (_opt(lambda v: _num(v) and v >= 0), "a unix time"),
    "ended": (_opt(lambda v: _num(v) and v >= 0), "a unix time"),
    "error": (_opt(_str), "text"),
    "traceback": (_opt(_str), "text"),
    "progress": (_opt(_progress), "{step, max_steps} as integers"),
    "rows": (_opt(_int), "a row count"),
    "summary": (_opt(_summary), "metric names to numbers"),
    "verdict": (_opt(_str), "text"),
    "verdict_numbers": (_opt(lambda v: isinstance(v, dict)), "an object"),
    "versions": (_opt(lambda v: isinstance(v, dict)), "an object"),
    "argv": (_opt(_strlist), "a list of text"),
    "round": (_opt(_round), "{round, rounds} as integers"),
}


def check_manifest(m: Any) -> str | None:
    """None when `m` is a manifest every reader can use; else why not, in a few words."""
    if not isinstance(m, dict):
        return f"run.json holds {type(m).__name__}, not an object"
    if "id" not in m:
        return "run.json has no id (not a phenomon manifest)"
    if not safe_name(m["id"]):
        return f"id {str(m['id'])[:60]!r} is not a name (letters, digits, _.-)"
    for k, (check, what) in FIELDS.items():
        if k in m and not check(m[k]):
            return f"{k} is {json.dumps(m[k], default=str)[:40]}, not {what}"
    return None


def manifest_path(run_dir) -> str:
    """Where a run's manifest is, as a str (not a Path: pollers look it up for every run several times a second); the
    key of `read_manifest`'s cache."""
    return os.path.join(run_dir, "run.json")


def read_manifest(run_dir: Path, cache: dict | None = None) -> dict:
    """The manifest of `run_dir`, checked (`check_manifest`); StoreError "<dir>: unreadable: <reason>" if not.

    With a `cache` (a dict the caller keeps between calls, keyed by `manifest_path`), a run.json not replaced since it
    was last read (same inode, size and mtime: writers replace it by a rename) is not read again: the same checked dict
    is returned."""
    p = manifest_path(run_dir)
    try:
        st = os.stat(p)
        if st.st_size > MANIFEST_MAX_BYTES:
            raise StoreError(f"{run_dir}: unreadable: run.json is over {MANIFEST_MAX_BYTES >> 20} MiB")
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if cache is not None and (hit := cache.get(p)) is not None and hit[0] == key:
            return hit[1]
        with open(p, "rb") as fh:
            m = json.loads(fh.read())
    except FileNotFoundError:
        raise StoreError(f"{run_dir}: unreadable: no run.json (not a run directory)") from None
    except IsADirectoryError:
        raise StoreError(f"{run_dir}: unreadable: run.json is a directory") from None
    except OSError as e:
        raise StoreError(f"{run_dir}: unreadable: run.json: {e.strerror or e}") from None
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, NaN/huge-int limits
        raise StoreError(f"{run_dir}: unreadable: corrupt run.json ({e.__class__.__name__})") from None
    why = check_manifest(m)
    if why is not None:
        raise StoreError(f"{run_dir}: unreadable: {why}")
    if cache is not None:
        cache[p] = (key, m)
    return m
