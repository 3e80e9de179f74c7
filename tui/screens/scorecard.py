"""The scorecard screen: which explanation signals track, lead and add to the norm, and the preregistered hypotheses."""

from __future__ import annotations

from rich.markup import escape

import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual.worker import get_current_worker

from phenomon import hypotheses, scorecard, store
from phenomon.scorecard.render import ci_text
from phenomon.catalog import MAIN_SIGNALS
from phenomon.tui.messages import Snapshot

SCORED = ("finished", "killed", "dead")  # a run entering one of these states changes the scorecard: recompute
COLUMNS = ("signal", "phenomenon", "verdict", "n", "Δ-ρ [95%]", "q", "vs null", "partial|norm", "lead", "R²@25%",
           "interv", "invar")
STATUS_STYLE = {"supported": "bold green", "refuted": "bold red", "not enough runs": "yellow", "error": "red"}
EMPTY = "no scored runs yet: runs need test metrics and signals"
LEGEND = ("Δ-ρ: ρ of the signal's changes with the outcome's, mean over units [bootstrap 95%] · q: surrogate null, "
          "Benjamini–Hochberg · vs null: |Δ-ρ| minus the best null's (step, random walk) · partial|norm: given the "
          "weight norm's changes · lead: outcome onset minus the signal's · R²@25%: predicting a run's outcome from "
          "the signal at 25% of training · interv: pairs moved as predicted · invar: unchanged under ReLU rescaling "
          "· – : undefined")


def verdict_style(r: dict) -> str:
    """Green explains, yellow tracks without beating the nulls or the norm (the paper's flag), dim the rest."""
    if r.get("explains"):
        return "bold green"
    if r.get("tracks") and (r.get("beats_null") is False or r.get("beyond_norm") is False):
        return "yellow"
    if r.get("tracks"):
        return ""
    return "dim"


@dataclass(frozen=True, eq=False)  # compared by identity: a reactive compares values, and frames have no truth value
class Card:
    """One computation of the scorecard: the table, each hypothesis with (status, why), problems met, timing."""

    table: pl.DataFrame
    hypotheses: tuple[tuple[hypotheses.Hypothesis, str, str], ...] = ()
    problems: tuple[str, ...] = ()
    error: str | None = None
    seconds: float = 0.0
    at: float = 0.0  # wall clock, for the status line


def compute(root: Path) -> Card:
    """Reads every run (about a second on a big store): call it from a thread worker, never the UI thread."""
    t = time.perf_counter()
    problems: list[str] = []
    try:
        table = scorecard.scorecard(root, problems)
        checked = []
        for h in hypotheses.load(root, problems):
            try:
                checked.append((h, *hypotheses.check(root, h)))
            except Exception as e:  # noqa: BLE001 - one bad hypothesis must not hide the others
                checked.append((h, "error", f"{e.__class__.__name__}: {e}"))
    except Exception as e:  # noqa: BLE001 - shown on the screen; the app keeps working
        return Card(pl.DataFrame(), (), tuple(problems), f"{e.__class__.__name__}: {e}",
                    time.perf_counter() - t, time.time())
    return Card(table, tuple(checked), tuple(problems), None, time.perf_counter() - t, time.time())


def visible(table: pl.DataFrame, phenomenon: str, show_all: bool) -> pl.DataFrame:
    """The rows a user asked for: main signals or every variant, one phenomenon or all (as `phenomon score`)."""
    if table.height == 0:
        return table
    if table["phenomenon"].n_unique() == 2:  # one phenomenon: its rows are the overall rows
        table = table.filter(pl.col("phenomenon") != "(all)")
    if not show_all:
        table = table.filter(pl.col("signal").is_in(MAIN_SIGNALS))
    return table if phenomenon == "all" else table.filter(pl.col("phenomenon") == phenomenon)


def _num(v: float | None, fmt: str = "{:+.2f}", style: str = "") -> Text:
    text = store.fmt_value(v, fmt)
    return Text(text, style="dim") if text == store.MISSING else Text(text, style=style)


def _ci(r: dict, key: str, style: str = "") -> Text:
    text = ci_text(r, key, compact=True)
    return Text("–", style="dim") if text is None else Text(text, style=style)


