"""A question with keyed answers (stop a run? leave runs running on quit?); dismisses with the chosen key."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class ConfirmScreen(ModalScreen[str | None]):
    """`choices` maps a key to its label; escape answers None."""

    def __init__(self, question: str, choices: dict[str, str]) -> None:
        super().__init__()
        self.question, self.choices = question, choices

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(self.question, id="confirm-question")
            yield Static("   ".join(f"[b reverse] {k} [/] {v}" for k, v in self.choices.items()) + "   [b reverse] esc [/] cancel")

    def on_key(self, event: events.Key) -> None:
        event.stop()
        if event.key in self.choices:
            self.dismiss(event.key)
        elif event.key == "escape":
            self.dismiss(None)
