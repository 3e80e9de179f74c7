"""Writing one run: the manifest, a row buffer flushed about once a second into segments, merging, the heartbeat."""

from __future__ import annotations

import os
import socket
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import polars as pl

from phenomon.store.segments import (ROW_SCHEMA, StoreWarning, atomic_path, atomic_write_bytes, atomic_write_json,
                                     cover, list_segments, read_segment, seg_name)

SCHEMA_VERSION = 1
STATUSES = ("running", "finished", "failed", "killed")
HEARTBEAT_EVERY_S = 5.0
FLUSH_EVERY_S = 1.0
MERGE_AT = 16  # merge the oldest small segments once this many exist


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
                with atomic_path(self.mdir / seg_name(start, end)) as tmp:
                    df.write_parquet(tmp, compression="lz4", statistics=False)
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
            with atomic_path(self.mdir / seg_name(a, b)) as tmp:
                merged.write_parquet(tmp, compression="zstd")
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
    for pkg in ("torch", "pytorch-lightning", "lightning", "torchmetrics", "polars"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out
