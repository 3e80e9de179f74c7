"""The monitor measured from outside, as a user meets it: the real `phenomon tui` in a tmux terminal (160×48).

Setup (as bench/tui_bench.py): N grokking runs × M rows, K of them still written by separate writer processes
(4 metrics every 0.1 s, flushed about once a second), and a probe run written by a probe process on request. The app
is started with `python -m phenomon tui --runs DIR` inside a private tmux server; keys go in with `send-keys`, the
screen comes back with `capture-pane -p`. Every window (alternately on the runs table and on the compare screen of
all N runs, 5 configurations × N/5 seeds) measures:

- idle CPU: utime + stime of the app's process (all its threads) from /proc/PID/stat over the idle part of the
  window, as % of one core;
- key → screen: send-keys, then capture-pane every ~5 ms until the screen differs (`ack`: anywhere; `chart`, compare
  only: below the status line, i.e. the panels redrawn);
- flush → visible (runs table): the probe logs a distinctive train/acc = test/acc, flushes, reports the monotonic
  time of the flush; the bench polls until that headline is on screen;
- RSS: VmRSS from /proc/PID/status at the end of the window.

It prints one line per window (the series over uptime), then median and max per screen.

    python bench/monitor_external.py                      # ~3 minutes: 20 runs × 100k rows, 4 live, 20 s windows
    python bench/monitor_external.py --minutes 30 --window 60
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from phenomon import store  # noqa: E402
from phenomon.tui.screens.runs import STATES  # noqa: E402
from tui_bench import WRITER, build  # noqa: E402

PROBE = r"""
import os, sys, time
sys.path.insert(0, {repo!r})
from phenomon import store
d = {d!r}
m = store.read_manifest(d); m.update(status="running", pid=os.getpid(), pid_start=store.proc_start(os.getpid()))
w = store.RunWriter(d, m, background=False)
step = m["progress"]["step"]
print("ready", flush=True)
for line in sys.stdin:
    v = float(line)
    step += 1
    w.log({{"train/acc": v, "test/acc": v, "train/loss": 1.0, "test/loss": 1.0}}, step)
    w.flush()
    w.beat()
    print(time.monotonic(), flush=True)
