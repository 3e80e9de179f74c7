"""The help screen: every binding of the app and of the screen underneath, with what it does."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.keys import format_key
from textual.screen import ModalScreen
from textual.widgets import Static


def key_name(b: Binding) -> str:
    """What the key reads as on a keyboard: `[`, not `left_square_bracket`; a binding of several keys, each."""
    return b.key_display or " ".join(format_key(k.strip()) for k in b.key.split(","))


def binding_table(title: str, bindings) -> Table:
    t = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2))
    for b in bindings:
        b = b if isinstance(b, Binding) else Binding(*b)
        t.add_row(f"[b]{escape(key_name(b))}[/]", b.tooltip or b.description or b.action)  # the footer's is short
    return t


class HelpScreen(ModalScreen):
    """Lists bindings; any of escape, q or ? closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, sections: list[tuple[str, list]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static("[b]phenomon monitor — keys[/]   (escape closes)\n")
            for title, bindings in self.sections:
                yield Static(binding_table(title, bindings))
