"""Reading rows: a run's rows from a row offset on (each row once, across merges), all of them, or pivoted wide."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import polars as pl

from phenomon.store import segments
from phenomon.store.segments import Segment, StoreWarning, cover, empty_rows, list_segments


def _read_chain(chain: Iterable[Segment], start: int, problems: list[str],
                columns: Sequence[str] | None) -> tuple[list, int]:
    chain = list(chain)
    if len(chain) > 1 and chain[0][0] <= start and all(x[1] == y[0] for x, y in zip(chain, chain[1:])):
        try:  # contiguous files (a live run's recent flushes): one read, checked against the names' row counts
            df = segments.read_segments([p for _, _, p in chain], columns)
        except FileNotFoundError:
            raise  # merged away under us: the caller re-lists
        except Exception:  # noqa: BLE001 - a bad file among them: read one by one below, which says which
            df = None
        if df is not None and df.height == chain[-1][1] - chain[0][0]:
            return [df.slice(max(0, start - chain[0][0]))], chain[-1][1]
    frames, pos = [], start
    for a, b, p in chain:
        if a > pos:  # no file holds these rows: lost (a deleted or never written segment), said once
            problems.append(f"{p.parent.parent}: rows {pos}–{a} missing (no segment holds them)")
        try:
            df = segments.read_segment(p, columns)  # looked up on the module: tests count the files read
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


def read_rows(run_dir: Path, start: int = 0, *, problems: list[str] | None = None,
              columns: Sequence[str] | None = None) -> tuple[pl.DataFrame, int]:
    """Rows with sequence number >= start (only `columns` of them if given), and the sequence number to resume from.

    Problems (a corrupt or short segment, skipped) go to `problems`, or are warned about when it is None.
    """
    probs: list[str] = []
    mdir = Path(run_dir) / "metrics"
    if mdir.exists() and not mdir.is_dir():
        probs.append(f"{mdir}: not a directory; no rows can be read")
    for _ in range(5):
        try:
            frames, pos = _read_chain(cover(list_segments(run_dir), start), start, probs, columns)
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
    df = pl.concat(frames) if frames else empty_rows(columns)
    return df, max(pos, start)


def read_metrics(run_dir: Path, *, problems: list[str] | None = None,
                 columns: Sequence[str] | None = None) -> pl.DataFrame:
    """All rows of one run as a tidy frame (only `columns` of it if given: e.g. step, name, value, round)."""
    return read_rows(run_dir, 0, problems=problems, columns=columns)[0]


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
    columns: tuple[str, ...] | None = None  # only these columns are read (Parquet skips the others)

    def poll(self) -> pl.DataFrame:
        df, self.offset = read_rows(self.run_dir, self.offset, problems=self.problems, columns=self.columns)
        return df
