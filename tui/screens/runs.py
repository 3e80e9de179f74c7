"""The runs screen: a table of runs with status, progress, headline metrics and verdict; filters; selection."""

from __future__ import annotations

import json

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
HEAD = ("sel", "run", "phenomenon", "toggles")  # then the swept field and the settings that differ, then TAIL
TAIL = ("seed", "status", "progress", "metrics", "verdict / error")
COLUMNS = HEAD + TAIL
CAP = {"toggles": 28, "metrics": 36}  # widest these get; the verdict takes what is left of the terminal
SETTING_CAP = 12
MIN_VERDICT = 16
ROOMY = 40
NARROW = 120  # columns: under this the metrics column shows one headline


def progress_bar(m: dict, width: int = 10) -> Text:
    pr = m.get("progress") or {}
    step, mx = pr.get("step") or 0, pr.get("max_steps")
    if not mx:
        return Text(f"{step}", style="dim")
    frac = min(1.0, step / mx)
    full = int(frac * width)
    return Text("█" * full + "░" * (width - full), style="cyan") + Text(f" {frac:4.0%}")


def bound_table_caches(table: DataTable, lines: int = 200) -> None:
    """DataTable keeps every rendered cell and line of every update (its keys count updates) up to 10,000 cells
    and 1,000 lines: with live runs that fills over minutes, and memory and the garbage collector's work grow with
    it (issue 12: RSS and idle CPU rose over the first ~10 minutes). A screenful or so is all a redraw reuses."""
    for name, size in (("_row_render_cache", lines), ("_cell_render_cache", 10 * lines),
                       ("_line_cache", lines), ("_row_renderable_cache", lines)):
        cache = getattr(table, name, None)
        if cache is not None and hasattr(cache, "maxsize"):
            cache.maxsize = min(cache.maxsize, size)


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
    if info.state == "killed":  # a verdict on a run stopped part way would read as the phenomenon's outcome
        pr = m.get("progress") or {}
        where = f"at step {pr.get('step')}" + (f" of {pr['max_steps']}" if pr.get("max_steps") else "")
        return Text(f"killed {where}: no verdict", style="yellow")
    return Text(m.get("verdict") or "", style="dim" if info.state == "running" else "")


def setting_columns(runs: list[RunInfo]) -> list[str]:
    """Config fields shown as columns: each listed phenomenon's swept field, then every field whose value differs
    between the listed runs (seed aside: it has its own column)."""
    configs = [r.manifest.get("config") or {} for r in runs]
    swept = []
    for ph in dict.fromkeys(r.phenomenon for r in runs):
        try:
            f = registry.get(ph).sweep_field()
        except UsageError:
            f = None
        if f and f not in swept:
            swept.append(f)
    # a setting that differs *within* a phenomenon (across phenomena every field differs: `p` filters to one)
    differ: list[str] = []
    for ph in dict.fromkeys(r.phenomenon for r in runs):
        mine = [c for r, c in zip(runs, configs) if r.phenomenon == ph]
        keys = sorted({k for c in mine for k in c} - {"seed", *swept})
        differ += [k for k in keys if k not in differ
                   and len({json.dumps(c.get(k), sort_keys=True, default=str) for c in mine}) > 1]
    return swept + differ


