"""Writing one run: the manifest, a row buffer flushed about once a second into segments, merging, the heartbeat."""

from __future__ import annotations

import errno
import os
import re
import secrets
import socket
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import polars as pl

from phenomon.store.manifest import STATUSES, proc_start
from phenomon.store.segments import (ROW_SCHEMA, StoreError, StoreWarning, atomic_path, atomic_write_bytes,
                                     atomic_write_json, cover, list_segments, read_segment, seg_name)

SCHEMA_VERSION = 1
HEARTBEAT_EVERY_S = 5.0
FLUSH_EVERY_S = 1.0
MERGE_AT = 16  # merge the oldest small segments once this many exist
WRITE_RETRIES = (0.05, 0.2, 0.5)  # pauses between the attempts of a failing write: a brief full disk may clear
STOP_FILE = "stop"  # a file of this name in a run directory asks its writer's process to stop (any host, any engine)
OWNER_FILE = ".owner"  # holds the run's token; its writer keeps it open (proof a process owns the run)
_TMP_RE = re.compile(r"^\..*\.tmp-(\d+)-\d+")


class StoreWriteError(StoreError):
    """Writing a run failed even after retries (disk full, quota, a read-only or vanished directory)."""


def _what_failed(e: BaseException, what: str) -> str:
    text = str(e)
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in text:
        return f"disk full while writing {what}"
    if isinstance(e, OSError) and e.errno == errno.EFBIG or "File too large" in text:
        return f"file size limit reached while writing {what}"
    if isinstance(e, OSError) and e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"not allowed to write {what} ({e.strerror})"
    return f"could not write {what} ({e.__class__.__name__}: {text[:200]})"


def create_run_dir(root: Path, base: str, *, tries: int = 1000) -> Path:
    """A new, empty run directory `root/base`, or `root/base.2`, `.3`, ...: created exclusively (mkdir without
    exist_ok), so two writers racing for one id never share a directory."""
    root = Path(root)
    for n in range(1, tries + 1):
        d = root / (base if n == 1 else f"{base}.{n}")
        try:
            d.mkdir()
            return d
        except FileExistsError:
            continue
    raise StoreError(f"{tries} runs named {base} already exist in {root}")


