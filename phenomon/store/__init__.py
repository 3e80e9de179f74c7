"""The run store: one directory per run, an atomic JSON manifest, tidy metric rows in Parquet segments.

Layout of a run directory (see README, "Internals")::

    <root>/<run_id>/run.json                      manifest, replaced atomically
    <root>/<run_id>/heartbeat                     unix time of the writer's last sign of life
    <root>/<run_id>/metrics/rows-<a>-<b>.parquet  rows with sequence numbers a <= seq < b

The bottom layer: polars only (no torch, no textual, nothing of phenomon's above it). Modules by job:
`segments` (names, listing, cover, atomic writes), `manifest` (the one validated reading of run.json, safe names,
process identity), `stop` (stop files; a signal only to a proven owner), `writer` (RunWriter, new_manifest), `runs` (RunInfo,
liveness, listing, lookup), `reader` (rows, incremental reads, wide frames), `queries` (configuration identity,
labels, EMA, thinning, mean with band, sweep points), `text` (headline, "–"), `axis` (typed x axes).
Every public name is re-exported here: `from phenomon import store; store.X`.
"""

from __future__ import annotations

from phenomon.store.reader import IncrementalReader, read_metrics, read_rows, wide
from phenomon.store.manifest import (PID_MAX, check_manifest, confined, proc_start, read_manifest, safe_name, slug,
                                     valid_pid)
from phenomon.store.runs import (DEAD_AFTER_S, LAUNCHES_DIR, OBSERVER, SKEW_S, HeartbeatObserver, RunInfo, find_run,
                                 forget_launch, launched_run, list_runs, mark_ended, record_launch, run_info,
                                 same_process)
from phenomon.store.stop import request_stop, signal_fallback, stop_run
from phenomon.store.queries import (BASELINE, by_configuration, config_id, config_key, ema, label_of, mean_band,
                                    metric_over_steps, seeds_over_steps, sweep_points, thin, toggles_label,
                                    toggles_label_expr)
from phenomon.store.segments import (ROW_SCHEMA, StoreError, StoreWarning, atomic_path, atomic_write_bytes,
                                     atomic_write_json, cover, default_root, empty_rows, list_segments,
                                     read_segment, seg_name)
from phenomon.store.text import MISSING, fmt_value, headline
from phenomon.store.writer import (FLUSH_EVERY_S, HEARTBEAT_EVERY_S, MERGE_AT, OWNER_FILE, SCHEMA_VERSION, STATUSES,
                                   STOP_FILE, RunWriter, StoreWriteError, create_run_dir, new_manifest)

__all__ = [
    "BASELINE", "DEAD_AFTER_S", "FLUSH_EVERY_S", "HEARTBEAT_EVERY_S", "MERGE_AT", "MISSING", "ROW_SCHEMA",
    "SCHEMA_VERSION", "STATUSES", "IncrementalReader", "RunInfo", "RunWriter", "StoreError", "StoreWarning",
    "atomic_path", "atomic_write_bytes", "atomic_write_json", "by_configuration", "config_id", "config_key",
    "cover", "default_root", "ema", "empty_rows", "find_run", "fmt_value", "headline", "label_of", "list_runs",
    "list_segments", "mean_band", "metric_over_steps", "new_manifest", "read_manifest", "read_metrics",
    "read_rows", "read_segment", "run_info", "seeds_over_steps", "seg_name", "sweep_points", "thin",
    "toggles_label", "toggles_label_expr", "wide",
    "OWNER_FILE", "PID_MAX", "SKEW_S", "STOP_FILE", "StoreWriteError", "check_manifest", "confined",
    "create_run_dir", "proc_start", "request_stop", "safe_name", "same_process", "signal_fallback", "slug",
    "stop_run", "valid_pid", "LAUNCHES_DIR", "OBSERVER", "HeartbeatObserver", "forget_launch", "launched_run",
    "mark_ended", "record_launch",
]