def setting_text(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    return str(v)


def sort_key(v) -> tuple:
    """Numbers by value, then text: a cell such as "0.003" or "██ 40%" sorts as a number, ties keep store order."""
    text = (v.plain if isinstance(v, Text) else str(v)).strip()
    num = text.rsplit(" ", 1)[-1].rstrip("%")
    try:
        return (0, float(num), "")
    except ValueError:
        return (1, 0.0, text.lower())


def widths(columns: list[str], rows: list[tuple], total: int) -> list[int]:
    """Each column as wide as its widest cell or label (some capped); the verdict gets the rest of the terminal. When
    that leaves the verdict under ROOMY columns (or under NARROW terminals), the metrics column shows one headline;
    the verdict keeps at least MIN_VERDICT (beyond, the table scrolls and the detail line has it all)."""
    def fit(caps: dict) -> list[int]:
        out = []
        for i, c in enumerate(columns):
            label = "" if c == "sel" else c.removeprefix("set:")
            w = max([0, *(len(v.plain if isinstance(v, Text) else str(v)) for v in (r[i] for r in rows))])
            if c == "status":
                w = max(w, max(len(s) for s in STATES))  # a run finishing never cuts its status
            cap = caps.get(c, SETTING_CAP if c.startswith("set:") else None)
            out.append(max(len(label), min(w, cap) if cap else w))  # a label is never cut
        return out

    out = fit(CAP)
    room = total - sum(out[:-1]) - 2 * len(columns) - 2  # cell padding on both sides, and the scrollbar
    if total < NARROW or room < min(ROOMY, out[-1]):
        out = fit({**CAP, "metrics": 16})
        room = total - sum(out[:-1]) - 2 * len(columns) - 2
    out[-1] = max(MIN_VERDICT, min(out[-1], room))
    return out


class RunsScreen(Screen):
    """A function of the snapshot, the selection and the filters the user picked."""

    BINDINGS = [
        Binding("space", "select", "Select"),
        Binding("enter", "detail", "Details"),
        Binding("c", "compare", "Compare"),
        Binding("p", "cycle_phenomenon", "Phenomenon", tooltip="Phenomenon filter"),
        Binding("t", "cycle_state", "Status", tooltip="Status filter"),
        Binding("x", "stop", "Stop run"),
        Binding("O", "cycle_sort", "Sort column"),
    ]

    snapshot: var[Snapshot | None] = var(None)
    selected: var[frozenset[str]] = var(frozenset())
    state_filter = var("all")
    phenomenon_filter = var("all")
    sort_by: var[tuple[str, bool] | None] = var(None)  # (column, descending); None: the store's order

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
        yield Static(id="runs-detail")
        yield ToggleBar(id="toggles")
        yield Footer()

    def on_mount(self) -> None:
        self._layout: tuple = ()  # (columns, widths) the table was built with
        # run id -> (what its row was made from, the row): live runs rewrite their manifests every second or so, and
        # remaking all rows' cells on each snapshot was most of the runs screen's idle CPU
        self._made: dict[str, tuple] = {}
        self._shown: dict[str, tuple] = {}  # run id -> its cells as text, as last put in the table
        self._sig: tuple = ()  # (rows, width, sort) the table was last filled for
        self._settings_for: tuple = (None, [])
        self._table = self.query_one(DataTable)
        bound_table_caches(self._table)
        self._fill()

    def watch_snapshot(self) -> None:
        self._fill()

    def on_resize(self) -> None:
        self.app.check_size()
        self._fill()

    def watch_selected(self) -> None:
        self._fill()

    def watch_state_filter(self) -> None:
        self._fill()

    def watch_phenomenon_filter(self) -> None:
        self._fill()

    def watch_sort_by(self) -> None:
        self._fill()

    def action_cycle_sort(self) -> None:
        """O: sort by the next column (ascending), after the last back to the store's order."""
        cols = [c for c in self._layout[0] if c != "sel"] if self._layout else []
        now = self.sort_by[0] if self.sort_by else None
        nxt = cols[cols.index(now) + 1] if now in cols and cols.index(now) + 1 < len(cols) else (
            None if now in cols else (cols[0] if cols else None))
        self.sort_by = (nxt, False) if nxt else None

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        """A click on a header sorts by it; a second click reverses; a third goes back to the store's order."""
        col = event.column_key.value
        if col == "sel":
            return
        now = self.sort_by
        self.sort_by = (col, False) if not now or now[0] != col else ((col, True) if not now[1] else None)

    def visible(self) -> list[RunInfo]:
        snap = self.snapshot
        runs = list(snap.runs) if snap else []
        return [r for r in runs if self.state_filter in ("all", r.state)
                and self.phenomenon_filter in ("all", r.phenomenon)]

    def _row(self, r: RunInfo, settings: list[str]) -> tuple:
        m = r.manifest
        # a DataTable reads a str cell as markup: text from a manifest goes in as Text (ids and phenomena are
        # validated names, no brackets)
        cfg = m.get("config") or {}
        return ("●" if r.id in self.selected else " ", r.id, r.phenomenon, Text(store.label_of(m)),
                *(Text(setting_text(cfg.get(k))) for k in settings),
                str(m.get("seed", "")), Text(r.state, style=STATE_STYLE.get(r.state, "")), progress_bar(m),
                Text(headline(r)), outcome(r))

    def _made_row(self, r: RunInfo, settings: list[str]) -> tuple:
        """(what the row is made from, the row), the row made again only when one of those changed: the manifest
        (the watcher hands back the very same dict while its file is unchanged, held here so it is never another
        dict at a reused address), the state, the liveness note and age shown for a dead run, the selection and the
        setting columns."""
        src = (r.manifest, r.state, r.note, r.heartbeat_age if r.state in ("dead", "skew") else None,
               r.id in self.selected, tuple(settings))
        hit = self._made.get(r.id)
        if hit is not None and hit[0][0] is src[0] and hit[0][1:] == src[1:]:
            return hit
        return src, self._row(r, settings)

    def on_screen_resume(self) -> None:
        self._fill()

    def _fill(self) -> None:
        if not self.is_mounted or not self.is_current:  # hidden under compare: filled again on resume
            return
        table = getattr(self, "_table", None)
        if table is None or not table.is_mounted:  # between mount and compose, or while the app closes
            return
        runs = self.visible()
        settings = self._settings(runs)
        columns = [*HEAD, *(f"set:{k}" for k in settings), *TAIL]
        made, before = {r.id: self._made_row(r, settings) for r in runs}, self._made
        self._made = made
        sig = (tuple(made), self.size.width, self.sort_by)
        if sig == self._sig and all(made[k] is before.get(k) for k in made):
            self._status_line(len(runs), list(self._layout[0]) if self._layout else columns)  # no row changed
            return
        self._sig = sig
        rows = {rid: row for rid, (_, row) in made.items()}
        if len({r.phenomenon for r in runs}) <= 1:  # one phenomenon: the status line names it (p filters)
            columns.remove("phenomenon")
            rows = {k: v[:2] + v[3:] for k, v in rows.items()}
        if self.sort_by and self.sort_by[0] in columns:  # stable: ties keep the store's order
            i = columns.index(self.sort_by[0])
            rows = dict(sorted(rows.items(), key=lambda kv: sort_key(kv[1][i]), reverse=self.sort_by[1]))
        layout = (tuple(columns), tuple(widths(columns, list(rows.values()), self.size.width)),
                  tuple(rows) if self.sort_by else ())  # sorted: a new order rebuilds the rows
        if layout != self._layout:  # a new column or a wider cell: rebuild (cheap for hundreds of rows)
            self._layout = layout
            at = self._cursor_id()
            table.clear(columns=True)
            for c, w in zip(*layout[:2]):
                table.add_column(" " if c == "sel" else c.removeprefix("set:"), key=c, width=w)
            for rid, cells in rows.items():
                table.add_row(*cells, key=rid)
            if at in rows:
                table.move_cursor(row=table.get_row_index(at), animate=False)
            self._shown = {rid: tuple(map(str, cells)) for rid, cells in rows.items()}
        else:
            for key in [k for k in table.rows if k.value not in rows]:
                table.remove_row(key)
                self._shown.pop(key.value, None)
            for rid, cells in rows.items():
                text = tuple(map(str, cells))
                if rid in table.rows:
                    old = self._shown.get(rid)
                    if old == text:
                        continue  # the common case: nothing in this row moved
                    for i, (col, val) in enumerate(zip(columns, cells)):
                        if old is None or len(old) != len(text) or old[i] != text[i]:
                            table.update_cell(rid, col, val)
                else:
                    table.add_row(*cells, key=rid)
                self._shown[rid] = text
        self._status_line(len(runs), columns)

    def _settings(self, runs: list[RunInfo]) -> list[str]:
        """`setting_columns`, again only when the runs or their configurations changed (a config hash names one)."""
        key = tuple((r.id, r.phenomenon, r.manifest.get("config_hash")) for r in runs)
        if any(k[2] is None for k in key):
            return setting_columns(runs)
        if key != self._settings_for[0]:
            self._settings_for = (key, setting_columns(runs))
        return self._settings_for[1]

    def _status_line(self, shown: int, columns: list[str]) -> None:
        self._detail_line()
        snap = self.snapshot
        total = len(snap.runs) if snap else 0
        line = f"runs in {escape(str(snap.root)) if snap else '?'} — showing {shown} of {total}"
        line += f" · phenomenon [b]{self.phenomenon_filter}[/] (p) · status [b]{self.state_filter}[/] (t)"
        line += f" · {len(self.selected)} selected (space), c compares"
        if self.sort_by and self.sort_by[0] in columns:
            line += f" · sorted by [b]{escape(self.sort_by[0].removeprefix('set:'))}[/] {'↓' if self.sort_by[1] else '↑'} (O)"
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

    def _detail_line(self) -> None:
        """The highlighted run's verdict or error in full (wrapped), with the settings that set it apart."""
        rid = self._cursor_id()
        info = self.snapshot.run(rid) if self.snapshot and rid else None
        text = Text()
        if info is not None:
            text.append(f"{info.id} ", style="bold")
            text.append(info.state, style=STATE_STYLE.get(info.state, ""))
            diff = info.manifest.get("diff") or {}
            if diff:
                text.append("  " + " ".join(f"{k}={setting_text(v)}" for k, v in diff.items()), style="dim")
            out = outcome(info)
            if out.plain:
                text.append("  ")
                text.append_text(out)
        if text.plain != getattr(self, "_detail_text", None):  # an update re-lays out the screen
            self._detail_text = text.plain
            self.query_one("#runs-detail", Static).update(text)

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        """The cursor moving to a run focuses its configuration; the same row highlighted again (a rebuilt table, a
        return to this screen) leaves alone a focus the user moved elsewhere since."""
        self._detail_line()
        rid = event.row_key.value if event.row_key is not None else None
        if rid and rid != getattr(self, "_focused_row", None):
            self._focused_row = rid
            self.post_message(self.Focused(rid))

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
