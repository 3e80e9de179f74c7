"""The compare screen: train/test accuracy and loss of the compared runs overlaid, signals beneath, one x axis."""

from __future__ import annotations

import numpy as np
from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Footer, Static

from phenomon import registry
from phenomon.config import UsageError
from phenomon.store.axis import Axis, Step
from phenomon.tui import frames
from phenomon.tui.messages import Snapshot
from phenomon.tui.widgets.chart import LineChart
from phenomon.tui.widgets.toggles import ToggleBar

PANELS = ("train/acc", "test/acc", "train/loss", "test/loss")
SMOOTHING = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99)


class CompareScreen(Screen):
    """A function of (snapshot, run ids, smoothing, log x, signal index): series are recomputed only when those move."""

    BINDINGS = [
        Binding("r", "app.show_runs", "Runs"),
        Binding("left", "cursor(-1)", "Cursor ←", show=False),
        Binding("right", "cursor(1)", "Cursor →", show=False),
        Binding("shift+left", "cursor(-10)", "Cursor ←←", show=False),
        Binding("shift+right", "cursor(10)", "Cursor →→", show=False),
        Binding("left_square_bracket", "smooth(-1)", "Less smoothing"),
        Binding("right_square_bracket", "smooth(1)", "More smoothing"),
        Binding("l", "toggle_log", "Log x"),
        Binding("g", "next_signal", "Next signal"),
    ]

    # vars: a screen-level reactive would repaint every panel on each snapshot; each chart repaints itself
    snapshot: var[Snapshot | None] = var(None)
    run_ids: var[tuple[str, ...]] = var(())
    smoothing = var(0)
    log_x = var(True)
    signal_index = var(0)
    cursor_pos: var[float | None] = var(None)  # 0..1 across the shared x axis

    def compose(self) -> ComposeResult:
        yield Static(id="compare-status")
        with Grid(id="charts"):
            for name in PANELS:
                yield LineChart(name, id=f"chart-{name.replace('/', '-')}", classes="panel")
        yield LineChart("signal", id="chart-signal", classes="panel")
        yield ToggleBar(id="toggles")
        yield Footer()

    def on_mount(self) -> None:
        self._key = None
        self._cache: dict = {}
        self._update()

    def watch_snapshot(self) -> None:
        self._update()

    watch_run_ids = watch_smoothing = watch_log_x = watch_signal_index = watch_snapshot

    def on_resize(self) -> None:
        self.app.check_size()
        self._key = None
        self._update()

    # series -----------------------------------------------------------------------------------------
    def _runs(self) -> tuple[dict, dict, Axis]:
        snap = self.snapshot
        if snap is None:
            return {}, {}, Step()
        runs = [r for r in snap.runs if r.id in self.run_ids]
        manifests = {r.id: r.manifest for r in runs}
        x_axis: Axis = Step()
        if runs:
            try:
                x_axis = registry.get(runs[0].phenomenon).x_axis
            except UsageError:
                pass
        return {r.id: snap.frames[r.id] for r in runs if r.id in snap.frames}, manifests, x_axis

    def signal_names(self, fr) -> list[str]:
        names = set()
        for f in fr.values():
            names |= set(f)
        return sorted(n for n in names if n not in PANELS and n != "step")

    def _update(self) -> None:
        if not self.is_mounted or self.snapshot is None:
            return
        fr, manifests, x_axis = self._runs()
        snap = self.snapshot
        width = max(20, self.size.width)
        key = (tuple((rid, snap.rows.get(rid), (snap.run(rid) or None) and snap.run(rid).state) for rid in manifests),
               self.smoothing, self.log_x, self.signal_index, width, x_axis)
        if key != self._key:
            self._key = key
            self._recompute(fr, manifests, x_axis, width)
        self._status(manifests, x_axis)

    def _recompute(self, fr, manifests, x_axis, width) -> None:
        alpha = SMOOTHING[self.smoothing]
        old, cache = self._cache, {}
        self._cache = cache
        cache.update(old)  # entries of runs that moved on are keyed by old row counts and simply never hit
        if len(cache) > 512:
            cache.clear()
        signals = self.signal_names(fr)
        sig = signals[self.signal_index % len(signals)] if signals else None
        charts = {name: self.query_one(f"#chart-{name.replace('/', '-')}", LineChart) for name in PANELS}
        if sig is not None:
            charts[sig] = self.query_one("#chart-signal", LineChart)
        self.query_one("#chart-signal").display = sig is not None
        for name, chart in charts.items():
            if isinstance(x_axis, Step):
                series = frames.step_series(fr, manifests, name, alpha=alpha, buckets=width, log_x=self.log_x,
                                            rows=dict(self.snapshot.rows), cache=cache)
            else:
                series = frames.sweep_series(fr, manifests, name, x_axis)
            with chart.prevent(LineChart.CursorMoved):
                chart.title = name if isinstance(x_axis, Step) else f"{name} vs {x_axis.label}"
                chart.log_x = self.log_x
                chart.series = tuple(series)
                chart.empty_text = "no runs selected" if not manifests else f"no {name} rows yet"
        ranges = [r for c in charts.values() if (r := c.data_x_range()) is not None]
        shared = (min(r[0] for r in ranges), max(r[1] for r in ranges)) if ranges else None
        for chart in self.query(LineChart):
            chart.x_range = shared
        self._place_cursor()

    def _status(self, manifests, x_axis) -> None:
        groups = sorted({m.get("group", "?") for m in manifests.values()})
        alpha = SMOOTHING[self.smoothing]
        text = (f"comparing {len(manifests)} run(s) · group {escape(', '.join(groups)) or '-'} · x: {x_axis.label}"
                f"{' (log)' if self.log_x else ''} · smoothing EMA {alpha:g} ([ ]) · ←/→ cursor, click a chart")
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

    def action_smooth(self, delta: int) -> None:
        self.smoothing = min(len(SMOOTHING) - 1, max(0, self.smoothing + delta))

    def action_toggle_log(self) -> None:
        self.log_x = not self.log_x

    def action_next_signal(self) -> None:
        self.signal_index += 1