"""
TICK = os.sysconf("SC_CLK_TCK")


class Term:
    """A private tmux server holding one pane that runs the app."""

    def __init__(self, cmd: str, width: int, height: int) -> None:
        self.sock = f"phenomon-bench-{os.getpid()}"
        self._tmux("new-session", "-d", "-s", "bench", "-x", str(width), "-y", str(height), f"exec {cmd}")
        self.pid = int(self._tmux("display-message", "-p", "-t", "bench", "#{pane_pid}").strip())

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.sock, *args], capture_output=True, text=True, check=True).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "bench")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "bench", *keys)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], capture_output=True)

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15 of stat)

    def threads_s(self) -> dict[str, float]:
        """CPU seconds per thread kind (its name without digits: MainThread's `python`, `polars-`, workers...)."""
        out: dict[str, float] = {}
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            try:
                name = (task / "comm").read_text().strip().rstrip("0123456789-_") or "?"
                f = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[name] = out.get(name, 0.0) + (int(f[11]) + int(f[12])) / TICK
        return out

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def wait_for(self, cond, timeout: float, every: float = 0.005) -> float | None:
        """Poll the screen until cond(screen) holds: the monotonic time it was seen, or None on timeout."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond(self.screen()):
                return time.monotonic()
            time.sleep(every)
        return None


def key_latency(term: Term, key: str, chart_from: int | None) -> tuple[float | None, float | None]:
    """(ms to any change, ms to a change below line `chart_from`) after one key."""
    before = term.screen()
    below = before.splitlines()[chart_from:] if chart_from is not None else None
    t0 = time.monotonic()
    term.keys(key)
    ack = chart = None
    end = t0 + 3.0
    while time.monotonic() < end and (ack is None or (chart_from is not None and chart is None)):
        now = term.screen()
        t = time.monotonic()
        if ack is None and now != before:
            ack = t
        if chart_from is not None and chart is None and now.splitlines()[chart_from:] != below:
            chart = t
        time.sleep(0.005)
    ms = lambda t: None if t is None else 1000 * (t - t0)  # noqa: E731
    return ms(ack), ms(chart)


def flush_latency(term: Term, probe: subprocess.Popen, k: int) -> float | None:
    v = 0.1 + (k % 800) / 1000  # a distinct 3-decimal value per probe
    probe.stdin.write(f"{v}\n")
    probe.stdin.flush()
    flushed = float(probe.stdout.readline())
    text = f"train/acc {v:.3f}  test/acc {v:.3f}"
    seen = term.wait_for(lambda s: text in s, timeout=5.0)
    return None if seen is None else seen - flushed


def med_max(xs: list[float | None], scale: float = 1.0, fmt: str = "{:.0f}") -> str:
    ok = [x * scale for x in xs if x is not None]
    miss = len(xs) - len(ok)
    if not ok:
        return "-" if not xs else f"none of {len(xs)}"
    out = f"{fmt.format(statistics.median(ok))}/{fmt.format(max(ok))}"
    return out + (f" ({miss} timed out)" if miss else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--live", type=int, default=4)
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--window", type=float, default=20.0, help="seconds per window (idle part + keys + probes)")
    ap.add_argument("--keys", type=int, default=6, help="key presses per compare window (runs: 6)")
    ap.add_argument("--probes", type=int, default=4, help="probe flushes per runs-screen window")
    ap.add_argument("--size", default="160x48")
    ap.add_argument("--keep", action="store_true", help="keep the generated runs directory")
    a = ap.parse_args()
    if shutil.which("tmux") is None:
        print("tmux is not installed", file=sys.stderr)
        return 2
    width, height = (int(v) for v in a.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="phenomon-ext-bench-"))
    root = tmp / "runs"
    t = time.perf_counter()
    dirs = build(root, a.runs + 1, a.rows)
    probe_dir = dirs.pop()
    print(f"built {a.runs} runs × {a.rows:,} rows (+ a probe run) in {time.perf_counter() - t:.1f} s under {root}; "
          f"load average {os.getloadavg()[0]:.2f}")
    writers = [subprocess.Popen([sys.executable, "-c", WRITER.format(repo=str(REPO), d=str(d))])
               for d in dirs[: a.live]]
    probe = subprocess.Popen([sys.executable, "-c", PROBE.format(repo=str(REPO), d=str(probe_dir))],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    probe.stdout.readline()
    env = f"PHENOMON_RUNS={root} TERM=xterm-256color"
    term = Term(f"env {env} {sys.executable} -m phenomon tui --runs {root}", width, height)
    started = time.monotonic()
    rows: list[dict] = []
    try:
        shown = term.wait_for(lambda s: f"showing {a.runs + 1} of {a.runs + 1}" in s, timeout=120, every=0.05)
        if shown is None:
            print(term.screen())
            raise SystemExit("the app did not list every run within 120 s")
        print(f"app pid {term.pid}: all {a.runs + 1} runs listed {shown - started:.1f} s after start")
        print(f"{'uptime':>7} {'screen':<8} {'idle CPU %':>10} {'key ack ms med/max':>19} {'chart ms med/max':>17} "
              f"{'flush s med/max':>16} {'RSS MiB':>8}  load")
        n, probes = 0, 0
        while time.monotonic() - started < a.minutes * 60:
            screen = ("runs", "compare")[n % 2]
            term.keys("r" if screen == "runs" else "c")
            time.sleep(2.0)  # settle: the switch and its first redraw are not idle time
            idle = max(2.0, a.window - 2.0 - 0.5 * a.keys - (0.6 * a.probes if screen == "runs" else 0))
            c0, w0, th0 = term.cpu_s(), time.monotonic(), term.threads_s()
            time.sleep(idle)
            cpu = 100 * (term.cpu_s() - c0) / (time.monotonic() - w0)
            th = {k: 100 * (v - th0.get(k, 0.0)) / (time.monotonic() - w0) for k, v in term.threads_s().items()}
            acks, charts = [], []
            # runs: `t` cycles the status filter through its states, so one press per state ends on "all" (the
            # probe listed again, and the row under the cursor one to compare)
            keys = ["t"] * len(STATES) if screen == "runs" else ["]", "["] * (a.keys // 2)
            for key in keys:
                ack, chart = key_latency(term, key, 2 if screen == "compare" else None)
                acks.append(ack)
                charts.append(chart)
                time.sleep(0.4)
            flushes = []
            if screen == "runs":
                time.sleep(0.5)
                for _ in range(a.probes):
                    flushes.append(flush_latency(term, probe, probes))
                    probes += 1
                    time.sleep(0.3)
            row = dict(uptime=time.monotonic() - started, screen=screen, cpu=cpu, threads=th, acks=acks, charts=charts,
                       flushes=flushes, rss=term.rss_mib(), load=os.getloadavg()[0])
            rows.append(row)
            print(f"{row['uptime']:6.0f}s {screen:<8} {cpu:10.1f} {med_max(acks):>19} "
                  f"{med_max(charts) if screen == 'compare' else '':>17} "
                  f"{med_max(flushes, fmt='{:.2f}') if screen == 'runs' else '':>16} {row['rss']:8.0f}  "
                  f"{row['load']:.2f}", flush=True)
            n += 1
    finally:
        term.close()
        probe.terminate()
        for w in writers:
            w.terminate()
        for w in [probe, *writers]:
            w.wait(timeout=10)
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nover {(time.monotonic() - started) / 60:.1f} min of uptime, {a.runs} runs × {a.rows:,} rows, "
          f"{a.live} written; median/max over windows:")
    for screen in ("runs", "compare"):
        rs = [r for r in rows if r["screen"] == screen]
        if not rs:
            continue
        cpu = [r["cpu"] for r in rs]
        kinds = sorted({k for r in rs for k in r["threads"]}, key=lambda k: -sum(r["threads"].get(k, 0) for r in rs))
        split = ", ".join(f"{k} {statistics.median([r['threads'].get(k, 0.0) for r in rs]):.1f}" for k in kinds[:4])
        print(f"  {screen:<8} idle CPU {statistics.median(cpu):.1f}/{max(cpu):.1f} % of a core (by thread: {split}); "
              f"key ack {med_max([x for r in rs for x in r['acks']])} ms"
              + (f"; key → chart {med_max([x for r in rs for x in r['charts']])} ms" if screen == "compare" else "")
              + (f"; flush → visible {med_max([x for r in rs for x in r['flushes']], fmt='{:.2f}')} s"
                 if screen == "runs" else ""))
    rss = [r["rss"] for r in rows]
    if rss:
        later = [r["rss"] for r in rows if r["uptime"] >= rows[-1]["uptime"] / 6] or rss
        print(f"  RSS {rss[0]:.0f} MiB at {rows[0]['uptime']:.0f} s → {rss[-1]:.0f} MiB at {rows[-1]['uptime']:.0f} s "
              f"(from 1/6 of the uptime on: {min(later):.0f}–{max(later):.0f} MiB)")
    print("targets: idle < 3% of a core, key → screen < 50 ms median and < 150 ms max, flush → visible < 0.5 s max, "
          "RSS flat (± 10%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
