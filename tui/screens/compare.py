"""The compare screen: train/test accuracy and loss of the compared runs overlaid, signals beneath, one x axis."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Footer, Static

from phenomon import registry, store
from phenomon.config import UsageError
from phenomon.store.axis import Axis, Step
from phenomon.tui import frames, landmarks, wall
from phenomon.tui.messages import Snapshot
from phenomon.tui.watcher import CLOCK
from phenomon.tui.screens.picker import MetricPicker
from phenomon.tui.screens.runs import RunsScreen
from phenomon.tui.widgets.chart import LineChart
from phenomon.tui.widgets.legend import ConfigLegend
from phenomon.tui.widgets.toggles import ToggleBar

PANELS = ("train/acc", "test/acc", "train/loss", "test/loss")
BOOKKEEPING = ("epochs", "epoch", "params", "lr")  # logged, but rarely what a lower panel should show first


def panel_metrics(names: set[str], outcome: str | None = None) -> tuple[str | None, ...]:
    """What the four main panels show: phenomon's train/test accuracy and loss; for other runs their own metrics as
    logged — the phenomenon's `outcome` and its family first (e.g. final/test_error, final/train_error) when it is not
    one of those four, then accuracies in the top row, losses in the bottom one (train first), the rest filling in."""
    if not names or any(n in names for n in PANELS):  # no rows yet: the panels say so rather than vanish
        return PANELS
    own = sorted(n for n in names if n not in ("step", CLOCK) and n.rsplit("/", 1)[-1] not in BOOKKEEPING
                 and not n.startswith(("signal/", "null/", "time/")))
    order = lambda xs: sorted(xs, key=lambda n: (not n.startswith("train"), n))  # noqa: E731
    acc = order([n for n in own if "acc" in n.lower()])
    loss = order([n for n in own if "loss" in n.lower() and n not in acc])
    rest = [n for n in own if n not in acc and n not in loss]
    if outcome is not None and outcome in own:
        head = outcome.rsplit("/", 1)[0] + "/" if "/" in outcome else outcome
        picked = [outcome] + [n for n in own if n != outcome and n.startswith(head)
                              and n.count("/") == outcome.count("/")]
        picked += [n for n in acc + loss + rest if n not in picked]
        return tuple((picked + [None] * 4)[:4])
    top, bottom = acc[:2], loss[:2]
    spare = acc[2:] + loss[2:] + rest
    while len(top) < 2 and spare:
        top.append(spare.pop(0))
    while len(bottom) < 2 and spare:
        bottom.append(spare.pop(0))
    top += [None] * (2 - len(top))
    bottom += [None] * (2 - len(bottom))
    return (top[0], top[1], bottom[0], bottom[1])
def stable_end(lo: float, hi: float, log_x: bool) -> tuple[float, float]:
    """The x range with its end rounded up (1/64 of a decade, or of the span): while runs grow, the axis stays
    put for a while and new rows land in pixels already drawn, so most live refreshes repaint nothing."""
    if log_x:
        return lo, float(10 ** (math.ceil(math.log10(max(hi, 1.0)) * 64 - 1e-9) / 64))
    q = 2.0 ** math.ceil(math.log2(max(hi - lo, 1e-9) / 64))
    return lo, float(math.ceil(hi / q) * q)


LIVE_EVERY_S = 1.0  # rows streaming in redraw the panels at most this often; a key redraws them at once
LIVE_DUTY = 0.01  # ... and less often when one refresh (series + rasters) costs more than this share of a core
LIVE_MAX_S = 4.0  # ... but at least this often
COMPACT_BELOW = 40  # rows: under this the screen shows the two test panels, taller, and no signal panel
SMOOTHING = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99)
MAX_SIGNALS = 3  # signal panels side by side in the lower row
SIGNAL_IDS = ("chart-signal-1", "chart-signal-2", "chart-signal")  # extras (pinned by +), then the active one


class CompareScreen(Screen):
    """A function of (snapshot, run ids, smoothing, log x, signal index): series are recomputed only when those move."""

    BINDINGS = [
        Binding("r", "app.show_runs", "Runs"),
        Binding("left", "cursor(-1)", "Cursor ←", show=False),
        Binding("right", "cursor(1)", "Cursor →", show=False),
        Binding("shift+left", "cursor(-10)", "Cursor ←←", show=False),
        Binding("shift+right", "cursor(10)", "Cursor →→", show=False),
        Binding("escape", "clear_cursor", "Clear cursor", show=False),
        # the status line names [ ], l and y with their state: the footer keeps room for the app's keys (S, v)
        Binding("left_square_bracket", "smooth(-1)", "Less smoothing", show=False),
        Binding("right_square_bracket", "smooth(1)", "More smoothing", show=False),
        Binding("l", "toggle_log", "Log x", show=False),
        Binding("y", "toggle_log_y", "Log y", show=False),
        Binding("g", "next_signal(1)", "Next metric", show=False),  # the signal panel's title says g/G /
        Binding("G", "next_signal(-1)", "Previous metric", show=False),
        Binding("slash", "pick", "Find metric", key_display="/"),
        Binding("plus", "more_signals(1)", "Pin panel, add one", key_display="+", show=False),
        Binding("minus", "more_signals(-1)", "One signal panel less", key_display="-", show=False),
        Binding("X", "cycle_x", "x axis"),
        Binding("full_stop", "focus_config(1)", "Focus next configuration", key_display=".", show=False),
        Binding("comma", "focus_config(-1)", "Focus previous configuration", key_display=",", show=False),
        Binding("h", "hide", "Hide/show"),
        Binding("H", "show_all", "Show all", show=False),
    ]

    # vars: a screen-level reactive would repaint every panel on each snapshot; each chart repaints itself
    snapshot: var[Snapshot | None] = var(None)
    run_ids: var[tuple[str, ...]] = var(())
    smoothing = var(0)
    log_x = var(True)
    log_y = var(False)
    signal_index = var(0)
    cursor_pos: var[float | None] = var(None)  # 0..1 across the shared x axis
    pinned: var[tuple[str, ...]] = var(())  # signal panels kept beside the active one (`+` pins, `-` unpins)
    hidden: var[frozenset[str]] = var(frozenset())  # configurations not drawn
    focus_key: var[str | None] = var(None)  # the legend's focused configuration (`.`/`,` move it, `h` hides it)
    x_mode = var(0)  # index into the phenomenon's x axes: its own first, then steps (and back)

    def compose(self) -> ComposeResult:
        yield Static(id="compare-status")
        with Grid(id="charts"):
            for name in PANELS:
                yield LineChart(name, id=f"chart-{name.replace('/', '-')}",
                                classes="panel" + (" train" if name.startswith("train/") else ""))
        with Horizontal(id="signals"):
            for cid in SIGNAL_IDS:
                yield LineChart("signal", id=cid, classes="panel signal")
        yield ConfigLegend(id="compare-legend")
        yield ToggleBar(id="toggles")
        yield Footer()

    def on_mount(self) -> None:
        self._keys: dict[str, tuple] = {}  # chart id -> the inputs its series were computed from
        self._cache: dict = {}
        self._busy = False  # a series worker is running; a change meanwhile is picked up when it ends
        self._again = False
        self._view: tuple = ()  # what the user chose when panels were last computed (runs, smoothing, ...)
        self._computed_at = 0.0
        self._compute_s = 0.0  # CPU seconds the last computation took in its worker (series and landmarks)
        self._deferred = None  # a timer for rows that came within LIVE_EVERY_S of the last computation
        self._landmarks = landmarks.Landmarks()
        self._verdicts = landmarks.Judged()  # a run is judged again only on new rows, a live one in its turn
        self._landmarks_lock = threading.Lock()  # one landmarks computation at a time: they share the verdicts
        self._signals: list[str] = []  # the picker's list as last computed
        self.set_class(self.app.size.height < COMPACT_BELOW, "-compact")  # the first panels already fit (no resize yet)
        self._update()

    def watch_snapshot(self) -> None:
        self._update()

    watch_run_ids = watch_smoothing = watch_log_x = watch_signal_index = watch_pinned = watch_x_mode = watch_snapshot

    def watch_log_y(self, log_y: bool) -> None:
        for chart in self.query(LineChart):  # a redraw, not a recomputation
            chart.log_y = log_y
        if self.is_mounted and self.snapshot is not None:
            self._status(*self._runs()[1:])

    def on_screen_resume(self) -> None:
        self._update()  # changes that came while hidden

    def on_resize(self) -> None:
        self.app.check_size()
        self.set_class(self.size.height < COMPACT_BELOW, "-compact")
        self._keys.clear()
        self._update()

    @property
    def compact(self) -> bool:
        return self.has_class("-compact")

    # series -----------------------------------------------------------------------------------------
    def _runs(self) -> tuple[dict, dict, Axis]:
        snap = self.snapshot
        if snap is None:
            return {}, {}, Step()
        runs = [r for r in snap.runs if r.id in self.run_ids]
        manifests = {r.id: r.manifest for r in runs}
        axes = self.x_axes(runs[0].phenomenon if runs else None)
        x_axis: Axis = axes[self.x_mode % len(axes)]
        return {r.id: snap.frames[r.id] for r in runs if r.id in snap.frames}, manifests, x_axis

    @staticmethod
    def x_axes(phenomenon: str | None) -> tuple[Axis, ...]:
        """What `X` cycles through: the phenomenon's own axis first (a sweep field, pruning rounds), then steps,
        then wall time."""
        try:
            own = registry.get(phenomenon).x_axis if phenomenon else Step()
        except UsageError:
            own = Step()
        return (own, wall.WallTime()) if isinstance(own, Step) else (own, Step(), wall.WallTime())

    @staticmethod
    def outcome(manifests) -> str | None:
        """The phenomenon's outcome metric (of the first run compared), None for a foreign run."""
        for m in (manifests or {}).values():
            try:
                return registry.get(m.get("phenomenon", "")).outcome
            except UsageError:
                return None
        return None

    def signal_names(self, fr, manifests=None, slots: tuple | None = None) -> list[str]:
        """The metric picker's list: the phenomenon's outcome first (when not a main panel), then the model's other
        metrics, the signals, the nulls, and bookkeeping (epochs, params, timings) last. `slots`: what the four main
        panels show, when the caller has it already."""
        names = set().union(*(set(f) for f in fr.values())) if fr else set()
        outcome = self.outcome(manifests)
        shown = set(slots if slots is not None else panel_metrics(names, outcome))
        rest = sorted(n for n in names if n not in shown and n not in ("step", CLOCK) and n != outcome)
        late = [n for n in rest if n.rsplit("/", 1)[-1] in BOOKKEEPING or n.startswith("time/")]  # es_only/epochs too
        # the model's own metrics before the explanation signals, the nulls after them, bookkeeping last
        rank = lambda n: 2 if n.startswith("null/") else 1 if n.startswith("signal/") else 0  # noqa: E731
        middle = sorted((n for n in rest if n not in late), key=lambda n: (rank(n), n))
        return [n for n in (outcome,) if n in names and n not in shown] + middle + late

    def _update(self) -> None:
        """Hidden, nothing is computed (resume catches up); shown, only the panels whose inputs moved are."""
        if not self.is_mounted or self.snapshot is None or not self.is_current:
            return
        fr, manifests, x_axis = self._runs()
        try:
            self._schedule(fr, manifests, x_axis)  # first: the series worker starts while the status line is drawn
        finally:
            self._status(manifests, x_axis)

    def _schedule(self, fr, manifests, x_axis) -> None:
        if self._busy:
            self._again = True
            return
        snap = self.snapshot
        names = set().union(*(set(f) for f in fr.values())) if fr else set()
        slots = panel_metrics(names, self.outcome(manifests))  # the four panels keep their ids; what each shows
        # follows the runs' metrics
        signals = self.signal_names(fr, manifests, slots)
        sig = signals[self.signal_index % len(signals)] if signals else None
        self._signals = signals
        self._picked = (self.signal_index % len(signals) + 1, len(signals)) if signals else None
        pins = [p for p in self.pinned if p in signals and p != sig][: MAX_SIGNALS - 1]
        lower = dict(zip(SIGNAL_IDS[MAX_SIGNALS - 1 - len(pins):], [*pins, sig]))
        for cid in SIGNAL_IDS:
            self.query_one(f"#{cid}").display = cid in lower and sig is not None and not self.compact
        self.query_one("#signals").display = sig is not None and not self.compact
        width = max(20, self.size.width)
        runs = tuple((rid, snap.rows.get(rid), (snap.run(rid) or None) and snap.run(rid).state) for rid in manifests)
        for slot, name in zip(PANELS, slots):
            self.query_one(f"#chart-{slot.replace('/', '-')}").display = name is not None and not (
                self.compact and slot.startswith("train/"))
        wanted = {f"chart-{slot.replace('/', '-')}": name for slot, name in zip(PANELS, slots)
                  if name is not None and not (self.compact and slot.startswith("train/"))}  # hidden: nothing computed
        if sig is not None and not self.compact:
            wanted.update(lower)
        jobs = {}
        for cid, name in wanted.items():
            key = (name, runs, self.smoothing, self.log_x, width, x_axis)
            if self._keys.get(cid) != key:
                jobs[cid] = (name, key)
        if not jobs:
            return
        view = (tuple(manifests), tuple(wanted.items()), self.smoothing, self.log_x, width, x_axis)
        cost = self._compute_s + sum(getattr(c, "build_s", 0.0) for c in self.query(LineChart) if c.display)
        wait = self._computed_at + min(LIVE_MAX_S, max(LIVE_EVERY_S, cost / LIVE_DUTY)) - time.monotonic()
        if view == self._view and wait > 0:  # only new rows: coalesce them
            if self._deferred is None:
                self._deferred = self.set_timer(wait, self._run_deferred)
            return
        progressive = view != self._view  # a key: each panel as soon as it is ready; streamed rows: one redraw
        self._view, self._computed_at, self._busy = view, time.monotonic(), True
        states = {r.id: r.state for r in snap.runs if r.id in manifests}
        self._compute(progressive, jobs, fr, manifests, x_axis, SMOOTHING[self.smoothing], width, self.log_x,
                      dict(snap.rows), states)

    def _run_deferred(self) -> None:
        self._deferred = None
        self._update()

    # a description: without one Textual writes repr() of every argument, here every run's frames, on each call
    @work(thread=True, group="series", exit_on_error=False, description="compare panels")
    def _compute(self, progressive, jobs, fr, manifests, x_axis, alpha, width, log_x, rows, states) -> None:
        """Polars off the UI thread: a key is acknowledged (status line) at once, the panels follow. Each panel
        applied alone redraws every chart (the shared x range moves), so streamed rows are applied all at once."""
        out = {}
        t = time.thread_time()
        try:
            if len(self._cache) > 2048:  # keys of old row counts and smoothings pile up; pools are rebuilt
                self._cache.clear()
            for cid, (name, key) in jobs.items():
                if isinstance(x_axis, (Step, wall.WallTime)):
                    series = frames.step_series(fr, manifests, name, alpha=alpha, buckets=width, log_x=log_x,
                                                rows=rows, cache=self._cache, states=states)
                    if isinstance(x_axis, wall.WallTime):
                        series = wall.over_wall_time(series, fr, manifests)
                else:
                    series = frames.sweep_series(fr, manifests, name, x_axis)
                out[cid] = (name, key, tuple(series), bool(manifests))
                if progressive:
                    self.app.call_from_thread(self._apply, out, x_axis, log_x, False)
                    out = {}
        finally:
            self.app.call_from_thread(self._apply, out, x_axis, log_x, True)
        # after the panels are applied (and the screen free to start the next computation, e.g. for a key): the
        # landmarks, one computation at a time (the verdict cache is shared)
        try:
            with self._landmarks_lock:
                lm = landmarks.for_runs(fr, manifests, x_axis, self._verdicts,
                                        {r for r, s in states.items() if s in ("running", "skew")})
            self.app.call_from_thread(self._apply_landmarks, lm)
        finally:
            self._compute_s = time.thread_time() - t

    def _apply(self, out: dict, x_axis: Axis, log_x: bool, done: bool) -> None:
        if done:
            self._busy = False
        for cid, (name, key, series, any_runs) in out.items():
            chart = self.query_one(f"#{cid}", LineChart)
            with chart.prevent(LineChart.CursorMoved):
                title = name if isinstance(x_axis, Step) else f"{name} vs {x_axis.label}"
                if cid == "chart-signal" and getattr(self, "_picked", None):
                    title += f"  ({self._picked[0]}/{self._picked[1]}, g/G /)"
                chart.title = title
                chart.log_y = self.log_y
                chart.hidden, chart.focus_key = self.hidden, self.focus_key
                chart.log_x = log_x
                chart.series = series
                chart.empty_text = f"no {name} rows yet" if any_runs else "no runs selected"
            self._keys[cid] = key
        self._share_x(log_x)
        self._legend()
        if done and self._again:
            self._again = False
            self._update()

    def _share_x(self, log_x: bool | None = None) -> None:
        log_x = self.log_x if log_x is None else log_x
        charts = [c for c in self.query(LineChart) if c.display]
        ranges = [r for c in charts if (r := c.data_x_range()) is not None]
        shared = (min(r[0] for r in ranges), max(r[1] for r in ranges)) if ranges else None
        if shared is not None and self._live():
            shared = stable_end(*shared, log_x)
        for chart in self.query(LineChart):
            chart.x_range = shared
        self._place_cursor()

    def _apply_landmarks(self, lm: landmarks.Landmarks) -> None:
        self._landmarks = lm
        for chart in self.query(LineChart):
            chart.markers = lm.markers
        self._legend()
        if self.snapshot is not None:
            self._status(*self._runs()[1:])

    # configurations: the shared legend, focus and hiding -----------------------------------------------
    def configs(self) -> list[tuple[str, str, int]]:
        """(key, label, colour index) of every configuration drawn in any panel, in colour order."""
        seen: dict[str, tuple[str, str, int]] = {}
        for chart in (c for c in self.query(LineChart) if c.display):  # a hidden panel may hold another axis' series
            for s in chart.series:
                if s.key and s.key not in seen:
                    seen[s.key] = (s.key, s.label, s.color)
        return sorted(seen.values(), key=lambda c: c[2])

    def _legend(self) -> None:
        """Every configuration with its colour and line style (panels' own legends may run out of room)."""
        cfgs = self.configs()
        if self.focus_key not in {k for k, _, _ in cfgs}:
            self.focus_key = cfgs[0][0] if cfgs else None
        legend = self.query_one("#compare-legend", ConfigLegend)
        legend.configs, legend.focus_key, legend.hidden = tuple(cfgs), self.focus_key, self.hidden
        many = len([c for c in cfgs if c[0] not in self.hidden]) > LineChart.MARK_ALL
        legend.note = (f"┊ {self._landmarks.legend}{' (of ▸ only: h hides others)' if many else ''}"
                       if self._landmarks.markers else "")

    def watch_hidden(self) -> None:
        for chart in self.query(LineChart):
            chart.hidden = self.hidden
        if self.is_mounted:
            self._share_x()
            self._legend()

    def watch_focus_key(self) -> None:
        for chart in self.query(LineChart):
            chart.focus_key = self.focus_key
        if self.is_mounted and self.snapshot is not None:
            self._legend()
            self._status(*self._runs()[1:])

    def action_focus_config(self, step: int) -> None:
        """`.`/`,`: the next configuration in the legend; it becomes the app's focus too (toggle keys, s, n, k)."""
        keys = [k for k, _, _ in self.configs()]
        if keys:
            i = keys.index(self.focus_key) if self.focus_key in keys else -step
            self.focus_key = keys[(i + step) % len(keys)]
            _, manifests, _ = self._runs()
            groups = store.by_configuration(manifests)
            rid = next(iter(groups.get(self.focus_key) or [r for r, m in manifests.items()
                                                           if store.label_of(m) == self.focus_key]), None)
            if rid is not None:
                self.post_message(RunsScreen.Focused(rid))

    def action_hide(self) -> None:
        if self.focus_key is not None:
            self.hidden = self.hidden ^ {self.focus_key}

    def action_show_all(self) -> None:
        self.hidden = frozenset()

    def _live(self) -> bool:
        snap = self.snapshot
        return snap is not None and any(r.state == "running" for r in snap.runs if r.id in self.run_ids)

    def _status(self, manifests, x_axis) -> None:
        groups = sorted({m.get("group", "?") for m in manifests.values()})
        alpha = SMOOTHING[self.smoothing]
        group = f"group {escape(groups[0])}" if len(groups) == 1 else f"{len(groups)} groups" if groups else "group -"
        text = (f"comparing {len(manifests)} run(s) · {group} · x: {x_axis.label} ({'log' if self.log_x else 'linear'}"
                f", l; X) · y {'log' if self.log_y else 'linear'} (y) · EMA {alpha:g} ([ ])"
                + ("" if self.compact else " · ←/→ cursor, click a chart"))
        lm = self._landmarks
        label = next((lab for k, lab, _ in self.configs() if k == self.focus_key), None)
        if label is not None:
            verdicts = lm.verdicts or {}
            verdict = verdicts.get(self.focus_key)
            if verdict is None:  # a sweep seen over steps: its configurations are widths, its verdict is per label
                rids = store.by_configuration(manifests).get(self.focus_key) or ()
                verdict = next((verdicts[lab] for r in rids if (lab := store.label_of(manifests[r])) in verdicts), None)
            verdict = verdict or "no verdict yet"
            text += f"\n▸ [b]{escape(label)}[/]: {escape(verdict)}"
        status = self.query_one("#compare-status", Static)
        if status.content != text:  # an update re-lays out the whole screen: not on every snapshot
            status.update(text)

    # cursor -----------------------------------------------------------------------------------------
    def _place_cursor(self) -> None:
        charts = list(self.query(LineChart))
        xr = next((c.x_range for c in charts if c.x_range), None)
        x = None
        if xr is not None and self.cursor_pos is not None:
            a, b = xr
            if self.log_x:
                a, b = np.log10(max(a, 1.0)), np.log10(max(b, 1.0))
                x = float(10 ** (a + (b - a) * self.cursor_pos))
            else:
                x = a + (b - a) * self.cursor_pos
        for c in charts:
            c.cursor = x

    def watch_cursor_pos(self) -> None:
        if self.is_mounted:
            self._place_cursor()

    def action_cursor(self, delta: int) -> None:
        pos = 1.0 if self.cursor_pos is None else self.cursor_pos
        self.cursor_pos = min(1.0, max(0.0, pos + delta / 100))

    @on(LineChart.CursorMoved)
    def _clicked(self, event: LineChart.CursorMoved) -> None:
        xr = next((c.x_range for c in self.query(LineChart) if c.x_range), None)
        if xr is None:
            return
        a, b, x = xr[0], xr[1], event.x
        if self.log_x:
            a, b, x = (float(np.log10(max(v, 1.0))) for v in (a, b, x))
        self.cursor_pos = (x - a) / (b - a) if b > a else 0.0

    def action_clear_cursor(self) -> None:
        self.cursor_pos = None

    def action_smooth(self, delta: int) -> None:
        self.smoothing = min(len(SMOOTHING) - 1, max(0, self.smoothing + delta))

    def action_toggle_log(self) -> None:
        self.log_x = not self.log_x

    def action_next_signal(self, step: int = 1) -> None:
        self.signal_index += step

    def action_pick(self) -> None:
        """`/`: a searchable list of every metric; the chosen one replaces the active signal panel."""
        names = list(self._signals)
        if not names:
            self.notify("no other metrics logged yet")
            return
        current = names[self.signal_index % len(names)]

        def chosen(name: str | None) -> None:
            if name in self._signals:
                self.signal_index = self._signals.index(name)

        self.app.push_screen(MetricPicker(names, current), chosen)

    def action_more_signals(self, step: int) -> None:
        """`+` pins the active signal panel and shows the next metric beside it; `-` drops the last pinned one."""
        names = list(self._signals)
        if not names:
            return
        current = names[self.signal_index % len(names)]
        if step > 0 and len(self.pinned) < MAX_SIGNALS - 1 and len(names) > len(self.pinned) + 1:
            self.pinned = (*self.pinned, current)
            shown = set(self.pinned)
            nxt = next(i for k in range(1, len(names) + 1)
                       if names[(i := (self.signal_index + k) % len(names))] not in shown)
            self.signal_index = nxt
        elif step < 0 and self.pinned:
            *rest, last = self.pinned
            self.pinned = tuple(rest)
            if last in names:
                self.signal_index = names.index(last)

    def action_cycle_x(self) -> None:
        runs = [r for r in self.snapshot.runs if r.id in self.run_ids] if self.snapshot else []
        axes = self.x_axes(runs[0].phenomenon if runs else None)
        if len(axes) < 2:
            self.notify(f"x: {axes[0].label} is this phenomenon's only axis")
            return
        self.x_mode = (self.x_mode + 1) % len(axes)

    def action_toggle_log_y(self) -> None:
        self.log_y = not self.log_y
