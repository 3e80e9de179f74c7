"""One run in full: status (with the error, traceback or why it is dead), config, final metrics, verdict."""

from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from phenomon import store
from phenomon.store import RunInfo


def describe(info: RunInfo) -> str:
    m = info.manifest
    diff = m.get("diff") or {}
    lines = [f"[b]{escape(info.id)}[/]   {escape(str(m.get('phenomenon')))} · group {escape(str(m.get('group')))} · "
             f"seed {m.get('seed')}",
             f"status  [b]{info.state}[/]" + (f" — {escape(info.dead_reason())}" if info.state in ("dead", "skew") else "")]
    if m.get("error"):
        lines.append(f"error   [red]{escape(str(m['error']))}[/]")
    pr = m.get("progress") or {}
    lines.append(escape(f"progress {pr.get('step')}/{pr.get('max_steps')}   rows {m.get('rows', 0)}   "
                        f"pid {m.get('pid')} on {m.get('host')}"))
    lines.append(f"toggles {escape(store.label_of(m))}")
    lines.append("config  " + escape("  ".join(f"{k}={v}{'*' if k in diff else ''}"
                                              for k, v in (m.get("config") or {}).items())))
    summ = m.get("summary") or {}
    if summ:
        lines.append("latest  " + escape("  ".join(f"{k}={v:.4g}" for k, v in sorted(summ.items()))))
    lines.append(f"verdict {escape(str(m.get('verdict') or '-'))}")
    if m.get("argv"):
        lines.append(f"command {escape(' '.join(map(str, m['argv'])))}")
    if m.get("traceback"):
        lines += ["", "[b]traceback[/]", f"[dim]{escape(m['traceback'])}[/]"]
    return "\n".join(lines)


class DetailScreen(ModalScreen):
    """Live: while open it follows the app's latest snapshot (progress, status, verdict as the run goes on)."""

    BINDINGS = [Binding("escape,q,enter", "dismiss", "Close")]
    REFRESH_S = 0.5

    def __init__(self, info: RunInfo) -> None:
        super().__init__()
        self.info = info

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-box"):
            yield Static(describe(self.info), id="detail-text")

    def on_mount(self) -> None:
        self.set_interval(self.REFRESH_S, self._follow)

    def _follow(self) -> None:
        snap = getattr(self.app, "snapshot", None)
        info = snap.run(self.info.id) if snap is not None else None
        if info is not None and (info.state, info.manifest) != (self.info.state, self.info.manifest):
            self.info = info
            self.query_one("#detail-text", Static).update(describe(info))
