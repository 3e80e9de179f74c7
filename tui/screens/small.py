"""Shown instead of the monitor while the terminal is smaller than the layout needs."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Static

MIN_WIDTH, MIN_HEIGHT = 80, 24


class TooSmallScreen(ModalScreen):
    """Says how large the terminal must be; q (or ctrl+c) quits from here as it says."""

    BINDINGS = [Binding("q", "app.quit", "Quit"), Binding("ctrl+c", "app.quit", "Quit", priority=True)]

    def compose(self) -> ComposeResult:
        yield Static(id="too-small")

    def on_resize(self) -> None:
        w, h = self.app.size
        if w >= MIN_WIDTH and h >= MIN_HEIGHT:
            if self.is_current:
                self.dismiss()
            return
        self.query_one("#too-small", Static).update(
            f"terminal too small: {w}×{h}\nphenomon needs at least {MIN_WIDTH}×{MIN_HEIGHT}\n(enlarge it; q quits)")
