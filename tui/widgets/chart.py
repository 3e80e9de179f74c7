"""A braille line chart rasterised with numpy: log or linear x, spread bands as cell backgrounds, a cursor readout,
the phenomenon's landmarks as tagged vertical markers, configurations hidden on request, 10 colours × 2 line styles."""

from __future__ import annotations

import math
import time

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from phenomon.tui.frames import Series
from phenomon.tui.widgets.axes import fmt_log, fmt_num, log_ticks, nice_ticks

PALETTE = ("#5fd7ff", "#ff875f", "#afd75f", "#d787ff", "#ffd75f", "#87ffd7", "#ff5f87", "#d7d7d7", "#5f87ff",
           "#d7af87")
# configurations 0-9 solid, 10-19 dashed (two cells drawn, one left out): 20 tell apart by colour and style
GLYPHS = ("━", "╍")


def style_of_index(i: int) -> tuple[str, int]:
    """(colour, line style) of the i-th configuration: 10 colours, then the same 10 dashed."""
    return PALETTE[i % len(PALETTE)], (i // len(PALETTE)) % len(GLYPHS)
BG = Color.parse("#1e1e1e")
# braille dot bits for (row 0..3, column 0..1) inside a cell
DOTS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.int32)
LEFT = 7  # columns for y tick labels and the axis


