"""Poll the run store: one IncrementalReader per run, only new rows, a snapshot when anything changed."""

from __future__ import annotations

import time
from pathlib import Path
from types import MappingProxyType

import polars as pl

from phenomon import store
from phenomon.tui.messages import Snapshot

KEEP = ("step", "value", "round")  # the columns charts use; wall and epoch stay on disk
CLOCK = "~wall"  # per run, one row per step: its wall-clock time (the compare screen's wall-time x axis)
READ = ("name", "wall", *KEEP)  # the columns read from new segments (Parquet skips the others)
# Appends are chunks: a live run's frame would become thousands of them and every query over it slows ~5× (13.8 ms
# at 0 chunks, 56.6 ms at 2,400, issue 12). Past this many the frame is rechunked: at one append per poll that is a
# copy every ~8 s of a live run, amortised O(rows / MAX_CHUNKS) per append.
MAX_CHUNKS = 16
# A live run whose manifest counts no rows beyond those read is not listed, except this often: a writer that failed
# to update its manifest still has its rows shown.
RELIST_S = 2.0


def compact(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame itself while it has few chunks; else its newest chunks merged into one, the older kept as they are.

    Chunks are kept as a ladder: each kept chunk holds at least as many rows as all the chunks after it, and the
    first chunk that does not is merged with everything after it. So a frame holds O(log rows) chunks after a
    merge and a row is copied O(log rows) times over a run's life, never the whole frame every MAX_CHUNKS appends
    (rechunking a whole live run every ~30 s put megabytes of freed copies in the allocator: the compare screen's
    RSS rose and fell by ~25 MiB with it)."""
    if frame.width == 0 or max(frame.n_chunks("all")) <= MAX_CHUNKS:
        return frame
    lens = frame.get_column(frame.columns[0]).chunk_lengths()
    after = sum(lens)
    start = 0
    for n in lens:
        after -= n
        if n < after:
            break
        start += n
    else:
        return frame.rechunk()  # a whole ladder of more chunks than that (~2^16 appends' worth): one copy
    return pl.concat([frame.slice(0, start), frame.slice(start).rechunk()], rechunk=False)


class StoreWatcher:
    """Holds the rows read so far; `poll()` returns a new Snapshot, or None when nothing changed."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        # the runs whose new rows are read (None: all). Rows feed only the compare screen: on the runs table the
        # manifests say everything shown, so reading each live run's segments there was work for a hidden screen.
        # A run is read in full once when first listed, so a later compare starts from rows already held and only
        # catches up on what it missed (a writer's merges keep that to a few files per run).
        self.follow: frozenset[str] | None = None
        # followed runs that are still being written have their new segments read at most this often (0: on every
        # poll), all in the same poll: several flushes of a run are read, split and appended as one, and the compare
        # screen redraws once for all of them. A run that ended is read at once: its last rows and its landmarks.
        self.rows_every = 0.0
        self._rows_at = -float("inf")  # when followed live runs were last read
        self._readers: dict[str, store.IncrementalReader] = {}
        self._frames: dict[str, dict[str, pl.DataFrame]] = {}  # run id -> metric name -> (step, value, round)
        self._seen: dict[str, tuple] = {}
        self._last: Snapshot | None = None
        self._manifests: dict = {}  # run.json path -> (its stat, the manifest): unchanged ones are not read again
        self._listed: dict[str, float] = {}  # run id -> when its segments were last listed

    def poll(self) -> Snapshot | None:
        errors: list[str] = []
        try:
            if not self.root.exists():
                return self._emit(Snapshot(self.root, error=f"runs directory {self.root} does not exist (yet)"))
            runs = store.list_runs(self.root, errors=errors, cache=self._manifests)
        except (OSError, store.StoreError) as e:
            return self._emit(Snapshot(self.root, error=f"cannot read runs directory {self.root}: {e}"))
        changed = False
        now = time.monotonic()
        follow = self.follow
        due = now - self._rows_at >= self.rows_every
        if due:
            self._rows_at = now
        for r in runs:
            reader = self._readers.get(r.id) or self._readers.setdefault(
                r.id, store.IncrementalReader(r.dir, columns=READ))
            ended = r.state in ("finished", "failed", "killed")
            said = r.manifest.get("rows")  # a writer updates it after each segment it writes
            if r.id in self._frames and follow is not None and r.id not in follow:
                continue  # its rows are not shown now
            if r.id in self._frames and isinstance(said, int) and reader.offset >= said and (
                    ended or now - self._listed.get(r.id, 0.0) < RELIST_S):
                continue  # nothing new (or, while it runs, nothing the manifest knows of): no listing of segments
            if r.id in self._frames and not ended and not due:
                continue  # read with the next flushes
            self._listed[r.id] = now
            try:
                new = reader.poll()
            except OSError as e:
                errors.append(f"{r.id}: {e}")
                continue
            if new.height or r.id not in self._frames:
                self._frames[r.id] = self._append(self._frames.get(r.id, {}), new)
                changed = True
        for rid in set(self._frames) - {r.id for r in runs}:  # a run directory was removed
            self._frames.pop(rid)
            self._readers.pop(rid, None)
            self._listed.pop(rid, None)
            changed = True
        # per run: (what compare draws: its state), (what only the other screens show: progress, rows, summary)
        seen = {r.id: ((r.state, *(r.manifest.get(k) for k in ("status", "verdict", "error"))),
                       tuple(r.manifest.get(k) for k in ("progress", "rows", "summary"))) for r in runs}
        if follow:  # compare shown: the other screens get the rest with the first snapshot after it (the last one
            # emitted is what `_seen` holds)
            changed |= {k: v[0] for k, v in seen.items()} != {k: v[0] for k, v in self._seen.items()}
        else:
            changed |= seen != self._seen
        if changed:
            self._seen = seen
        problems = tuple(errors) + tuple(p for rd in self._readers.values() for p in rd.problems)
        if not changed and self._last is not None and self._last.error is None and problems == self._last.problems:
            return None
        return self._emit(Snapshot(
            self.root, tuple(runs), MappingProxyType(dict(self._frames)),
            MappingProxyType({rid: reader.offset for rid, reader in self._readers.items()}), problems, None,
            time.monotonic()))

    @staticmethod
    def _append(old: dict[str, pl.DataFrame], new: pl.DataFrame) -> dict[str, pl.DataFrame]:
        """Split new rows by metric once, at ingestion, so a chart never filters a whole run again."""
        out = dict(old)
        if new.height == 0:
            return out
        names = new["name"].unique(maintain_order=True)
        if len(names) == 1:  # a single metric: no partitioning
            parts = {names[0]: new.select(KEEP)}
        else:
            parts = {k[0]: v for k, v in new.select("name", *KEEP).partition_by(
                "name", as_dict=True, maintain_order=True, include_key=False).items()}
        for name, part in parts.items():
            out[name] = part if name not in out else compact(pl.concat([out[name], part], rechunk=False))
        clock = new.group_by("step", maintain_order=True).agg(pl.col("wall").min().alias("value"),
                                                               pl.col("round").first()).select(KEEP)
        out[CLOCK] = clock if CLOCK not in out else compact(pl.concat([out[CLOCK], clock], rechunk=False))
        return out

    def _emit(self, snap: Snapshot) -> Snapshot | None:
        if snap.error and self._last is not None and self._last.error == snap.error:
            return None
        self._last = snap
        return snap