def row_cells(r: dict) -> tuple:
    style = verdict_style(r)
    iv = f"{r['iv_agree']}/{r['iv_pairs']}" if r.get("iv_pairs") else "–"
    inv = r.get("invariant")
    r2 = r.get("r2_25")
    return (Text(r["signal"].removeprefix("signal/"), style=style), r["phenomenon"],
            Text(r.get("short") or "", style=style), str(r.get("n_units") or 0),
            _ci(r, "tracking", "bold" if r.get("tracks") else "dim"), _num(r.get("q"), "{:.3f}"),
            _ci(r, "null_margin", "green" if r.get("beats_null") else ""),
            _ci(r, "partial_norm", "yellow" if r.get("beyond_norm") is False else ""),
            _ci(r, "lead", "green" if (r.get("lead_lo") or 0) > 0 else ""),
            Text("< -1", style="dim") if r2 is not None and r2 < -1 else _num(r2, "{:.2f}"),
            Text(iv), Text("–" if inv is None else "yes" if inv else "no", style="yellow" if inv is False else ""))


class ScorecardScreen(Screen):
    """A function of (card, phenomenon filter, variants toggle); the card is recomputed in a worker on `r`, on first
    show, and when runs finish (not on every poll: it reads every run)."""

    BINDINGS = [
        Binding("ctrl+r", "recompute", "Recompute"),
        Binding("r", "app.show_runs", "Runs"),  # r goes to the runs everywhere
        Binding("p", "cycle_phenomenon", "Phenomenon"),
        Binding("a", "toggle_all", "Variants"),
        Binding("escape", "app.show_runs", "Runs"),
    ]

    snapshot: var[Snapshot | None] = var(None)
    card: var[Card | None] = var(None)
    computing = var(False)
    phenomenon_filter = var("all")
    show_all = var(False)

    class Computed(Message):
        def __init__(self, card: Card) -> None:
            super().__init__()
            self.card = card

    def __init__(self) -> None:
        super().__init__()
        self._scored: frozenset | None = None  # the scored runs the card (or the computation under way) covers

    def compose(self) -> ComposeResult:
        yield Static(id="score-status")
        yield DataTable(id="score-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="score-detail")
        yield Static(id="hyp-title")
        yield DataTable(id="hyp-table", cursor_type="row", show_cursor=False)
        yield Static(LEGEND, id="score-legend")
        yield Footer()

    def on_mount(self) -> None:
        for c in COLUMNS:
            self.query_one("#score-table", DataTable).add_column(c, key=c)
        for c in ("status", "id", "hypothesis", "test", "numbers"):
            self.query_one("#hyp-table", DataTable).add_column(c, key=c)
        self._fill()

    def on_screen_resume(self) -> None:
        if self._scored != self._scored_now():
            self.action_recompute()

    def on_resize(self) -> None:
        self.app.check_size()

    def _scored_now(self) -> frozenset | None:
        snap = self.snapshot
        return frozenset((r.id, r.state) for r in snap.runs if r.state in SCORED) if snap else None

    def watch_snapshot(self) -> None:
        if self.is_mounted and self.is_current and self._scored != self._scored_now():
            self.action_recompute()
        self._status()

    def action_recompute(self) -> None:
        if self.snapshot is None:
            return  # the first poll is under way; it binds a snapshot and resumes this
        self._scored = self._scored_now()
        self.computing = True
        self._compute(self.snapshot.root)

    @work(thread=True, exclusive=True, group="scorecard", exit_on_error=False)
    def _compute(self, root: Path) -> None:
        card = compute(root)
        if not get_current_worker().is_cancelled:  # a newer request superseded this one
            self.post_message(self.Computed(card))

    @on(Computed)
    def _computed(self, event: Computed) -> None:
        self.computing = False
        self.card = event.card

    def watch_card(self) -> None:
        self._fill()

    watch_phenomenon_filter = watch_show_all = watch_card

    def watch_computing(self, computing: bool) -> None:
        self.set_class(computing, "-computing")
        self._status()

    def action_cycle_phenomenon(self) -> None:
        table = visible(self.card.table, "all", True) if self.card else pl.DataFrame()
        names = ["all", *sorted(table["phenomenon"].unique())] if table.height else ["all"]
        i = names.index(self.phenomenon_filter) if self.phenomenon_filter in names else 0
        self.phenomenon_filter = names[(i + 1) % len(names)]

    def action_toggle_all(self) -> None:
        self.show_all = not self.show_all

    # rendering --------------------------------------------------------------------------------------
    def _fill(self) -> None:
        if not self.is_mounted:
            return
        card = self.card
        table = self.query_one("#score-table", DataTable)
        rows = visible(card.table, self.phenomenon_filter, self.show_all) if card else pl.DataFrame()
        cursor = table.cursor_row
        table.clear()
        for r in rows.iter_rows(named=True):
            table.add_row(*row_cells(r), key=f"{r['signal']}|{r['phenomenon']}")
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))
        self.set_class(card is not None and card.error is not None, "-error")
        self.set_class(card is not None and card.error is None and card.table.height == 0, "-empty")
        self._fill_hypotheses()
        self._status()

    @on(DataTable.RowHighlighted, "#score-table")
    def _detail(self, event: DataTable.RowHighlighted) -> None:
        """The highlighted row's verdict in full words, with n and the intervals (the column is a summary)."""
        card, key = self.card, event.row_key.value if event.row_key else None
        line = ""
        if card is not None and card.table.height and key:
            sig, _, ph = key.partition("|")
            hit = card.table.filter((pl.col("signal") == sig) & (pl.col("phenomenon") == ph))
            if hit.height:
                line = f"[b]{sig}[/] · {ph}: {hit['verdict'][0]}"
        self.query_one("#score-detail", Static).update(line)

    def _fill_hypotheses(self) -> None:
        hyp = self.query_one("#hyp-table", DataTable)
        hyp.clear()
        checked = self.card.hypotheses if self.card else ()
        for h, status, why in checked:
            hyp.add_row(Text(status, style=STATUS_STYLE.get(status, "")), h.id, h.text,
                        f"{h.signal} {h.expect} {h.threshold:g} on {h.phenomenon}", why, key=h.id)
        counts = {s: sum(1 for _, st, _ in checked if st == s) for s in STATUS_STYLE}
        line = "[b]preregistered hypotheses[/]"
        if checked:
            line += " — " + " · ".join(f"[{STATUS_STYLE[s]}]{n} {s}[/]" for s, n in counts.items() if n)
            line += "  [dim](refuted ones stay: negative results are results)[/]"
        elif self.card is not None:
            line += ": none registered (`phenomon hypothesis add …` before the runs)"
        self.query_one("#hyp-title", Static).update(line)
        hyp.display = bool(checked)

    def _status(self) -> None:
        if not self.is_mounted:
            return
        card, snap = self.card, self.snapshot
        if card is None:
            line = "computing the scorecard (reads every run)…" if self.computing else "waiting for the store…"
        else:
            shown = visible(card.table, self.phenomenon_filter, self.show_all).height if card.table.height else 0
            hidden = visible(card.table, self.phenomenon_filter, True).height - shown if card.table.height else 0
            line = (f"scorecard of {snap.root if snap else '?'} — {shown} row(s) · phenomenon "
                    f"[b]{self.phenomenon_filter}[/] (p) · {'all variants' if self.show_all else 'main signals'}"
                    f"{f', {hidden} variant(s) hidden' if hidden else ''} (a) · computed "
                    f"{time.strftime('%H:%M:%S', time.localtime(card.at))} in {card.seconds:.1f} s "
                    f"(r, and when runs finish)")
            if self.computing:
                line = "[b]computing…[/] " + line
            if card.error:
                line += f"\n[red]could not compute the scorecard: {escape(str(card.error))}[/]"
            elif card.table.height == 0:
                line += f"\n[dim]{EMPTY}[/]"
            if card.problems:
                line += f"\n[yellow]{len(card.problems)} problem(s): {escape(card.problems[-1])}[/]"
        if snap is not None and snap.error:
            line += f"\n[red]{escape(snap.error)}[/]"
        status = self.query_one("#score-status", Static)
        if status.content != line:  # hidden, it still gets every snapshot: an unchanged line costs no layout
            status.update(line)
