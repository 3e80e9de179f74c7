"""SVG snapshots of the monitor's screens: stored under tests/snapshots/, compared byte for byte.

`pytest tests/test_tui_snapshots.py --snapshot-update` rewrites them (review the SVGs in a browser and the diff before
committing). On a mismatch the new SVG is written beside the stored one as `<name>.actual.svg` (ignored by git) and
the assertion names the first screen line that differs, as text.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

SNAPSHOTS = Path(__file__).parent / "snapshots"
CHAR_WIDTH = 20 * 0.61  # Rich's SVG export: a cell is 0.61 of its 20 px font wide


def screen_text(svg: str) -> list[str]:
    """The characters on screen, one string per terminal row (the SVG keeps each row's text in <text> runs)."""
    rows: dict[float, list[tuple[int, str]]] = {}
    for x, y, body in re.findall(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', svg):
        rows.setdefault(float(y), []).append((round(float(x) / CHAR_WIDTH), html.unescape(body).replace("\xa0", " ")))
    out = []
    for _, parts in sorted(rows.items()):
        line = ""
        for col, text in sorted(parts):
            line = line.ljust(col) + text
        out.append(line.rstrip())
    return out


def assert_snapshot(svg: str, name: str, update: bool) -> None:
    path = SNAPSHOTS / f"{name}.svg"
    actual = path.with_suffix(".actual.svg")
    if update:
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(svg, encoding="utf-8")
        actual.unlink(missing_ok=True)
        return
    if not path.exists():
        raise AssertionError(f"no stored snapshot {path.name}: run pytest {Path(__file__).parent.name}/"
                             f"test_tui_snapshots.py --snapshot-update and review it")
    stored = path.read_text(encoding="utf-8")
    if svg == stored:
        actual.unlink(missing_ok=True)
        return
    actual.write_text(svg, encoding="utf-8")
    old, new = screen_text(stored), screen_text(svg)
    diff = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), None)
    where = (f"row {diff}:\n  stored: {old[diff]!r}\n  now:    {new[diff]!r}" if diff is not None
             else "same text, different colours or styles")
    raise AssertionError(f"{name} differs from {path.name} (new one in {actual.name}); first difference at {where}")
