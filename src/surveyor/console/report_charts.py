"""Reports' charts as SVG drawn on the server: bars, stacked bars and a time series.

Each chart draws one report section (core/reports.py) and is an image with a name
(`role="img"`, `aria-label`); the section's table next to it is its text alternative. Charts
are drawn on a narrow canvas (360 units wide, labels above their bars) so that they stay
readable on a phone, and scale up on wider screens. Text is in the page's colour
(`currentColor`); series differ by dash pattern as well as by colour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

WIDTH = 360
#: Colours of the series, in order (dark enough against white for lines and bars).
PALETTE = ("#1f5fbf", "#b54708", "#1f7a3d", "#7b3fb8", "#b3261e", "#0e6f86", "#6b5b00", "#4b5563")
#: Dash patterns of the time series' lines, in order.
DASHES = ("", "6 3", "2 3", "8 3 2 3")
_ROW = 34
_BAR = 14
_LABEL_CHARS = 48


def _short(label: Any, limit: int = _LABEL_CHARS) -> str:
    text = str(label)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _shown(value: float) -> str:
    return str(int(value)) if value == int(value) else str(round(value, 2))


_TEXT = Markup('<text x="{}" y="{}" text-anchor="{}" fill="currentColor">{}</text>')
_RECT = Markup('<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>')
_LINE = Markup(
    '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="{}" stroke-dasharray="{}"/>'
)
_POLYLINE = Markup(
    '<polyline points="{}" fill="none" stroke="{}" stroke-width="2" stroke-dasharray="{}"/>'
)
_SVG = Markup(
    '<svg class="chart" role="img" aria-label="{}" viewBox="0 0 {} {}" width="{}" height="{}" '
    'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg" '
    'font-family="system-ui, sans-serif" font-size="12">{}</svg>'
)


def _text(x: float, y: float, value: Any, anchor: str = "start") -> Markup:
    return _TEXT.format(round(x, 1), round(y, 1), anchor, value)


def _svg(height: int, label: str, body: list[Markup]) -> Markup:
    return _SVG.format(label, WIDTH, height, WIDTH, height, Markup("").join(body))


def _legend(names: Sequence[str], y: int, *, lines: bool = False) -> tuple[list[Markup], int]:
    """Legend entries, two a line; the parts and the height they take."""
    parts = []
    for index, name in enumerate(names):
        x = 4 + (index % 2) * (WIDTH // 2)
        top = y + (index // 2) * 18
        colour = PALETTE[index % len(PALETTE)]
        if lines:
            dash = DASHES[index % len(DASHES)] or "none"
            parts.append(_LINE.format(x, top + 6, x + 18, top + 6, colour, 3, dash))
        else:
            parts.append(_RECT.format(x, top, 12, 12, colour))
        parts.append(_text(x + 24, top + 10, _short(name, 24)))
    return parts, ((len(names) + 1) // 2) * 18


def bars(section: Mapping[str, Any]) -> Markup:
    """One bar a row, the row's label above it and its value at its end."""
    rows = section["rows"]
    top = max((_number(row[1]) for row in rows), default=0.0) or 1.0
    span = WIDTH - 70
    body = []
    for index, row in enumerate(rows):
        y = index * _ROW
        width = max(round(span * _number(row[1]) / top, 1), 1.0 if _number(row[1]) else 0.0)
        body.append(_text(0, y + 12, _short(row[0])))
        body.append(_RECT.format(0, y + 16, width, _BAR, PALETTE[0]))
        body.append(_text(width + 6, y + 27, row[1]))
    label = f"{section['title']}: bar chart; the table that follows gives the values"
    return _svg(max(len(rows) * _ROW, _ROW), label, body)


def stacked(section: Mapping[str, Any]) -> Markup:
    """One bar a row, split into the row's columns (a legend names them)."""
    columns = section["columns"][1:]
    rows = section["rows"]
    body, legend_height = _legend(columns, 0)
    offset = legend_height + 8
    top = max((sum(_number(v) for v in row[1:]) for row in rows), default=0.0) or 1.0
    span = WIDTH - 70
    for index, row in enumerate(rows):
        y = offset + index * _ROW
        body.append(_text(0, y + 12, _short(row[0])))
        x = 0.0
        for part, value in enumerate(row[1:]):
            width = round(span * _number(value) / top, 1)
            if width > 0:
                body.append(_RECT.format(x, y + 16, width, _BAR, PALETTE[part % len(PALETTE)]))
                x = round(x + width, 1)
        body.append(_text(x + 6, y + 27, _shown(sum(_number(v) for v in row[1:]))))
    label = f"{section['title']}: stacked bar chart; the table that follows gives the values"
    return _svg(offset + max(len(rows), 1) * _ROW, label, body)


def series(section: Mapping[str, Any]) -> Markup:
    """One line per column over the rows (the first column is the day), with a y axis from
    zero to the largest value and the first, middle and last days on the x axis."""
    columns = section["columns"][1:]
    rows = section["rows"]
    body, legend_height = _legend(columns, 0, lines=True)
    left, right = 34, WIDTH - 8
    plot_top = legend_height + 10
    plot_bottom = plot_top + 140
    peak = max((_number(v) for row in rows for v in row[1:]), default=0.0)
    top = peak if peak > 0 else 1.0
    for tick in (0.0, top / 2, top):
        y = round(plot_bottom - (plot_bottom - plot_top) * tick / top, 1)
        body.append(_LINE.format(left, y, right, y, "#9aa3ad", 0.5, "none"))
        body.append(_text(left - 4, y + 4, _shown(tick), "end"))
    count = len(rows)
    step = (right - left) / (count - 1) if count > 1 else 0.0
    for part in range(len(columns)):
        points = " ".join(
            f"{left + index * step:.1f},"
            f"{plot_bottom - (plot_bottom - plot_top) * _number(row[part + 1]) / top:.1f}"
            for index, row in enumerate(rows)
        )
        dash = DASHES[part % len(DASHES)] or "none"
        body.append(_POLYLINE.format(points, PALETTE[part % len(PALETTE)], dash))
    if rows:
        for index in sorted({0, count // 2, count - 1}):
            anchor = "start" if index == 0 else "end" if index == count - 1 else "middle"
            body.append(
                _text(left + index * step, plot_bottom + 16, str(rows[index][0])[5:], anchor)
            )
    label = f"{section['title']}: line chart over time; the table that follows gives the values"
    return _svg(plot_bottom + 24, label, body)


CHARTS = {"bars": bars, "stacked": stacked, "series": series}


def chart(section: Mapping[str, Any]) -> Markup:
    """The section's chart, or nothing when it has none (or no rows)."""
    draw = CHARTS.get(section.get("chart") or "")
    if draw is None or not section.get("rows"):
        return Markup("")
    return draw(section)
