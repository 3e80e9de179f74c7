"""The compare screen's shared legend: every configuration with its colour and line style, focus and hidden marked."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from phenomon.tui.widgets.chart import GLYPHS, style_of_index

HEAD = "{n} configuration(s) (. , focus · h hide · H all)"


class ConfigLegend(Widget):
    """A function of its reactives; entries wrap between one another, never inside one (the panels' own legends
    run out of room with many configurations: this one lists all of them)."""

    DEFAULT_CSS = "ConfigLegend { height: auto; }"

    configs: reactive[tuple[tuple[str, str, int], ...]] = reactive((), layout=True)  # (key, label, colour index)
    focus_key: reactive[str | None] = reactive(None)
    hidden: reactive[frozenset[str]] = reactive(frozenset(), layout=True)
    note = reactive("", layout=True)  # what the landmark tags mean

    def lines(self, width: int) -> list[Text]:
        if not self.configs:
            return []
        items = [(HEAD.format(n=len(self.configs)), "bold")]
        for key, label, color in self.configs:
            colour, dash = style_of_index(color)
            mark = "▸" if key == self.focus_key else " "
            gone = key in self.hidden
            items.append((f"{mark}{GLYPHS[dash]} {label}" + (" (hidden)" if gone else ""), "grey50" if gone else colour))
        if self.note:
            items.append((self.note, "dim"))
        out, used = [Text()], 0
        for entry, style in items:
            if used and used + 2 + len(entry) > width:
                out.append(Text())
                used = 0
            elif used:
                out[-1].append("  ")
                used += 2
            out[-1].append(entry, style)
            used += len(entry)
        return out

    def render(self) -> Text:
        return Text("\n").join(self.lines(max(20, self.content_size.width or self.size.width)))

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self.lines(max(20, width)))
