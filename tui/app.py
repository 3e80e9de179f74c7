"""The monitor app: watches a runs directory, binds snapshots to the screens, starts paired runs on toggle keys."""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Callable

from rich.markup import escape
from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.reactive import var
from textual.worker import get_current_worker

from phenomon import registry
from phenomon.tui import launches
from phenomon.tui.launch_keys import LaunchKeys
from phenomon.tui.launches import launch
from phenomon.tui.messages import Snapshot, StoreChanged
from phenomon.tui.screens import compare as compare_screen
from phenomon.tui.screens.compare import CompareScreen
from phenomon.tui.screens.confirm import ConfirmScreen
from phenomon.tui.screens.detail import DetailScreen
from phenomon.tui.screens.help import HelpScreen
from phenomon.tui.screens.runs import RunsScreen
from phenomon.tui.screens.scorecard import ScorecardScreen
from phenomon.tui.screens.small import MIN_HEIGHT, MIN_WIDTH, TooSmallScreen
from phenomon.tui.watcher import StoreWatcher


class PhenomonApp(LaunchKeys, App[str | None]):
    """State: the latest snapshot, the focused configuration, the compared runs. Screens are functions of it."""

    CSS_PATH = "phenomon.tcss"
    TITLE = "phenomon"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        # short descriptions: every screen's footer fits 160 columns; help shows the tooltip
        Binding("s", "start", "Start", tooltip="Start the focused configuration"),
        Binding("n", "add_seed", "Seed+", tooltip="Add a seed of the focused configuration"),
        Binding("k", "stop_focused", "Stop", tooltip="Stop the focused configuration's run"),
        Binding("v", "show_compare", "Compare", tooltip="Compare view"),
        Binding("S", "show_scorecard", "Scorecard"),
        Binding("ctrl+s", "screenshot", "Screenshot", show=False),
    ]

    # var, not reactive: a reactive repaints the whole screen on every snapshot; children repaint what changed
    snapshot: var[Snapshot | None] = var(None, always_update=True)

    def __init__(self, root: Path, phenomenon: str | None = None, *, demo: bool = False,
                 launch_fn: Callable = launch, poll_s: float = 0.25) -> None:
        super().__init__()
        self.root = Path(root)
        self.phenomenon = phenomenon
        self.demo = demo
        self.poll_s = poll_s
        self.launches = launches.Launches(self.root, launch_fn)
        self.focus_ph = registry.get(phenomenon) if phenomenon else None
        self.focus_cfg = self.focus_ph.defaults() if self.focus_ph else None
        self.compare_ids: tuple[str, ...] = ()
        self.follow_group: str | None = None
        self.selected: frozenset[str] = frozenset()
        self._demo_done = False
        self._joining: set[str] = set()  # config hashes started here: their runs join the comparison

    # lifecycle --------------------------------------------------------------------------------------
    def on_mount(self) -> None:
        for name, screen in (("runs", RunsScreen), ("compare", CompareScreen), ("scorecard", ScorecardScreen)):
            self.install_screen(screen(), name)
        self.push_screen("runs")
        for name in registry.names():
            for t in registry.get(name).toggles:
                if t.key not in self._bindings.key_to_bindings:
                    self.bind(t.key, f"toggle('{t.key}')", description=f"toggle {t.name}", show=False)
        self._watch_store()
        self.call_after_refresh(self.check_size)
        # what exists once the first screen is drawn (modules, Textual, polars, the screens) lives as long as the app:
        # moved out of the collector's sight, a full collection scans ~33k objects instead of ~110k and pauses every
        # thread ~13 ms instead of ~39 ms, a few times a minute (a pause under a key press was its latency's maximum)
        self.call_after_refresh(gc.freeze)

    def on_unmount(self) -> None:
        gc.unfreeze()  # back in the collector's sight: the widgets' reference cycles can go (tests run many apps)

    @work(thread=True, exclusive=True, group="watcher")
    def _watch_store(self) -> None:
        worker = get_current_worker()
        watcher = StoreWatcher(self.root)
        while not worker.is_cancelled:
            t = time.monotonic()
            watcher.follow = follow = self._rows_wanted()
            # a live run's rows at half the panels' redraw pace: two flushes or so per read (writers flush ~1/s)
            watcher.rows_every = 2 * compare_screen.LIVE_EVERY_S if follow else 0.0
            try:
                snap = watcher.poll()
            except Exception as e:  # noqa: BLE001 - a bad poll must not stop watching
                snap = Snapshot(self.root, error=f"watcher: {e.__class__.__name__}: {e}", taken=time.monotonic())
            if snap is not None:
                self.post_message(StoreChanged(snap))
            # while compare is shown the manifests (status line, runs' states) are polled a quarter as often: each
            # poll lists every run's manifest, and rows are read only every `rows_every` anyway
            every = 4 * self.poll_s if follow else self.poll_s
            time.sleep(max(0.0, every - (time.monotonic() - t)))

    def _rows_wanted(self) -> frozenset[str] | None:
        """The runs whose new rows the watcher reads: the compared ones while the compare screen is shown (or
        about to be), none elsewhere (the other screens show manifests). Read from the watcher's thread: the
        screen stack and the ids are only read, each in one step."""
        try:
            top = self.screen_stack[-1]
        except IndexError:
            return None
        return frozenset(self.compare_ids) if isinstance(top, CompareScreen) else frozenset()

    @on(StoreChanged)
    def _store_changed(self, event: StoreChanged) -> None:
        snap = event.snapshot
        for line in self.launches.reconcile(snap.runs):
            self.notify(escape(line), severity="error", timeout=10)
        if self.focus_cfg is None:
            self._focus_default(snap)
        ids = list(self.compare_ids)
        for r in snap.runs:
            joins = self.follow_group is not None and r.group == self.follow_group
            joins |= r.manifest.get("config_hash") in self._joining
            if joins and r.id not in ids:
                ids.append(r.id)
        self.compare_ids = tuple(i for i in ids if snap.run(i) is not None)
        self.snapshot = snap
        if self.demo and not self._demo_done:
            self._demo_done = True
            if not snap.runs and not snap.error:
                self._start_demo(snap)

    def watch_snapshot(self, snap: Snapshot | None) -> None:
        self._bind_screens()

    def _bind_screens(self) -> None:
        try:
            runs, compare = self.get_screen("runs"), self.get_screen("compare")
        except KeyError:  # a snapshot that arrives while the app shuts down (screens uninstalled): nothing to bind
            return
        runs.selected = self.selected
        compare.run_ids = self.compare_ids
        runs.snapshot = compare.snapshot = self.get_screen("scorecard").snapshot = self.snapshot
        pending = frozenset(name for name, h in self._hashes()[1].items() if h in self.launches.pending)
        for screen in (runs, compare):
            bars = screen.query("#toggles") if screen.is_mounted else ()
            if bars:  # mounted, not yet composed (seen under heavy CPU load): the next snapshot binds it
                bar = bars.first()
                bar.phenomenon, bar.cfg, bar.pending = self.focus_ph, self.focus_cfg, pending
                bar.focus_line = self._focus_line()

    def _hashes(self) -> tuple[str | None, dict[str, str]]:
        """The focused configuration's hash and each toggle's flipped one, kept while the focus is the same
        (recomputed on every snapshot they were a tenth of the monitor's idle CPU)."""
        memo = getattr(self, "_hash_memo", None)
        if memo is None or memo[0] is not self.focus_ph or memo[1] is not self.focus_cfg:
            ph, cfg = self.focus_ph, self.focus_cfg
            flips = {t.name: launches.chash(launches.flipped(ph, cfg, t.name)) for t in (ph.toggles if ph else ())}
            memo = self._hash_memo = (ph, cfg, launches.chash(cfg) if cfg is not None else None, flips)
        return memo[2], memo[3]

    def _focus_line(self) -> str:
        if self.focus_cfg is None:
            return ""
        h = self._hashes()[0]
        run = self.launches.existing(self.snapshot.runs, h) if self.snapshot else None
        seed = getattr(self.focus_cfg, "seed", None)
        where = f"run {run.id} ({run.state})" if run else ("starting…" if h in self.launches.pending else "no run yet: s starts it")
        return f"focus: {', '.join(self.focus_ph.toggles_on(self.focus_cfg)) or 'baseline'}, seed {seed} — {where}"

    def _focus_default(self, snap: Snapshot) -> None:
        for r in reversed(snap.runs):
            if (pc := launches.config_of(r)) is not None:
                self.focus_ph, self.focus_cfg = pc
                return
        if snap.runs:  # only other people's runs: no phenomenon's toggles to offer
            self.focus_ph = self.focus_cfg = None
            return
        self.focus_ph = registry.get("grokking")
        self.focus_cfg = self.focus_ph.defaults()

    def _start_demo(self, snap: Snapshot) -> None:
        ph = registry.get("grokking")
        base = ph.defaults()
        self.focus_ph, self.focus_cfg = ph, base
        for cfg in (base, launches.flipped(ph, base, "weight_decay")):
            self.launches.request(ph, cfg, snap.runs)
        self.follow_group = ph.group_of(base)
        self.notify("demo: started the grokking baseline and its no-weight-decay ablation as headless runs")
        self.action_show_compare()

    def check_size(self) -> None:
        """Screens call this on resize: a too-small terminal gets a clear message instead of a broken layout."""
        small = self.size.width < MIN_WIDTH or self.size.height < MIN_HEIGHT
        showing = any(isinstance(s, TooSmallScreen) for s in self.screen_stack)
        if small and not showing:
            self.push_screen(TooSmallScreen())

    # runs screen messages ---------------------------------------------------------------------------
    @on(RunsScreen.Focused)
    def _focused(self, event: RunsScreen.Focused) -> None:
        info = self.snapshot.run(event.run_id) if self.snapshot else None
        if info is not None and (pc := launches.config_of(info)) is not None:
            self.focus_ph, self.focus_cfg = pc
            self._bind_screens()

    @on(RunsScreen.Selected)
    def _selected(self, event: RunsScreen.Selected) -> None:
        self.selected = self.selected ^ {event.run_id}
        self._bind_screens()

    @on(RunsScreen.Compare)
    def _compare(self, event: RunsScreen.Compare) -> None:
        snap = self.snapshot
        if self.selected:
            self.compare_ids, self.follow_group = tuple(i for i in self.selected if snap.run(i)), None
        elif event.run_id and snap and (info := snap.run(event.run_id)):
            self.follow_group = info.group
            self.compare_ids = tuple(r.id for r in snap.runs if r.group == info.group)
        self._bind_screens()
        self.action_show_compare()

    @on(RunsScreen.Detail)
    def _detail(self, event: RunsScreen.Detail) -> None:
        if self.snapshot and (info := self.snapshot.run(event.run_id)):
            self.push_screen(DetailScreen(info))

    @on(RunsScreen.Stop)
    def _stop(self, event: RunsScreen.Stop) -> None:
        info = self.snapshot.run(event.run_id) if self.snapshot else None
        if info is None:
            return
        if info.state not in ("running", "skew"):
            self.notify(escape(f"{info.id} is {info.state}, nothing to stop"))
            return

        def answer(key: str | None) -> None:
            if key == "y":
                self.notify(escape(launches.stop(info)))

        self.push_screen(ConfirmScreen(f"Stop run {escape(info.id)} (a stop file; it keeps its rows, marked killed)?",
                                       {"y": "stop it", "n": "keep it"}), answer)

    # screens --------------------------------------------------------------------------------------
    def action_show_compare(self) -> None:
        if not self.compare_ids and self.snapshot and self.focus_ph:
            self.follow_group = self.follow_group or self.focus_ph.group_of(self.focus_cfg)
            self.compare_ids = tuple(r.id for r in self.snapshot.runs if r.group == self.follow_group)
            self._bind_screens()
        self._switch("compare")

    def action_show_runs(self) -> None:
        self._switch("runs")

    def action_show_scorecard(self) -> None:
        self._switch("scorecard")

    def _switch(self, name: str) -> None:
        if self.screen is not self.get_screen(name):
            self.switch_screen(name)
            self.call_after_refresh(self._bind_screens)

    def deliver_screenshot(self, filename: str | None = None, path: str | None = None,
                           time_format: str | None = None) -> str | None:
        """ctrl+s and the palette's Screenshot: an SVG under the runs directory (not ~/Downloads), path on screen."""
        target = Path(path) if path else self.root / ".screenshots"  # a dot: the store does not list it as a run
        try:
            target.mkdir(parents=True, exist_ok=True)
            saved = self.save_screenshot(filename, str(target), time_format)
        except OSError as e:
            self.notify(f"could not save a screenshot in {target}: {e}", severity="error", timeout=10)
            return None
        self.notify(f"screenshot saved: {saved}", timeout=10)
        return saved

    def action_help(self) -> None:
        self.push_screen(HelpScreen([("this screen", list(self.screen.BINDINGS)), ("everywhere", self._help_app())]))

    def _help_app(self) -> list[Binding]:
        out = [b for b in self.BINDINGS]
        if self.focus_ph:
            out += [Binding(t.key, "", f"toggle {t.name}: start the paired run, or focus it") for t in self.focus_ph.toggles]
        return out

    async def action_quit(self) -> None:
        for w in [w for w in self.workers if w.group == "launch"]:
            try:
                await w.wait()  # a start still forking is counted among the runs started here
            except Exception:  # noqa: BLE001 - it said why in a notification
                pass
        alive = self.launches.still_running()
        if not alive:
            self.exit(None)
            return

        def answer(key: str | None) -> None:
            if key == "l":
                self.exit(f"left {len(alive)} run(s) started here running (pids {', '.join(str(p.pid) for p in alive)}); "
                          f"`phenomon tui --runs {self.root}` picks them up")
            elif key == "s":
                for p in alive:
                    p.terminate()
                self.exit(f"stopped {len(alive)} run(s) started here (SIGTERM; their rows are kept)")

        others = sum(1 for r in (self.snapshot.runs if self.snapshot else ())  # started elsewhere: never touched here
                     if r.state == "running" and r.manifest.get("launch") not in self.launches.launch_ids)
        more = f" {others} other live run(s) in this root were not started here and keep running." if others else ""
        self.push_screen(ConfirmScreen(f"{len(alive)} run(s) started from here are still running.{more}",
                                       {"l": "leave them running", "s": "stop them"}), answer)