def braille(dots: np.ndarray) -> np.ndarray:
    """(4H, 2W) dots -> (H, W) braille bit codes: the eight dot positions of a cell ORed in as strided views."""
    c = np.zeros((dots.shape[0] // 4, dots.shape[1] // 2), dtype=np.int32)
    for i in range(4):
        for j in range(2):
            c[dots[i::4, j::2]] |= DOTS[i, j]
    return c


def _blend(hex_color: str, amount: float) -> Color:
    c = Color.parse(hex_color).get_truecolor()
    b = BG.get_truecolor()
    return Color.from_rgb(*(b[i] + (c[i] - b[i]) * amount for i in range(3)))


class LineChart(Widget):
    """A function of its reactives: series, log_x, the shared x range and the cursor; strips are cached."""

    DEFAULT_CSS = "LineChart { height: 1fr; min-height: 6; }"
    MARK_ALL = 4  # landmarks of every visible configuration up to this many; beyond, only the focused one's

    # repaint=False: a change rebuilds the picture and repaints only if it differs (`_invalidate`)
    series: reactive[tuple[Series, ...]] = reactive((), layout=False, repaint=False)
    title = reactive("", repaint=False)
    log_x = reactive(True, repaint=False)
    log_y = reactive(False, repaint=False)
    x_range: reactive[tuple[float, float] | None] = reactive(None, repaint=False)
    cursor: reactive[float | None] = reactive(None, repaint=False)
    empty_text = reactive("waiting for rows…", repaint=False)
    hidden: reactive[frozenset[str]] = reactive(frozenset(), repaint=False)  # configuration keys not drawn (listed as hidden)
    focus_key: reactive[str | None] = reactive(None, repaint=False)  # the legend's focused configuration (underlined)
    markers: reactive[tuple] = reactive((), repaint=False)  # landmarks.Marker: vertical lines with a tag at the top

    class CursorMoved(Message):
        """The mouse picked an x value (data units) on a chart."""

        def __init__(self, x: float) -> None:
            super().__init__()
            self.x = x

    def __init__(self, title: str = "", **kw) -> None:
        super().__init__(**kw)
        self.title = title
        self._strips: list[Strip] | None = None
        self._stale = False  # a reactive moved; the picture is rebuilt once, after the handler that moved them
        self.drawn_at = 0.0  # monotonic time of the last raster (benchmarks and tests read it)
        self.draws = 0
        self.repaints = 0  # rebuilt pictures that differed from the one on screen

    # reactives all invalidate the cache -------------------------------------------------------------
    def _invalidate(self) -> None:
        if not self.is_mounted or self._strips is None:
            self._strips = None
            self.refresh()
        elif not self._stale:
            self._stale = True
            self.call_next(self._redraw)

    def _redraw(self) -> None:
        """Rebuild now; repaint only if the picture changed. Streamed rows mostly land inside the pixels already
        drawn (on a log axis of 25k steps the last braille column spans ~400 steps), and a repaint costs Textual
        several times what the raster does."""
        self._stale = False
        if self._strips is None or self.size.height == 0 or not self.display:
            self._strips = None
            self.refresh()
            return
        t = time.thread_time()
        strips = self._build()
        self.build_s = time.thread_time() - t  # what the compare screen paces live redraws by
        if strips != self._strips:
            self._strips = strips
            self.repaints += 1
            self.refresh()

    watch_series = watch_title = watch_log_x = watch_log_y = watch_x_range = watch_cursor = watch_empty_text = _invalidate
    watch_hidden = watch_focus_key = watch_markers = _invalidate

    def visible(self) -> tuple[Series, ...]:
        return tuple(s for s in self.series if s.key not in self.hidden) if self.hidden else self.series

    def on_resize(self, event: events.Resize) -> None:
        self._strips = None

    # geometry ---------------------------------------------------------------------------------------
    def _tx(self, x: np.ndarray | float):
        return np.log10(np.maximum(x, 1.0)) if self.log_x else np.asarray(x, dtype=float)

    def _ty(self, y: np.ndarray | None) -> np.ndarray | None:
        """y as drawn: log10 on a log axis, where values ≤ 0 have no place (NaN: not drawn)."""
        if y is None or not self.log_y:
            return y
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(y > 0, np.log10(np.where(y > 0, y, 1.0)), np.nan)

    def shown_markers(self, series: tuple[Series, ...] | None = None) -> list:
        """Landmarks of the visible configurations; beyond MARK_ALL of them only the focused one's (twenty sets of
        markers would hide the curves)."""
        series = self.visible() if series is None else series
        keys = {s.key for s in series}
        many = len(series) > self.MARK_ALL
        return [m for m in self.markers if m.key in keys and not (many and m.key != self.focus_key)]

    def data_x_range(self) -> tuple[float, float] | None:
        xs = [s.x for s in self.visible() if len(s.x)]
        if not xs:
            return None
        return float(min(x.min() for x in xs)), float(max(x.max() for x in xs))

    def _limits(self):
        xr = self.x_range or self.data_x_range()
        ys = [self._ty(a) for s in self.visible() for a in (s.y, s.lo, s.hi) if a is not None and len(a)]
        if xr is None or not ys:
            return None
        x0, x1 = (float(v) for v in self._tx(np.array(xr, dtype=float)))
        if x1 <= x0:
            x1 = x0 + 1.0
        finite = np.concatenate([a[np.isfinite(a)] for a in ys])
        if finite.size == 0:
            return None
        y0, y1 = float(finite.min()), float(finite.max())
        pad = (y1 - y0) * 0.05 or max(abs(y0) * 0.05, 0.05)
        return x0, x1, y0 - pad, y1 + pad

    def _to_px(self, tx: np.ndarray, x0: float, x1: float, width: int) -> np.ndarray:
        return (tx - x0) / (x1 - x0) * (width - 1)

    def x_at_column(self, col: int) -> float | None:
        lim = self._limits()
        w = self.size.width - LEFT
        if lim is None or w < 2:
            return None
        t = lim[0] + (lim[1] - lim[0]) * min(max(col - LEFT, 0), w - 1) / (w - 1)
        return float(10**t) if self.log_x else float(t)

    # raster -----------------------------------------------------------------------------------------
    def _raster(self, s: Series, lim, W: int, H: int):
        """Boolean dot grid (4H, 2W) for the line, and a (H, W) band mask."""
        x0, x1, y0, y1 = lim
        PW, PH = 2 * W, 4 * H
        sy = self._ty(s.y)
        ok = np.isfinite(sy)
        px = self._to_px(self._tx(s.x[ok]), x0, x1, PW)
        py = (PH - 1) * (1 - (sy[ok] - y0) / (y1 - y0))
        dots = np.zeros((PH, PW), dtype=bool)
        band = np.zeros((H, W), dtype=bool)
        if px.size == 0:
            return dots, band
        cols = np.arange(max(0, math.floor(px.min())), min(PW - 1, math.ceil(px.max())) + 1)
        if cols.size:
            yc = np.interp(cols, px, py)
            ci = np.clip(np.rint(px).astype(int), 0, PW - 1) - cols[0]
            inside = (ci >= 0) & (ci < cols.size)
            lo, hi = yc.copy(), yc.copy()
            cin, pin = ci[inside], py[inside]
            if cin.size and (np.diff(cin) >= 0).all():  # x ascending: one reduce per column, O(points)
                starts = np.concatenate([[0], np.flatnonzero(np.diff(cin)) + 1])
                u = cin[starts]
                lo[u] = np.minimum(lo[u], np.minimum.reduceat(pin, starts))  # spikes inside one column survive
                hi[u] = np.maximum(hi[u], np.maximum.reduceat(pin, starts))
            else:
                np.minimum.at(lo, cin, pin)
                np.maximum.at(hi, cin, pin)
            prev = np.concatenate([[yc[0]], yc[:-1]])  # connect to the previous column
            lo, hi = np.minimum(lo, prev), np.maximum(hi, prev)
            rows = np.arange(PH)[:, None]
            dots[:, cols] = (rows >= np.floor(lo)[None, :]) & (rows <= np.ceil(hi)[None, :] - (hi > lo))
            if style_of_index(s.color)[1]:  # dashed: every third cell left out
                dots[:, (np.arange(PW) // 2) % 3 == 2] = False
        if s.lo is not None and s.hi is not None:
            band = self._band(s, ok, px, lim, W, H)
        return dots, band

    def _band(self, s: Series, ok: np.ndarray, px: np.ndarray, lim, W: int, H: int) -> np.ndarray:
        """(H, W) cells inside the seeds' min–max band: only where ≥ 2 seeds have data (lo/hi finite there), and
        only where the band is at least half a cell tall (a thinner spread is within the line's own width)."""
        x0, x1, y0, y1 = lim
        slo, shi = self._ty(s.lo), self._ty(s.hi)
        two = np.isfinite(slo[ok]) & np.isfinite(shi[ok])
        if not two.any():
            return np.zeros((H, W), dtype=bool)
        cx = np.arange(W) * 2 + 0.5
        pb = px[two]
        cell = lambda v: (H - 1) * (1 - (v[ok][two] - y0) / (y1 - y0))  # noqa: E731
        blo, bhi = np.interp(cx, pb, cell(slo)), np.interp(cx, pb, cell(shi))
        top, bot = np.minimum(blo, bhi), np.maximum(blo, bhi)
        have = np.interp(cx, px, two.astype(float)) >= 0.5  # the nearest points there are pooled from ≥ 2 seeds
        cols = (cx >= pb.min()) & (cx <= pb.max()) & have & (bot - top >= 0.5)
        r = np.arange(H)[:, None]
        return (r >= np.round(top)[None, :]) & (r <= np.round(bot)[None, :]) & cols[None, :]

    def _build(self) -> list[Strip]:
        w, h = self.size.width, self.size.height
        dim = Style(color="grey50")
        lines: list[list[Segment]] = [[] for _ in range(h)]
        lim = self._limits()
        legend = self._legend_lines(w, max(1, min(3, (h - 6) // 4)))  # more lines only on taller panels
        W, H = w - LEFT, h - 2 - len(legend)
        lines[: len(legend)] = legend
        if lim is None or W < 4 or H < 2:
            msg = self.empty_text if lim is None else "(too small)"
            if lim is None and self.series and not self.visible():
                msg = "every configuration hidden: H shows them"
            lines[min(h - 1, h // 2)] = [Segment(msg.center(w)[:w], dim)]
            return [Strip(seg).adjust_cell_length(w) for seg in lines]
        x0, x1, y0, y1 = lim
        code = np.zeros((H, W), dtype=np.int32)
        owner = np.full((H, W), -1)
        band_owner = np.full((H, W), -1)
        series = self.visible()
        for i, s in enumerate(series):
            dots, band = self._raster(s, lim, W, H)
            c = braille(dots)
            code |= c
            owner[c > 0] = i
            band_owner[band] = i
        mark = np.full((H, W), -1)  # landmark markers: the colour index of the configuration, where no line is
        tags: dict[tuple[int, int], str] = {}
        colour_of = {s.key: s.color for s in series}
        for m in self.shown_markers(series):
            mc = self._to_px(float(self._tx(m.x)), x0, x1, W)
            if 0 <= mc <= W - 1:
                mc = int(round(mc))
                mark[:, mc] = np.where(code[:, mc] == 0, colour_of[m.key], mark[:, mc])
                free = [r for r in range(H) if code[r, mc] == 0 and (r, mc) not in tags]
                if not free:
                    continue
                row = free[0]  # the topmost cell no line passes through; a second tag there goes below it
                tags[(row, mc)] = m.tag
                mark[row, mc] = colour_of[m.key]
        cur_col = None
        if self.cursor is not None:
            cc = self._to_px(float(self._tx(self.cursor)), x0, x1, W)
            cur_col = int(round(cc)) if 0 <= cc <= W - 1 else None
        # y axis labels at their rows
        if self.log_y:  # ticks at powers of ten (and 2, 5 in a short range), labelled in data units
            ticks = [(math.log10(t), t) for t in log_ticks(10**y0, 10**y1, max(2, H // 3))[0]]
        else:
            ticks = [(t, t) for t in nice_ticks(y0, y1, max(2, H // 3))]
        yt = {int(round((H - 1) * (1 - (ty - y0) / (y1 - y0)))): t for ty, t in ticks}
        styles = [Style(color=c) for c in PALETTE]
        bands = [Style(bgcolor=_blend(c, 0.35)) for c in PALETTE]
        marks = [Style(color=_blend(c, 0.7)) for c in PALETTE]
        cursor = Style(bgcolor=Color.parse("#3a3a3a"))
        combined: dict[tuple[int, int, bool], Style] = {}

        def style_of(o: int, b: int, cur: bool, mk: int = -1) -> Style:
            st = combined.get((o, b, cur, mk))
            if st is None:
                st = styles[series[o].color % len(PALETTE)] if o >= 0 else (
                    marks[mk % len(PALETTE)] if mk >= 0 else Style())
                if b >= 0:
                    st = st + bands[series[b].color % len(PALETTE)]
                if cur:
                    st = st + cursor
                combined[(o, b, cur, mk)] = st
            return st

        # every cell at once in numpy: its character, and a key of what styles it (line owner, band owner, cursor,
        # marker); a row is then cut into runs of one key, a Segment each (a loop over cells cost ~60% of a build)
        cur = np.zeros((H, W), dtype=bool)
        if cur_col is not None:
            cur[:, cur_col] = True
        mk_eff = np.where((code == 0) & ~cur, mark, -1)  # a marker shows where no line and no cursor is
        chars = np.where(code > 0, 0x2800 + code,
                         np.where(cur, ord("│"), np.where(mk_eff >= 0, ord("┊"), ord(" ")))).astype("<u4")
        for (r, c), tag in tags.items():
            if mk_eff[r, c] >= 0:
                chars[r, c] = ord(tag[0])  # a tag is one cell
        text = chars.tobytes().decode("utf-32-le")
        nb, nm = len(series) + 1, int(mark.max()) + 2
        keys = (((owner + 1) * nb + band_owner + 1) * 2 + cur) * nm + mk_eff + 1
        for r in range(H):
            label = (fmt_log if self.log_y else fmt_num)(yt[r]) if r in yt else ""
            segs = [Segment(label.rjust(LEFT - 1)[: LEFT - 1] + ("┤" if r in yt else "│"), dim)]
            row, kr = text[r * W:(r + 1) * W], keys[r]
            starts = np.flatnonzero(np.r_[True, kr[1:] != kr[:-1]]).tolist()
            o_r, b_r, m_r = owner[r], band_owner[r], mk_eff[r]
            run_at, run_style = 0, None
            for a in starts:
                st = style_of(int(o_r[a]), int(b_r[a]), a == cur_col, int(m_r[a]))
                if run_style is not None and st != run_style:  # equal styles of different keys stay one run
                    segs.append(Segment(row[run_at:a], run_style))
                    run_at = a
                run_style = st
            segs.append(Segment(row[run_at:], run_style))
            lines[len(legend) + r] = segs
        lines[len(legend) + H], lines[len(legend) + H + 1] = self._x_axis(x0, x1, W, dim)
        self.drawn_at = time.monotonic()
        self.draws += 1
        return [Strip(seg).adjust_cell_length(w) for seg in lines]

    def _x_axis(self, x0: float, x1: float, W: int, dim: Style):
        axis = ["─"] * W
        labels = [" "] * (W + LEFT)
        if self.log_x:
            majors, minors = log_ticks(10**x0, 10**x1, max(2, W // 8))
            for t in minors:
                c = int(round(self._to_px(math.log10(t), x0, x1, W)))
                if 0 <= c < W:
                    axis[c] = "╵"
            fmt, tx = fmt_log, math.log10
        else:
            majors, fmt, tx = nice_ticks(x0, x1, max(2, W // 10)), fmt_num, float
        last_end = -1
        for t in majors:
            c = int(round(self._to_px(tx(t), x0, x1, W)))
            if not 0 <= c < W:
                continue
            axis[c] = "┴"
            text = fmt(t)
            start = min(max(LEFT + c - len(text) // 2, 0), W + LEFT - len(text))
            if start > last_end:
                labels[start:start + len(text)] = list(text)
                last_end = start + len(text)
        return ([Segment(" " * (LEFT - 1) + "└" + "".join(axis), dim)], [Segment("".join(labels), dim)])

    def _legend(self, w: int) -> list[Segment]:
        segs = [Segment(self.title, Style(bold=True))]
        if self.cursor is not None:
            segs.append(Segment(f"  @{fmt_num(self.cursor)}", Style(color="grey70")))
        for s in self.series:
            colour, dash = style_of_index(s.color)
            if s.key and s.key in self.hidden:
                segs.append(Segment(f"  {GLYPHS[dash]} {s.label} (hidden)", Style(color="grey42")))
                continue
            val = ""
            if self.cursor is not None and len(s.x):
                ok = np.isfinite(s.y)
                if ok.any():
                    val = " " + fmt_num(float(np.interp(self._tx(self.cursor), self._tx(s.x[ok]), s.y[ok])))
            focus = bool(s.key) and s.key == self.focus_key
            segs.append(Segment(f"  {GLYPHS[dash]} {s.label}{val}", Style(color=colour, underline=focus)))
        return segs

    def _legend_lines(self, w: int, most: int) -> list[list[Segment]]:
        """The legend wrapped at entries onto at most `most` lines; what still does not fit is counted."""
        segs = self._legend(w)
        lines: list[list[Segment]] = [[]]
        used = 0
        for i, seg in enumerate(segs):
            n = len(seg.text)
            if used + n > w and lines[-1]:
                if len(lines) == most:
                    entry = lambda x: any(g in x.text for g in GLYPHS)  # noqa: E731
                    left = sum(1 for x in segs[i:] if entry(x))
                    while len(lines[-1]) > 1 and entry(lines[-1][-1]) and used + len(f"  +{left} more") > w:
                        used -= len(lines[-1].pop().text)  # make room for the count rather than cut it
                        left += 1
                    lines[-1].append(Segment(f"  +{left} more", Style(color="grey50")))
                    break
                lines.append([])
                used = 0
                seg = Segment(seg.text.lstrip(), seg.style)
                n = len(seg.text)
            lines[-1].append(seg)
            used += n
        return lines

    # Textual hooks ----------------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        if self._strips is None or len(self._strips) != self.size.height:
            self._strips = self._build()
        return self._strips[y] if 0 <= y < len(self._strips) else Strip.blank(self.size.width)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return container.height

    def on_click(self, event: events.Click) -> None:
        x = self.x_at_column(event.x)
        if x is not None and event.x >= LEFT:
            self.post_message(self.CursorMoved(x))
