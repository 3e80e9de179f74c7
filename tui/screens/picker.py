"""The metric picker: type to filter every logged metric by name, up/down to move, enter to show it."""

from __future__ import annotations

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static


class MetricPicker(ModalScreen[str | None]):
    """Dismisses with the chosen metric name, or None (escape). The list keeps the compare screen's order: the
    phenomenon's outcome first, the model's metrics, signals, nulls, bookkeeping last."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Close"),
                Binding("down", "move(1)", "Next", show=False), Binding("up", "move(-1)", "Previous", show=False)]

    def __init__(self, names: list[str], current: str | None = None) -> None:
        super().__init__()
        self.names = list(names)
        self.current = current
        self.shown: list[str] = list(names)

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-box"):
            yield Static(id="picker-title")
            yield Input(placeholder="type to filter metrics (e.g. norm, error, signal/)", id="picker-input")
            yield OptionList(id="picker-list")

    def on_mount(self) -> None:
        self._fill("")
        if self.current in self.shown:
            self.query_one(OptionList).highlighted = self.shown.index(self.current)
        self._title()
        self.query_one(Input).focus()

    def _fill(self, text: str) -> None:
        words = text.lower().split()
        self.shown = [n for n in self.names if all(w in n.lower() for w in words)]
        ol = self.query_one(OptionList)
        ol.clear_options()
        ol.add_options([escape(n) for n in self.shown])
        if self.shown:
            ol.highlighted = 0

    def _title(self) -> None:
        ol = self.query_one(OptionList)
        pos = f"{ol.highlighted + 1}/{len(self.shown)}" if self.shown and ol.highlighted is not None else \
            f"0/{len(self.shown)}"
        extra = f" of {len(self.names)}" if len(self.shown) != len(self.names) else ""
        self.query_one("#picker-title", Static).update(
            f"[b]metric[/] {pos}{extra} · ↑/↓ move · enter shows it · escape closes")

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        self._fill(event.value)
        self._title()

    @on(OptionList.OptionHighlighted)
    def _moved(self) -> None:
        self._title()

    def action_move(self, step: int) -> None:
        ol = self.query_one(OptionList)
        if self.shown:
            ol.highlighted = ((ol.highlighted or 0) + step) % len(self.shown)

    def selected(self) -> str | None:
        ol = self.query_one(OptionList)
        return self.shown[ol.highlighted] if self.shown and ol.highlighted is not None else None

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.dismiss(self.selected())

    @on(OptionList.OptionSelected)
    def _clicked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.shown[event.option_index])