class RunWriter:
    """Owns one run directory: the manifest, a row buffer flushed about once a second, and the heartbeat.

    Thread-safe: `log` may be called from the training thread while a daemon thread flushes and beats.
    Only the process that owns the run writes into its directory.
    """

    def __init__(self, run_dir: Path, manifest: dict, *, background: bool = True,
                 on_stop: Callable[[], None] | None = None):
        """`on_stop` is called from the writer's thread when a stop file appears, or when writing failed for good
        (`failed` then says why): the runner raises its "killed" path in the training thread from there."""
        self.dir = Path(run_dir)
        self.mdir = self.dir / "metrics"
        self.mdir.mkdir(parents=True, exist_ok=True)
        self.manifest = dict(manifest)
        self.failed: str | None = None  # why writing failed for good; the run then ends `failed`
        self.stop_requested = False
        self._on_stop = on_stop
        self._owner_fd: int | None = None
        self._sweep_temps()
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
            self._claim()
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

    def _retrying(self, what: str, fn: Callable[[], Any]) -> Any:
        """`fn()`, retried briefly on a write error; then `failed` is set and StoreWriteError raised. Once the writer
        has failed, one attempt: the run is ending and writes what it still can."""
        if self.failed is not None:
            try:
                return fn()
            except (OSError, pl.exceptions.PolarsError):
                raise StoreWriteError(self.failed) from None
        for pause in (*WRITE_RETRIES, None):
            try:
                return fn()
            except (OSError, pl.exceptions.PolarsError) as e:
                if pause is None:
                    self._fail(_what_failed(e, what))
                    raise StoreWriteError(self.failed) from None
                time.sleep(pause)

    def _fail(self, why: str) -> None:
        if self.failed is None:
            self.failed = why
            warnings.warn(f"phenomon: run {self.dir.name}: {why}; the run stops", StoreWarning, stacklevel=3)

    def flush(self) -> None:
        """Write the buffered rows as one segment. After a write failed for good, a no-op (the rows are dropped:
        what the last good flush wrote stays readable)."""
        with self._lock:
            if self.failed is not None:
                self._buf.clear()
                return
            if self._buf:
                cols = list(zip(*self._buf))
                df = pl.DataFrame({c: list(vals) for c, vals in zip(ROW_SCHEMA, cols)}, schema=ROW_SCHEMA)
                # null instead of NaN/inf: statistics downstream exclude them and count them
                df = df.with_columns(
                    pl.when(pl.col("value").is_finite()).then(pl.col("value")).otherwise(None).alias("value")
                )
                start, end = self._seq, self._seq + df.height

                def write() -> None:
                    with atomic_path(self.mdir / seg_name(start, end)) as tmp:
                        df.write_parquet(tmp, compression="lz4", statistics=False)

                self._retrying("metrics", write)
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
            if self.failed is not None:  # never merge (and delete) what cannot be rewritten
                return
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

            def write() -> None:
                with atomic_path(self.mdir / seg_name(a, b)) as tmp:
                    merged.write_parquet(tmp, compression="zstd")

            self._retrying("metrics", write)
            for _, _, p in chain:
                if p.name != seg_name(a, b):
                    p.unlink(missing_ok=True)

    # manifest and liveness ---------------------------------------------------------------------------
    def update(self, **fields: Any) -> None:
        with self._lock:
            self.manifest.update(fields)
            try:
                self.write_manifest()
            except StoreWriteError:
                if self.failed is None:
                    raise
                # writing failed before: the run is ending, and close() records why where it can

    def write_manifest(self) -> None:
        with self._lock:
            self._retrying("the manifest", lambda: atomic_write_json(self.dir / "run.json", self.manifest))

    def beat(self) -> None:
        self._retrying("the heartbeat",
                       lambda: atomic_write_bytes(self.dir / "heartbeat", f"{time.time():.3f}\n".encode()))

    def _loop(self) -> None:
        last_beat = time.time()
        while not self._stop.wait(FLUSH_EVERY_S / 2):
            try:
                if not self.stop_requested and (self.dir / STOP_FILE).exists():
                    self.stop_requested = True
                    self._signal_stop()
                if time.time() - self._last_flush >= FLUSH_EVERY_S:
                    self.flush()
                if time.time() - last_beat >= HEARTBEAT_EVERY_S:
                    self.beat()
                    last_beat = time.time()
            except StoreWriteError:  # `failed` says why: stop the run, it ends `failed`
                self._signal_stop()
                return
            except Exception as e:  # noqa: BLE001 - anything else unexpected: the same, never a silent dead thread
                self._fail(_what_failed(e, "the run"))
                self._signal_stop()
                return

    def _signal_stop(self) -> None:
        if self._on_stop is not None:
            self._on_stop()

    def _claim(self) -> None:
        """Hold `.owner` (the run's token) open for the writer's life: a stop's fallback signal checks that the
        process it would signal has this very file open, so a manifest pointing at a stranger's pid is refused."""
        token = self.manifest.get("token")
        if not token:
            return
        try:
            p = self.dir / OWNER_FILE
            p.write_text(token)
            self._owner_fd = os.open(p, os.O_RDONLY)
        except OSError:
            self._owner_fd = None

    def _sweep_temps(self) -> None:
        """Remove temporary files a writer left behind: this process's, or those of a process that is gone."""
        def gone(pid: int) -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            except (PermissionError, OverflowError, ValueError):
                return False
            return False

        for d in (self.dir, self.mdir):
            try:
                names = os.listdir(d)
            except OSError:
                continue
            for n in names:
                m = _TMP_RE.match(n)
                if m and (int(m.group(1)) == os.getpid() or int(m.group(1)) > 0 and gone(int(m.group(1)))):
                    try:
                        (d / n).unlink()
                    except OSError:
                        pass

    def close(self, status: str, error: str | None = None, **fields: Any) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; valid: {', '.join(STATUSES)}")
        if self._closed:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            try:
                self.flush()
                self.compact()
            except StoreWriteError:
                pass  # `failed` says why; the rows of the last good flush stay readable
            if self.failed is not None:
                status, error = "failed", self.failed
            self.manifest.update(fields)
            self.manifest.update(status=status, error=error, ended=time.time())
            try:
                self.write_manifest()
            except StoreWriteError:
                pass  # written where possible: a reader then reports the run dead, its rows intact
            self._closed = True
            if self._owner_fd is not None:
                os.close(self._owner_fd)
                self._owner_fd = None
            self._sweep_temps()
        try:
            self.beat()
        except StoreWriteError:
            pass


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
        "pid_start": proc_start(os.getpid()),
        "token": secrets.token_hex(8),
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
    for pkg in ("torch", "pytorch-lightning", "lightning", "torchmetrics", "polars"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out
