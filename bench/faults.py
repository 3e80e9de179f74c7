"""Faults the run store must survive: random SIGKILLs of a writer, and a soak of concurrent writers and readers.

    .venv/bin/python bench/faults.py                       # 50 kills, 10 aimed at merges, a 60 s soak (6 writers, 2 readers)
    .venv/bin/python bench/faults.py --kills 10 --merge-kills 3 --soak 15  # shorter

Kills: a child process logs rows (10 per call, ~1 ms apart) through a RunWriter and side-logs, unbuffered, every
`log` call, every completed flush and every merge's start and end; it is SIGKILLed at a random moment (it merges
every 4 segments, so kills land in merges too). Then the run directory is read: rows lost = rows a completed flush had written that cannot be read;
torn reads = reads that raised or reported a problem; seconds lost = wall time between the last readable row and the
last logged one (by design at most about one flush interval, FLUSH_EVERY_S).

Soak: writers log rows whose value is their sequence number while readers poll every run with an IncrementalReader;
at the end each reader must have read every row of every run exactly once.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS_PER_CALL = 10


def child_writer(run_dir: str, side: str, seconds: float, merge_at: int) -> None:
    """Log rows until killed (or `seconds` pass, then close), side-logging each call ("L rows wall"), each flush
    ("F rows") and each merge ("M 1" ... "M 0")."""
    from phenomon import store
    from phenomon.store import writer as W

    W.MERGE_AT = merge_at
    fd = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_APPEND)

    class Logged(store.RunWriter):
        compactions = 0

        def flush(self) -> None:
            super().flush()
            os.write(fd, f"F {self._seq}\n".encode())

        def compact(self, keep_last: int = 0) -> None:
            before = len(store.list_segments(self.dir))
            os.write(fd, b"M 1\n")  # inside a merge: a kill now lands in it
            super().compact(keep_last)
            os.write(fd, b"M 0\n")
            if len(store.list_segments(self.dir)) < before:
                Logged.compactions += 1

    w = Logged(Path(run_dir), store.new_manifest(Path(run_dir).name, "bench"))
    n, end = 0, time.time() + seconds
    while time.time() < end:
        w.log({f"m{i}": float(n + i) for i in range(ROWS_PER_CALL)}, step=n)
        n += ROWS_PER_CALL
        os.write(fd, f"L {n} {time.time():.6f}\n".encode())
        time.sleep(0.001)
    w.close("finished")
    os.write(fd, f"C {Logged.compactions}\n".encode())


def child_reader(root: str, seconds: float) -> None:
    """Poll every run under `root` until `seconds` pass and every run has ended; print what was read per run."""
    from phenomon import store

    readers: dict[str, store.IncrementalReader] = {}
    values: dict[str, list[float]] = {}
    torn = polls = 0
    end = time.time() + seconds
    while True:
        runs = store.list_runs(Path(root))
        for r in runs:
            rd = readers.setdefault(r.id, store.IncrementalReader(r.dir))
            try:
                df = rd.poll()
            except Exception:  # noqa: BLE001 - counted: a torn read
                torn += 1
                continue
            values.setdefault(r.id, []).extend(df["value"].to_list())
        polls += 1
        done = runs and all(r.state == "finished" for r in runs)
        if time.time() > end and done:
            break
        time.sleep(0.05)
    torn += sum(len(rd.problems) for rd in readers.values())
    print(json.dumps({"values": values, "torn": torn, "polls": polls}))


def _in_merge(side: Path) -> bool:
    ms = [line for line in side.read_text().splitlines() if line.startswith("M ")]
    return bool(ms) and ms[-1] == "M 1"


def kills(n: int, merge_at: int, seed: int, at_merge: bool = False) -> dict:
    """`n` SIGKILLs at random moments, or (`at_merge`) as soon as the side log shows a merge under way."""
    from phenomon import store

    rng = random.Random(seed)
    lost, torn, secs, unflushed, in_merge = [], 0, [], [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(n):
            d, side = Path(tmp) / f"k{k}", Path(tmp) / f"k{k}.side"
            p = subprocess.Popen([sys.executable, __file__, "--child-writer", str(d), str(side), "600",
                                  str(merge_at)])
            deadline = time.time() + 60
            while not side.exists() and time.time() < deadline:  # started logging
                time.sleep(0.02)
            if at_merge:
                time.sleep(rng.uniform(0.0, 2.0))
                while not _in_merge(side) and time.time() < deadline:
                    time.sleep(0.0005)
            else:
                time.sleep(rng.uniform(0.1, 3.0))
            p.send_signal(signal.SIGKILL)
            p.wait()
            logged, flushed, last_wall, merging = 0, 0, None, False
            for line in side.read_text().splitlines():
                parts = line.split()
                if parts[0] == "M" and len(parts) == 2:
                    merging = parts[1] == "1"
                elif parts[0] == "L" and len(parts) == 3:
                    logged, last_wall = int(parts[1]), float(parts[2])
                elif parts[0] == "F" and len(parts) == 2:
                    flushed = max(flushed, int(parts[1]))
            in_merge += merging
            problems: list[str] = []
            try:
                rows = store.read_metrics(d, problems=problems)
            except Exception:  # noqa: BLE001 - counted
                torn += 1
                continue
            torn += len(problems)
            vals = rows["value"].to_list()
            if len(set(vals)) != len(vals) or vals != [float(i) for i in range(len(vals))]:
                torn += 1
            lost.append(max(0, flushed - rows.height))
            unflushed.append(logged - rows.height)
            if last_wall is not None:
                walls = rows["wall"]
                secs.append(max(0.0, last_wall - (walls.max() if rows.height else last_wall)))
    return {"kills": n, "rows_lost": sum(lost), "torn_reads": torn, "kills_during_merge_tmp": in_merge,
            "unflushed_rows_median": statistics.median(unflushed) if unflushed else 0,
            "seconds_lost_median": round(statistics.median(secs), 3) if secs else None,
            "seconds_lost_max": round(max(secs), 3) if secs else None}


def soak(writers: int, readers: int, seconds: float, merge_at: int) -> dict:
    from phenomon import store

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        root.mkdir()
        ws = [subprocess.Popen([sys.executable, __file__, "--child-writer", str(root / f"w{i}"),
                                str(Path(tmp) / f"w{i}.side"), str(seconds), str(merge_at)]) for i in range(writers)]
        rs = [subprocess.Popen([sys.executable, __file__, "--child-reader", str(root), str(seconds)],
                               stdout=subprocess.PIPE, text=True) for _ in range(readers)]
        for w in ws:
            w.wait()
        outs = [json.loads(r.communicate(timeout=seconds + 300)[0]) for r in rs]
        written = {r.id: r.manifest["rows"] for r in store.list_runs(root)}
        compactions = sum(int(line.split()[1]) for i in range(writers)
                          for line in (Path(tmp) / f"w{i}.side").read_text().splitlines() if line.startswith("C "))
    dup = missing = read = 0
    for o in outs:
        for rid, n in written.items():
            vals = o["values"].get(rid, [])
            read += len(vals)
            dup += len(vals) - len(set(vals))
            missing += n - len(set(vals))
    return {"writers": writers, "readers": readers, "seconds": seconds, "rows_written": sum(written.values()),
            "rows_read": read, "duplicates": dup, "missing": missing,
            "torn_reads": sum(o["torn"] for o in outs), "compactions": compactions}


def main() -> None:
    if sys.argv[1:2] == ["--child-writer"]:
        return child_writer(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
    if sys.argv[1:2] == ["--child-reader"]:
        return child_reader(sys.argv[2], float(sys.argv[3]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=50, help="random SIGKILLs of a writer (default 50)")
    ap.add_argument("--merge-kills", type=int, default=10, help="SIGKILLs aimed at a merge under way (default 10)")
    ap.add_argument("--soak", type=float, default=60.0, help="seconds of the writers-and-readers soak (default 60)")
    ap.add_argument("--writers", type=int, default=6)
    ap.add_argument("--readers", type=int, default=2)
    ap.add_argument("--merge-at", type=int, default=4, help="merge once this many segments exist (store: 16)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.kills:
        r = kills(a.kills, a.merge_at, a.seed)
        print(f"kills: {r['kills']} SIGKILLs, rows lost (flushed, unreadable) {r['rows_lost']}, torn reads "
              f"{r['torn_reads']}, kills inside a merge {r['kills_during_merge_tmp']}; "
              f"unflushed rows at a kill: median {r['unflushed_rows_median']}; seconds of rows lost at a kill: "
              f"median {r['seconds_lost_median']}, max {r['seconds_lost_max']}")
    if a.merge_kills:
        r = kills(a.merge_kills, a.merge_at, a.seed + 1, at_merge=True)
        print(f"merge kills: {r['kills']} SIGKILLs aimed at merges ({r['kills_during_merge_tmp']} landed inside one), "
              f"rows lost {r['rows_lost']}, torn reads {r['torn_reads']}; seconds of rows lost at a kill: median "
              f"{r['seconds_lost_median']}, max {r['seconds_lost_max']}")
    if a.soak:
        r = soak(a.writers, a.readers, a.soak, a.merge_at)
        print(f"soak: {r['writers']} writers, {r['readers']} readers, {r['seconds']:.0f} s: {r['rows_written']:,} rows "
              f"written, {r['rows_read']:,} read ({r['readers']} × each), duplicates {r['duplicates']}, missing "
              f"{r['missing']}, torn reads {r['torn_reads']}, compactions {r['compactions']}")


if __name__ == "__main__":
    main()
