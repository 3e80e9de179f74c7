"""The toggles bar: each toggle of the focused phenomenon with its key, its state and what it is expected to do."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from phenomon.registry import Phenomenon


class ToggleBar(Widget):
    """A function of (phenomenon, focused config, a line about the focused run, pending toggles)."""

    DEFAULT_CSS = "ToggleBar { height: auto; }"

    phenomenon: reactive[Phenomenon | None] = reactive(None, layout=True)
    cfg = reactive(None, layout=True)
    focus_line = reactive("", layout=True)
    pending: reactive[frozenset[str]] = reactive(frozenset())

    def render(self) -> Text:
        ph, cfg = self.phenomenon, self.cfg
        out = Text()
        if ph is None or cfg is None:
            return Text("no phenomenon in focus: select a run", style="dim")
        out.append(f"{ph.name}", style="bold")
        out.append(f"  {self.focus_line}\n", style="dim")
        for t in ph.toggles:
            on = t.is_on(cfg)
            out.append(f" {t.key} ", style="bold reverse")
            out.append(f" {t.name:<16}", style="bold" if on else "")
            out.append(" ● on " if on else " ○ off", style="green" if on else "dim")
            if t.name in self.pending:
                out.append(" starting…", style="yellow")
            out.append(f"  {t.expect}\n", style="italic dim")
        out.rstrip()
        out.no_wrap, out.overflow = True, "ellipsis"  # one line per toggle: every toggle stays visible
        return out
