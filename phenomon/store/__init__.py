"""The run store: one directory per run, an atomic JSON manifest, tidy metric rows in Parquet segments.

Layout of a run directory (see README, "Internals")::

    <root>/<run_id>/run.json                      manifest, replaced atomically
    <root>/<run_id>/heartbeat                     unix time of the writer's last sign of life
    <root>/<run_id>/metrics/rows-<a>-<b>.parquet  rows with sequence numbers a <= seq < b

Every file is written under a temporary name and renamed, so a reader never sees a torn file. Segment names carry
the row range they hold, which is what lets a reader resume from a row offset and lets compaction merge segments
while readers are scanning: the reader picks a non-overlapping cover of the range it still needs.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import polars as pl

SCHEMA_VERSION = 1
STATUSES = ("running", "finished", "failed", "killed")
DEAD_AFTER_S = 60.0  # a heartbeat older than this on another host means the run is gone
HEARTBEAT_EVERY_S = 5.0
FLUSH_EVERY_S = 1.0
MERGE_AT = 16  # merge the oldest small segments once this many exist

ROW_SCHEMA = {
    "step": pl.Int64,
    "epoch": pl.Int64,
    "wall": pl.Float64,
    "name": pl.String,
    "value": pl.Float64,
    "round": pl.Int64,
}
_SEG_RE = re.compile(r"^rows-(\d{12})-(\d{12})\.parquet$")


class StoreError(Exception):
    """A problem with the run store that the user should read as one line."""


class StoreWarning(UserWarning):
    """Something in a run directory was unreadable and skipped."""


def default_root() -> Path:
    return Path(os.environ.get("PHENOMON_RUNS", "runs"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n").encode())


def seg_name(start: int, end: int) -> str:
    return f"rows-{start:012d}-{end:012d}.parquet"


def list_segments(run_dir: Path) -> list[tuple[int, int, Path]]:
    """Segments present now, as (start, end, path), sorted by start then by size (largest first)."""
    mdir = Path(run_dir) / "metrics"
    try:
        names = os.listdir(mdir)
    except FileNotFoundError:
        return []
    segs = []
    for n in names:
        m = _SEG_RE.match(n)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if b > a:
                segs.append((a, b, mdir / n))
    segs.sort(key=lambda s: (s[0], -s[1]))
    return segs


def cover(segs: list[tuple[int, int, Path]], start: int) -> list[tuple[int, int, Path]]:
    """A non-overlapping chain of segments covering rows from `start` on, preferring the largest segment."""
    chain, pos = [], start
    while True:
        spanning = [s for s in segs if s[0] <= pos < s[1]]
        if spanning:
            best = max(spanning, key=lambda s: s[1])
        else:
            later = [s for s in segs if s[0] > pos]
            if not later:
                return chain
            best = min(later, key=lambda s: (s[0], -s[1]))  # a gap: rows lost to a corrupt or missing file
        chain.append(best)
        pos = best[1]


def _empty_rows() -> pl.DataFrame:
    return pl.DataFrame(schema=ROW_SCHEMA)


def read_segment(path: Path) -> pl.DataFrame:
    return pl.read_parquet(path).select([pl.col(c).cast(t) for c, t in ROW_SCHEMA.items()])


# --------------------------------------------------------------------------------------------------- writing


class RunWriter:
    """Owns one run directory: the manifest, a row buffer flushed about once a second, and the heartbeat.

    Thread-safe: `log` may be called from the training thread while a daemon thread flushes and beats.
    Only the process that owns the run writes into its directory.
    """

    def __init__(self, run_dir: Path, manifest: dict, *, background: bool = True):
        self.dir = Path(run_dir)
        self.mdir = self.dir / "metrics"
        self.mdir.mkdir(parents=True, exist_ok=True)
        self.manifest = dict(manifest)
        self._lock = threading.RLock()
        self._buf: list[tuple] = []
        self._seq = sum(b - a for a, b, _ in cover(list_segments(self.dir), 0))
        self._latest: dict[str, float] = dict(self.manifest.get("summary") or {})
        self._round: int | None = None
        self._last_flush = time.time()
        self._closed = False
        self.write_manifest()
        self.beat()
        self._stop = threading.Event()
        self._thread = None
        if background:
            self._thread = threading.Thread(target=self._loop, name="phenomon-flush", daemon=True)
            self._thread.start()

    # rows ------------------------------------------------------------------------------------------
    def set_round(self, rnd: int | None) -> None:
        """Stamp subsequent rows with a round (pruning round, sweep level); None for none."""
        self._round = rnd

    def log(self, metrics: dict[str, float], step: int, epoch: int | None = None) -> None:
        now = time.time()
        with self._lock:
            for k, v in metrics.items():
                try:
                    v = float(v)
                except (TypeError, ValueError):
                    continue
                self._buf.append((int(step), epoch, now, k, v, self._round))
                if v == v and v not in (float("inf"), float("-inf")):
                    self._latest[k] = v
            if now - self._last_flush >= FLUSH_EVERY_S:
                self.flush()

    def flush(self) -> None:
        with self._lock:
            if self._buf:
                cols = list(zip(*self._buf))
                df = pl.DataFrame({c: list(vals) for c, vals in zip(ROW_SCHEMA, cols)}, schema=ROW_SCHEMA)
                # null instead of NaN/inf: statistics downstream exclude them and count them
                df = df.with_columns(
                    pl.when(pl.col("value").is_finite()).then(pl.col("value")).otherwise(None).alias("value")
                )
                start, end = self._seq, self._seq + df.height
                tmp = self.mdir / f".tmp-{os.getpid()}-{start}.parquet"
                df.write_parquet(tmp, compression="lz4", statistics=False)
                os.replace(tmp, self.mdir / seg_name(start, end))
                self._seq = end
                self._buf.clear()
                self.manifest["rows"] = end
                self.manifest["summary"] = dict(self._latest)
                self.write_manifest()
            self._last_flush = time.time()
        if len(list_segments(self.dir)) >= MERGE_AT:
            self.compact(keep_last=4)

    def compact(self, keep_last: int = 0) -> None:
        """Merge segments into one file (all but the newest `keep_last`). Readers tolerate the swap."""
        with self._lock:
            chain = cover(list_segments(self.dir), 0)
            if keep_last:
                chain = chain[:-keep_last]
            if len(chain) < 2:
                return
            frames = []
            for _, _, p in chain:
                try:
                    frames.append(read_segment(p))
                except Exception:  # noqa: BLE001 - a corrupt segment stays where it is, unmerged
                    return
            merged = pl.concat(frames)
            a, b = chain[0][0], chain[-1][1]
            if merged.height != b - a:  # a gap inside the chain: leave it for a reader to report
                return
            tmp = self.mdir / f".tmp-{os.getpid()}-merge.parquet"
            merged.write_parquet(tmp, compression="zstd")
            os.replace(tmp, self.mdir / seg_name(a, b))
            for _, _, p in chain:
                if p.name != seg_name(a, b):
                    p.unlink(missing_ok=True)

    # manifest and liveness ---------------------------------------------------------------------------
    def update(self, **fields: Any) -> None:
        with self._lock:
            self.manifest.update(fields)
            self.write_manifest()

    def write_manifest(self) -> None:
        with self._lock:
            atomic_write_json(self.dir / "run.json", self.manifest)

    def beat(self) -> None:
        atomic_write_bytes(self.dir / "heartbeat", f"{time.time():.3f}\n".encode())

    def _loop(self) -> None:
        last_beat = time.time()
        while not self._stop.wait(FLUSH_EVERY_S / 2):
            try:
                if time.time() - self._last_flush >= FLUSH_EVERY_S:
                    self.flush()
                if time.time() - last_beat >= HEARTBEAT_EVERY_S:
                    self.beat()
                    last_beat = time.time()
            except OSError as e:  # a full disk must not kill training; say it once
                warnings.warn(f"phenomon: could not write run {self.dir.name}: {e}", StoreWarning, stacklevel=1)
                return

    def close(self, status: str, error: str | None = None, **fields: Any) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; valid: {', '.join(STATUSES)}")
        if self._closed:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            self.flush()
            self.compact()
            self.manifest.update(fields)
            self.manifest.update(status=status, error=error, ended=time.time())
            self.write_manifest()
            self._closed = True
        self.beat()


def new_manifest(run_id: str, phenomenon: str, **fields: Any) -> dict:
    from phenomon import __version__

    m = {
        "schema": SCHEMA_VERSION,
        "id": run_id,
        "phenomenon": phenomenon,
        "config": {},
        "toggles": [],
        "diff": {},
        "group": run_id,
        "seed": None,
        "status": "running",
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.time(),
        "ended": None,
        "error": None,
        "progress": {"step": 0, "max_steps": None},
        "summary": {},
        "rows": 0,
        "versions": _versions(),
        "phenomon": __version__,
    }
    m.update(fields)
    return m


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for pkg in ("torch", "pytorch-lightning", "torchmetrics", "polars"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


# --------------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class RunInfo:
    """A manifest as read, with the liveness the reader worked out (`state` may be 'dead')."""

    id: str
    dir: Path
    manifest: dict
    state: str  # running | finished | failed | killed | dead
    heartbeat_age: float | None

    @property
    def phenomenon(self) -> str:
        return self.manifest.get("phenomenon", "?")

    @property
    def group(self) -> str:
        return self.manifest.get("group") or self.id

    def dead_reason(self) -> str:
        m = self.manifest
        age = "unknown" if self.heartbeat_age is None else f"{self.heartbeat_age:.0f} s ago"
        return f"pid {m.get('pid')} on {m.get('host')} is gone; last heartbeat {age}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def read_manifest(run_dir: Path) -> dict:
    p = Path(run_dir) / "run.json"
    try:
        m = json.loads(p.read_text())
    except FileNotFoundError:
        raise StoreError(f"{run_dir}: no run.json (not a run directory)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StoreError(f"{run_dir}: corrupt run.json ({e.__class__.__name__}: {e})") from None
    if not isinstance(m, dict) or "id" not in m:
        raise StoreError(f"{run_dir}: run.json is not a phenomon manifest")
    return m


def run_info(run_dir: Path) -> RunInfo:
    run_dir = Path(run_dir)
    m = read_manifest(run_dir)
    hb_age = None
    try:
        hb_age = max(0.0, time.time() - float((run_dir / "heartbeat").read_text()))
    except (OSError, ValueError):
        pass
    state = m.get("status", "running")
    if state == "running":
        same_host = m.get("host") == socket.gethostname()
        if same_host and isinstance(m.get("pid"), int) and not _pid_alive(m["pid"]):
            state = "dead"
        elif hb_age is None or hb_age > DEAD_AFTER_S:
            state = "dead"
    return RunInfo(id=m["id"], dir=run_dir, manifest=m, state=state, heartbeat_age=hb_age)


def list_runs(root: Path | None = None, *, errors: list[str] | None = None) -> list[RunInfo]:
    """Every run under `root`, oldest first. Unreadable directories are reported in `errors` and skipped."""
    root = Path(root) if root is not None else default_root()
    if not root.exists():
        return []
    if not root.is_dir():
        raise StoreError(f"runs directory {root} is not a directory")
    out = []
    for d in sorted(root.iterdir()):
        if not d.is_dir() or d.name.startswith("."):
            continue
        try:
            out.append(run_info(d))
        except StoreError as e:
            if errors is not None:
                errors.append(str(e))
    out.sort(key=lambda r: (r.manifest.get("started") or 0, r.id))
    return out


def find_run(root: Path | None, ref: str) -> RunInfo:
    """A run by id, unique id prefix, or path."""
    p = Path(ref)
    if (p / "run.json").exists():
        return run_info(p)
    runs = list_runs(root)
    exact = [r for r in runs if r.id == ref]
    if exact:
        return exact[0]
    pref = [r for r in runs if r.id.startswith(ref)]
    if len(pref) == 1:
        return pref[0]
    if not pref:
        raise StoreError(f"no run {ref!r} in {root or default_root()}")
    raise StoreError(f"{ref!r} is ambiguous: {', '.join(r.id for r in pref[:6])}")


def _read_chain(chain: Iterable[tuple[int, int, Path]], start: int, problems: list[str]) -> tuple[list, int]:
    frames, pos = [], start
    for a, b, p in chain:
        try:
            df = read_segment(p)
        except FileNotFoundError:
            raise  # merged away under us: the caller re-lists
        except Exception as e:  # noqa: BLE001 - corrupt file: report, skip its rows, keep the rest
            problems.append(f"{p}: unreadable segment skipped ({e.__class__.__name__})")
            pos = b
            continue
        if df.height != b - a:
            problems.append(f"{p}: holds {df.height} rows, name says {b - a}; skipped")
            pos = b
            continue
        frames.append(df.slice(max(0, pos - a)))
        pos = b
    return frames, pos


def read_rows(run_dir: Path, start: int = 0, *, problems: list[str] | None = None) -> tuple[pl.DataFrame, int]:
    """Rows with sequence number >= start, and the sequence number to resume from."""
    probs: list[str] = []
    for _ in range(5):
        try:
            frames, pos = _read_chain(cover(list_segments(run_dir), start), start, probs)
            break
        except FileNotFoundError:
            probs.clear()
            continue
    else:
        frames, pos = [], start
    for msg in probs:
        if problems is None:
            warnings.warn(msg, StoreWarning, stacklevel=2)
        else:
            problems.append(msg)
    df = pl.concat(frames) if frames else _empty_rows()
    return df, max(pos, start)


def read_metrics(run_dir: Path, *, problems: list[str] | None = None) -> pl.DataFrame:
    """All rows of one run as a tidy frame."""
    return read_rows(run_dir, 0, problems=problems)[0]


def read_many(runs: Iterable[RunInfo | Path], *, problems: list[str] | None = None) -> pl.LazyFrame:
    """Rows of many runs, with a `run` column, as one lazy frame."""
    frames = []
    for r in runs:
        d = r.dir if isinstance(r, RunInfo) else Path(r)
        rid = r.id if isinstance(r, RunInfo) else d.name
        frames.append(read_metrics(d, problems=problems).with_columns(pl.lit(rid).alias("run")))
    if not frames:
        return _empty_rows().with_columns(pl.lit(None, pl.String).alias("run")).lazy()
    return pl.concat(frames).lazy()


def wide(rows: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """One row per (step, round), one column per metric name: the shape plots and criteria want."""
    lf = rows.lazy() if isinstance(rows, pl.DataFrame) else rows
    df = lf.group_by(["step", "round", "name"]).agg(pl.col("value").last()).collect()
    if df.height == 0:
        return pl.DataFrame(schema={"step": pl.Int64, "round": pl.Int64})
    return df.pivot(on="name", index=["step", "round"], values="value").sort(["round", "step"], nulls_last=False)


@dataclass
class IncrementalReader:
    """Returns, on each `poll`, only the rows written since the previous poll; each row exactly once.

    Old segments are not read again; the one exception is a compaction that merged rows already returned with
    rows not yet returned, in which case that merged file is read once and sliced.
    """

    run_dir: Path
    offset: int = 0
    problems: list[str] = field(default_factory=list)

    def poll(self) -> pl.DataFrame:
        df, self.offset = read_rows(self.run_dir, self.offset, problems=self.problems)
        return df
