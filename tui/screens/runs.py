"""The runs screen: a table of runs with status, progress, headline metrics and verdict; filters; selection."""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from phenomon import registry, store
from phenomon.config import UsageError
from phenomon.store import RunInfo
from phenomon.tui.messages import Snapshot
from phenomon.tui.widgets.toggles import ToggleBar

STATES = ("all", "running", "finished", "failed", "dead", "killed", "skew")
STATE_STYLE = {"running": "bold cyan", "finished": "green", "failed": "bold red", "dead": "bold magenta",
               "killed": "yellow", "skew": "magenta"}
COLUMNS = ("sel", "run", "phenomenon", "toggles", "seed", "status", "progress", "metrics", "verdict / error")


def progress_bar(m: dict, width: int = 10) -> Text:
    pr = m.get("progress") or {}
    step, mx = pr.get("step") or 0, pr.get("max_steps")
    if not mx:
        return Text(f"{step}", style="dim")
    frac = min(1.0, step / mx)
    full = int(frac * width)
    return Text("█" * full + "░" * (width - full), style="cyan") + Text(f" {frac:4.0%}")


def headline(info: RunInfo) -> str:
    try:
        keys = registry.get(info.phenomenon).headline
    except UsageError:
        keys = ()
    return store.headline(info.manifest.get("summary") or {}, keys, limit=2)


def outcome(info: RunInfo) -> Text:
    m = info.manifest
    if info.state == "failed":
        return Text(m.get("error") or "failed (no error recorded)", style="red")
    if info.state in ("dead", "skew"):
        return Text(info.dead_reason(), style="magenta")
    return Text(m.get("verdict") or "", style="dim" if info.state == "running" else "")


class RunsScreen(Screen):
    """A function of the snapshot, the selection and the filters the user picked."""

    BINDINGS = [
        Binding("space", "select", "Select"),
        Binding("enter", "detail", "Details"),
        Binding("c", "compare", "Compare"),
        Binding("p", "cycle_phenomenon", "Phenomenon filter"),
        Binding("t", "cycle_state", "Status filter"),
        Binding("x", "stop", "Stop run"),
    ]

    snapshot: var[Snapshot | None] = var(None)
    selected: var[frozenset[str]] = var(frozenset())
    state_filter = var("all")
    phenomenon_filter = var("all")

    class Selected(Message):
        def __init__(self, run_id: str) -> None:
            super().__init__()
            self.run_id = run_id

    class Focused(Message):
        def __init__(self, run_id: str) -> None:
            super().__init__()
            self.run_id = run_id

    class Compare(Message):
        def __init__(self, run_id: str | None) -> None:
            super().__init__()
            self.run_id = run_id

    class Detail(Message):
        def __init__(self, run_id: str) -> None:
            super().__init__()
            self.run_id = run_id

    class Stop(Message):
        def __init__(self, run_id: str) -> None:
            super().__init__()
            self.run_id = run_id

    def compose(self) -> ComposeResult:
        yield Static(id="runs-status")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield ToggleBar(id="toggles")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for c in COLUMNS:
            table.add_column(c if c != "sel" else " ", key=c)
        self._fill()

    def watch_snapshot(self) -> None:
        self._fill()

    def on_resize(self) -> None:
        self.app.check_size()

    def watch_selected(self) -> None:
        self._fill()

    def watch_state_filter(self) -> None:
        self._fill()

    def watch_phenomenon_filter(self) -> None:
        self._fill()

    def visible(self) -> list[RunInfo]:
        snap = self.snapshot
        runs = list(snap.runs) if snap else []
        return [r for r in runs if self.state_filter in ("all", r.state)
                and self.phenomenon_filter in ("all", r.phenomenon)]

    def _row(self, r: RunInfo) -> tuple:
        m = r.manifest
        # a DataTable reads a str cell as markup: text from a manifest goes in as Text (ids and phenomena are
        # validated names, no brackets)
        return ("●" if r.id in self.selected else " ", r.id, r.phenomenon, Text(store.label_of(m)),
                str(m.get("seed", "")), Text(r.state, style=STATE_STYLE.get(r.state, "")), progress_bar(m),
                Text(headline(r)), outcome(r))

    def on_screen_resume(self) -> None:
        self._fill()

    def _fill(self) -> None:
        if not self.is_mounted or not self.is_current:  # hidden under compare: filled again on resume
            return
        table = self.query_one(DataTable)
        runs = self.visible()
        keep = {r.id for r in runs}
        for key in [k for k in table.rows if k.value not in keep]:
            table.remove_row(key)
        for r in runs:
            cells = self._row(r)
            if r.id in table.rows:
                for col, val in zip(COLUMNS, cells):
                    if str(table.get_cell(r.id, col)) != str(val):
                        table.update_cell(r.id, col, val)
            else:
                table.add_row(*cells, key=r.id)
        snap = self.snapshot
        total = len(snap.runs) if snap else 0
        line = f"runs in {escape(str(snap.root)) if snap else '?'} — showing {len(runs)} of {total}"
        line += f" · phenomenon [b]{self.phenomenon_filter}[/] (p) · status [b]{self.state_filter}[/] (t)"
        line += f" · {len(self.selected)} selected (space), c compares"
        if snap and snap.error:
            line = f"[red]{escape(snap.error)}[/]\n" + line
        if snap and snap.problems:
            line += f"\n[yellow]{len(snap.problems)} problem(s): {escape(snap.problems[-1])}[/]"
        if snap and total == 0 and not snap.error:
            line += "\n[dim]no runs yet: press s to start the focused configuration, or run `phenomon run …` elsewhere[/]"
        status = self.query_one("#runs-status", Static)
        if status.content != line:  # an update re-lays out the screen: only when the line changed
            status.update(line)

    def _cursor_id(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value:
            self.post_message(self.Focused(event.row_key.value))

    @on(DataTable.RowSelected)
    def _enter(self, event: DataTable.RowSelected) -> None:
        self.post_message(self.Detail(event.row_key.value))

    def action_select(self) -> None:
        if (rid := self._cursor_id()) is not None:
            self.post_message(self.Selected(rid))

    def action_detail(self) -> None:
        if (rid := self._cursor_id()) is not None:
            self.post_message(self.Detail(rid))

    def action_compare(self) -> None:
        self.post_message(self.Compare(self._cursor_id()))

    def action_stop(self) -> None:
        if (rid := self._cursor_id()) is not None:
            self.post_message(self.Stop(rid))

    def action_cycle_state(self) -> None:
        self.state_filter = STATES[(STATES.index(self.state_filter) + 1) % len(STATES)]

    def action_cycle_phenomenon(self) -> None:
        names = ["all", *sorted({r.phenomenon for r in (self.snapshot.runs if self.snapshot else ())})]
        i = names.index(self.phenomenon_filter) if self.phenomenon_filter in names else 0
        self.phenomenon_filter = names[(i + 1) % len(names)]
