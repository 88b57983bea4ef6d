"""A small chart renderer on numpy: braille lines, block bars, axes and labels, straight to Textual Strips.

Why our own: a plotext chart is built cell by cell in pure Python, then encoded to ANSI and decoded
again by Rich. That cost 5-7 ms per chart, 34 of the 52 ms of a full 160×50 dashboard frame. Here the
lines are rasterised with a few numpy operations into a grid of braille dots (2×4 per cell), bars
into eighth blocks, and each row becomes a handful of Segments (one per colour run): well under a
millisecond per chart.

`Plot` holds what to draw in data coordinates; `Plot.render(width, height)` lays it out and returns one
Strip per row. No widget, no app: plain data in, Strips out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from vgtui.tui.canvas import SPACE, Canvas, cells_of

BRAILLE_BASE = 0x2800
VLINE = ord("│")
AXIS_STYLE = Style(dim=True)
LABEL_STYLE = Style()
NOTE_STYLE = Style(dim=True, italic=True)


@dataclass
class Axis:
    """Data range of an axis and its tick positions with their labels."""

    lo: float = 0.0
    hi: float = 1.0
    ticks: list[float] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    @classmethod
    def counted(cls, lo: float, hi: float, ticks: list[int]) -> Axis:
        """An axis of whole numbers (layers, time steps) labelled at `ticks`."""
        return cls(lo, hi, [float(t) for t in ticks], [str(t) for t in ticks])

    def span(self) -> float:
        return self.hi - self.lo if self.hi > self.lo else 1.0


@dataclass
class _Line:
    x: np.ndarray
    y: np.ndarray
    color: str
    right: bool
    mark: str | None = None  # a character drawn now and then along the line and at its end


@dataclass
class _Bars:
    x: np.ndarray
    y: np.ndarray
    color: str
    width: float


@dataclass
class _Marks:
    x: np.ndarray
    y: np.ndarray
    color: str
    char: str


@dataclass
class _VLine:
    x: float
    color: str
    label: str | None


class Plot:
    """What one chart shows, in data coordinates. Fill it, then `render(width, height)`."""

    def __init__(self) -> None:
        self.x = Axis()
        self.y = Axis()
        self.y2: Axis | None = None  # a right-hand axis, for series drawn with right=True
        self.xlabel = ""
        self.note = ""  # drawn centred in an empty plot (e.g. "waiting for data")
        self.legend: list[tuple[str, str, str]] = []  # (label, colour, mark)
        self.left_min = 0  # at least this many cells for the y labels (stacked plots align their axes)
        self.x_axis = True  # the x axis and its labels (a plot stacked above another leaves them to the lower one)
        self.y_color = ""  # the colour of the y labels (stacked plots: each scale in its series' colour)
        self.labels = True  # the labels of the vertical lines (the lower of stacked plots leaves them out)
        self._lines: list[_Line] = []
        self._bars: list[_Bars] = []
        self._marks: list[_Marks] = []
        self._vlines: list[_VLine] = []

    # ------------------------------------------------------------------ filling

    def line(self, x, y, color: str, label: str | None = None, right: bool = False, mark: str | None = None) -> None:
        """A polyline through the points (x, y); non-finite points are dropped. With a `mark`, that character is
        drawn every few columns along the line and at its end, and the legend shows it: series stay apart
        without colour (NO_COLOR, 16-colour terminals, colour-blind readers)."""
        xs, ys = _finite(x, y)
        if len(xs):
            self._lines.append(_Line(xs, ys, color, right, mark))
            if label:
                self.legend.append((label, color, mark or "●"))

    def bars(self, x, y, color: str, width: float = 0.8) -> None:
        """Vertical bars from the bottom of the y axis up to y, each `width` data units wide."""
        xs, ys = _finite(x, y)
        if len(xs):
            self._bars.append(_Bars(xs, ys, color, width))

    def marks(self, x, y, color: str, char: str = "•") -> None:
        """One character per point, at the cell that holds it."""
        xs, ys = _finite(x, y)
        if len(xs):
            self._marks.append(_Marks(xs, ys, color, char))

    def vline(self, x: float, color: str, label: str | None = None) -> None:
        """A vertical line across the plot (behind the data), with an optional label at the top."""
        self._vlines.append(_VLine(float(x), color, label))

    # ------------------------------------------------------------------ rendering

    def render(self, width: int, height: int) -> list[Strip]:
        """Lay out axes, labels and data in `width`×`height` cells; one Strip (exactly `width` cells) per row."""
        if width <= 0 or height <= 0:
            return [Strip.blank(max(0, width))] * max(0, height)
        left = max(max((len(s) for s in self.y.labels), default=0) + 1, self.left_min)
        right = max((len(s) for s in self.y2.labels), default=0) + 1 if self.y2 is not None else 0
        rows_top = 1 if self.legend else 0
        rows_bottom = [1, 1 if self.x.labels else 0, 1 if self.xlabel else 0] if self.x_axis else [0, 0, 0]
        pw = width - left - right
        # Give up the extras, least useful first, until the plot area has room.
        while height - rows_top - sum(rows_bottom) < min(2, height) and (rows_bottom[2] or rows_top or rows_bottom[1]):
            if rows_bottom[2]:
                rows_bottom[2] = 0
            elif rows_top:
                rows_top = 0
            else:
                rows_bottom[1] = 0
        ph = height - rows_top - sum(rows_bottom)
        if pw < 4 or ph < 1:
            return message_rows("(too small)", width, height)
        canvas = Canvas(pw, ph)
        self._draw(canvas)
        rows: list[Strip] = []
        if rows_top:
            rows.append(self._legend_row(width, left))
        rows.extend(self._plot_rows(canvas, width, left, right))
        if rows_bottom[0]:
            rows.append(self._axis_row(pw, left, right))
        if rows_bottom[1]:
            rows.append(self._tick_label_row(width, pw, left))
        if rows_bottom[2]:
            rows.append(_text_row(self.xlabel, width, left + max(0, (pw - len(self.xlabel)) // 2), LABEL_STYLE))
        return rows

    def _draw(self, c: Canvas) -> None:
        x = self.x
        for v in self._vlines:
            col = _cell(v.x, x, c.w)
            if 0 <= col < c.w and x.lo <= v.x <= x.hi:
                empty = c.codes[:, col] == SPACE
                c.codes[empty, col] = VLINE
                c.colors[empty, col] = c.color(v.color)
        for b in self._bars:
            c.bars(b, x, self.y)
        dots = np.zeros(c.h * c.w, dtype=np.uint32)
        for line in self._lines:
            axis = self.y2 if line.right and self.y2 is not None else self.y
            c.braille(dots, line, x, axis)
        has = dots > 0
        if has.any():
            c.codes.reshape(-1)[has] = BRAILLE_BASE + dots[has]
        marked = [line for line in self._lines if line.mark]
        for k, line in enumerate(marked):
            axis = self.y2 if line.right and self.y2 is not None else self.y
            c.line_marks(line, x, axis, k, len(marked))
        for m in self._marks:
            cols = cells_of(m.x, x.lo, x.span(), c.w)
            rows = cells_of(self.y.hi - m.y, 0.0, self.y.span(), c.h)
            c.codes[rows, cols] = ord(m.char[0])
            c.colors[rows, cols] = c.color(m.color)
        taken: list[tuple[int, int]] = []
        for v in reversed(self._vlines):  # labels last, on top of the data; the newest wins where they would overlap
            col = _cell(v.x, x, c.w)
            if v.label and self.labels and 0 <= col < c.w and x.lo <= v.x <= x.hi:
                text = v.label[: c.w]
                start = col + 1 if col + 1 + len(text) <= c.w else col - len(text)
                start = max(0, start)
                end = start + len(text)
                if all(end < a or start > b for a, b in taken):
                    c.text(0, start, text, v.color)
                    taken.append((start, end))
        if self.note and not (self._lines or self._bars or self._marks):
            text = self.note[: c.w]
            c.text(c.h // 2, max(0, (c.w - len(text)) // 2), text, "", italic=True)

    def _legend_row(self, width: int, left: int) -> Strip:
        segments = [Segment(" " * left)]
        used = left
        for label, color, mark in self.legend:
            piece = len(label) + 4
            if used + piece > width:
                break
            segments += [Segment(mark + " ", _style(color)), Segment(label + "  ", LABEL_STYLE)]
            used += piece
        segments.append(Segment(" " * (width - used)))
        return Strip(segments, width)

    def _plot_rows(self, c: Canvas, width: int, left: int, right: int) -> list[Strip]:
        y_marks = _tick_rows(self.y, c.h, left - 1, right_align=True)
        y_style = _style(self.y_color) if self.y_color else LABEL_STYLE
        y2_marks = _tick_rows(self.y2, c.h, right - 1, right_align=False) if self.y2 is not None else {}
        blank_left = " " * (left - 1)
        blank_right = " " * (right - 1)
        text = c.codes.astype("<u4").tobytes().decode("utf-32-le")
        styles = [_style(name) for name in c.palette]
        rows = []
        for r in range(c.h):
            label = y_marks.get(r)
            segments = [Segment(label if label is not None else blank_left, y_style)]
            segments.append(Segment("┤" if label is not None else "│", AXIS_STYLE))
            row_text = text[r * c.w : (r + 1) * c.w]
            colors = c.colors[r]
            cuts = np.flatnonzero(colors[1:] != colors[:-1]) + 1
            start = 0
            for end in [*cuts.tolist(), c.w]:
                segments.append(Segment(row_text[start:end], styles[colors[start]]))
                start = end
            if right:
                label2 = y2_marks.get(r)
                segments.append(Segment("├" if label2 is not None else "│", AXIS_STYLE))
                segments.append(Segment(label2 if label2 is not None else blank_right, LABEL_STYLE))
            rows.append(Strip(segments, width))
        return rows

    def _axis_row(self, pw: int, left: int, right: int) -> Strip:
        line = np.full(pw, ord("─"), dtype="<u4")
        for t in self.x.ticks:
            col = _cell(t, self.x, pw)
            if 0 <= col < pw and self.x.lo <= t <= self.x.hi:
                line[col] = ord("┬")
        text = "└" + line.tobytes().decode("utf-32-le") + ("┘" if right else "")
        return Strip(
            [Segment(" " * (left - 1)), Segment(text, AXIS_STYLE), Segment(" " * max(0, right - 1))], left + pw + right
        )

    def _tick_label_row(self, width: int, pw: int, left: int) -> Strip:
        segments = []
        used = 0  # cells filled so far; labels that would overlap the previous one are skipped
        for t, label in zip(self.x.ticks, self.x.labels, strict=False):
            if not (self.x.lo <= t <= self.x.hi) or len(label) > width:
                continue
            start = min(max(0, left + _cell(t, self.x, pw) - len(label) // 2), width - len(label))
            if start < used + (1 if used else 0):
                continue
            segments += [Segment(" " * (start - used)), Segment(label, LABEL_STYLE)]
            used = start + len(label)
        segments.append(Segment(" " * (width - used)))
        return Strip(segments, width)


def _finite(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    n = min(len(x), len(y))
    x, y = x[:n], y[:n]
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def _cell(value: float, axis: Axis, cells: int) -> int:
    """The column (0-based) of one value on a horizontal axis drawn over `cells` columns (as _cells)."""
    return min(max(math.floor((value - axis.lo) / axis.span() * cells), 0), cells - 1)


def _tick_rows(axis: Axis | None, rows: int, width: int, right_align: bool) -> dict[int, str]:
    """Plot row -> tick label (padded to `width`), the top tick first where two share a row."""
    out: dict[int, str] = {}
    if axis is None:
        return out
    for t, label in zip(axis.ticks, axis.labels, strict=False):
        if not (axis.lo <= t <= axis.hi):
            continue
        r = min(max(math.floor((axis.hi - t) / axis.span() * rows), 0), rows - 1)
        if r not in out:
            out[r] = label.rjust(width) if right_align else label.ljust(width)
    return out


_STYLES: dict[str, Style] = {}


def _style(name: str) -> Style:
    """A Rich Style from 'colour' or 'colour italic' ('' is the default colour), cached."""
    style = _STYLES.get(name)
    if style is None:
        style = _STYLES[name] = Style.parse(name) if name else Style()
    return style


def _text_row(text: str, width: int, start: int, style: Style) -> Strip:
    text = text[: max(0, width - start)]
    return Strip([Segment(" " * start), Segment(text, style), Segment(" " * (width - start - len(text)))], width)


def message_rows(text: str, width: int, height: int) -> list[Strip]:
    rows = [Strip.blank(width)] * height
    text = text[:width]
    rows[height // 2] = _text_row(text, width, max(0, (width - len(text)) // 2), NOTE_STYLE)
    return rows
