"""The chart widgets' common part: the Chart widget (a cached Line API renderer of one `Plot`), the Frame of data
one redraw may use, and the colours and marks of the series.

Colours follow the app's theme (dark or light); every line also has its own mark character, so the series
stay apart without colour (NO_COLOR, 16 colours).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from textual.content import Content
from textual.strip import Strip
from textual.widget import Widget

from vgtui.contract import Event, Snapshot
from vgtui.history import HistoryView
from vgtui.tui.plot import Axis, Plot, message_rows
from vgtui.tui.series import decade_ticks, linear_ticks, short_int, step_ticks

MAX_MARKERS = 6
HIDDEN_EVENTS = ("hist_layer",)
SERIES_MARKS = ("●", "■", "▲", "◆", "✚")  # one per line of a chart, in the legend too


@dataclass(frozen=True)
class Palette:
    """Series colours for one kind of background. The five layer colours are distinct in 16 colours too."""

    layers: tuple[str, ...]
    bar: str
    selected: str
    loss: str
    acc: str
    marker: str


DARK = Palette(
    ("bright_red", "bright_yellow", "bright_green", "bright_cyan", "bright_blue"),
    "dark_orange", "bright_cyan", "bright_cyan", "bright_green", "magenta1",
)  # fmt: skip
LIGHT = Palette(
    ("red3", "dark_goldenrod", "green4", "dark_cyan", "blue3"),
    "dark_orange3", "blue3", "blue3", "green4", "magenta3",
)  # fmt: skip


@dataclass(frozen=True)
class Frame:
    """What one redraw may use: the newest snapshot, a decimated history copy (from step `since` on, where the
    charts were cleared), the selected layer (0-based)."""

    snap: Snapshot
    view: HistoryView
    selected: int
    since: int | None = None
    view_b: HistoryView | None = None  # comparing: run B's history in the same window (snap.compare.b its latest)

    def x_range(self, x: np.ndarray) -> tuple[float, float]:
        """The step axis: from the clear (or the first row) to the newest row."""
        lo = float(self.since) if self.since is not None else float(x[0])
        return lo, float(max(x[-1], lo + 1))

    def title(self, title: str) -> str:
        return title if self.since is None else f"{title} · since step {short_int(self.since)}"


def layer_label(i: int, names: tuple[str, ...] = ()) -> str:
    """The legend name of layer i: the engine's name when it has one that is not just 'L<n>' (RNN parts)."""
    return names[i] if i < len(names) and not names[i].startswith("L") else f"L{i + 1}"


class Chart(Widget):
    """A chart that draws only what its last `replot` put into `self.plot` (title in the border)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.plot = Plot()
        self.markers: list[str] = []  # labels of the event markers drawn by the last replot
        self._title = ""
        self._strips: list[Strip] | None = None
        self._strips_size = (0, 0)

    @property
    def columns(self) -> int:
        """How many points are worth drawing: about the plot area's width in columns."""
        return max(20, self.size.width - 8) if self.size.width else 120

    @property
    def rows(self) -> int:
        return self.size.height or 12

    def render_line(self, y: int) -> Strip:
        """One row of the chart; the whole chart is rendered once per replot or resize, then cached."""
        width, height = self.size
        if self._strips is None or self._strips_size != (width, height):
            self._strips = self._render_strips(width, height)
            self._strips_size = (width, height)
        return self._strips[y] if 0 <= y < len(self._strips) else Strip.blank(width)

    @property
    def palette(self) -> Palette:
        """The colours for the app's theme: light backgrounds get darker series."""
        try:
            return DARK if self.app.current_theme.dark else LIGHT
        except Exception:  # noqa: BLE001 - not mounted (tests that build a chart alone)
            return DARK

    def _render_strips(self, width: int, height: int) -> list[Strip]:
        """The plot's rows on the widget's own (theme) background and colour; a failure shows as a line of text
        instead of ending the app."""
        try:
            strips = self.render_plot(width, height)
        except Exception as exc:  # noqa: BLE001 - a chart must never take the dashboard down
            strips = message_rows(f"(chart could not be drawn: {type(exc).__name__}: {exc})", width, height)
        try:
            base = self.rich_style
        except Exception:  # noqa: BLE001 - not mounted
            return strips
        return [strip.apply_style(base) for strip in strips]

    def render_plot(self, width: int, height: int) -> list[Strip]:
        return self.plot.render(width, height)

    def rendered_text(self) -> str:
        """The chart as plain text at its current size (for tests and debugging)."""
        width, height = self.size
        return "\n".join(strip.text for strip in self._render_strips(width or 60, height or 16))

    def begin(self, title: str) -> None:
        self.plot = Plot()
        self._strips = None
        self.markers = []
        if title != self._title:
            self._title = title
            self.border_title = Content(title)

    def replot(self, frame: Frame) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def set_log_y(self, lo: float, hi: float) -> None:
        ticks, labels = decade_ticks(lo, hi, max_ticks=max(2, self.rows // 3))
        self.plot.y = Axis(lo, hi, ticks, labels)

    def set_linear_y(self, lo: float, hi: float, right: bool = False) -> None:
        ticks, labels = linear_ticks(lo, hi, max_ticks=max(2, self.rows // 3))
        axis = Axis(lo, hi, ticks, labels)
        if right:
            self.plot.y2 = axis
        else:
            self.plot.y = axis

    def set_step_x(self, x_lo: float, x_hi: float) -> None:
        self.plot.x = Axis(x_lo, x_hi, *step_ticks(x_lo, x_hi, max_ticks=max(2, self.columns // 8)))

    def draw_markers(self, events: tuple[Event, ...], x_lo: float, x_hi: float) -> None:
        """A vertical line per event inside the x range, labelled at the top (last MAX_MARKERS only); the
        events before the range (e.g. before the charts were cleared) are not drawn."""
        shown = [e for e in events if e.name not in HIDDEN_EVENTS and x_lo <= e.step <= x_hi][-MAX_MARKERS:]
        for e in shown:
            self.plot.vline(e.step, self.palette.marker, e.label)
            self.markers.append(e.label)

    def show_waiting(self, title: str) -> None:
        self.begin(title)
        self.plot.note = "waiting for data…"
        self.refresh()
