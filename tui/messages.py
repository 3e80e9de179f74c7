"""Messages from the store watcher to the app: immutable snapshots that coalesce when the UI is busy."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import polars as pl
from textual.message import Message

from phenomon.store import RunInfo


@dataclass(frozen=True)
class Snapshot:
    """What the store held at one poll: runs (manifests with liveness), rows read so far, problems met."""

    root: Path
    runs: tuple[RunInfo, ...] = ()
    frames: Mapping[str, Mapping[str, pl.DataFrame]] = field(default_factory=lambda: MappingProxyType({}))
    # run id -> metric name -> rows (step, value, round) read so far; never mutated, replaced on change
    rows: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))  # run id -> rows read
    problems: tuple[str, ...] = ()
    error: str | None = None  # the runs directory itself is missing or unreadable
    taken: float = 0.0  # monotonic time of the poll

    def run(self, rid: str) -> RunInfo | None:
        return next((r for r in self.runs if r.id == rid), None)


class StoreChanged(Message):
    """A newer snapshot; an older one still queued is dropped in its favour."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StoreChanged)
