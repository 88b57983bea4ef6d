"""The chart widgets: each a Textual widget whose `replot(frame)` describes the chart and whose lines come
from `vgtui.tui.plot` (numpy braille and block rendering, Line API: no Rich layout per frame).

Log-scaled quantities are drawn as log10 values on a linear axis with decade labels (1e-8 … 1e0).
Every series is decimated to the chart's width.
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
from vgtui.tui.series import (
    decade_ticks,
    frozen_layers,
    layer_ticks,
    linear_ticks,
    log10_safe,
    log_range,
    minmax_decimate,
    pick_layers,
    step_ticks,
    stride_decimate,
)

LAYER_COLORS = ("red1", "dark_orange", "yellow1", "cyan", "green")
BAR = "dark_orange"
MARKER_COLOR = "magenta1"
MAX_MARKERS = 6
HIDDEN_EVENTS = ("hist_layer",)


@dataclass(frozen=True)
class Frame:
    """What one redraw may use: the newest snapshot, a decimated history copy, the selected layer (0-based)."""

    snap: Snapshot
    view: HistoryView
    selected: int


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

    def _render_strips(self, width: int, height: int) -> list[Strip]:
        """The plot's rows; a failure shows as a line of text instead of ending the app."""
        try:
            return self.plot.render(width, height)
        except Exception as exc:  # noqa: BLE001 - a chart must never take the dashboard down
            return message_rows(f"(chart could not be drawn: {type(exc).__name__}: {exc})", width, height)

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
        """A vertical line per event inside the x range, labelled at the top (last MAX_MARKERS only)."""
        shown = [e for e in events if e.name not in HIDDEN_EVENTS and x_lo <= e.step <= x_hi][-MAX_MARKERS:]
        for e in shown:
            self.plot.vline(e.step, MARKER_COLOR, e.label)
            self.markers.append(e.label)

    def show_waiting(self, title: str) -> None:
        self.begin(title)
        self.plot.note = "waiting for data…"
        self.refresh()


class LossChart(Chart):
    """Loss (left axis) and accuracy (right axis) over steps, with event markers."""

    def replot(self, frame: Frame) -> None:
        v = frame.view
        self.begin("loss and accuracy over steps")
        if len(v) == 0:
            return self.show_waiting("loss")
        x, loss = minmax_decimate(v.steps, v["loss"], self.columns)
        self.plot.line(x, loss, "cyan", label="loss")
        xa, acc = stride_decimate(v.steps, v["acc"], self.columns)
        if np.isfinite(acc).any():
            self.plot.line(xa, acc, "green", label="accuracy (right axis)", right=True)
            self.set_linear_y(0.0, 1.0, right=True)
        finite = loss[np.isfinite(loss)]
        top = float(finite.max()) * 1.05 if finite.size and finite.max() > 0 else 1.0
        bottom = min(0.0, float(finite.min())) if finite.size else 0.0
        self.set_linear_y(bottom, top)
        x_lo, x_hi = float(v.steps[0]), float(max(v.steps[-1], v.steps[0] + 1))
        self.set_step_x(x_lo, x_hi)
        self.draw_markers(frame.snap.events, x_lo, x_hi)
        self.refresh()


class GradBarsChart(Chart):
    """Current gradient norm of every layer (log axis), layer 1 (input) … N (output); selected layer highlighted."""

    def replot(self, frame: Frame) -> None:
        s = frame.snap
        n = len(s.grad_norm)
        at = s.grad_step if 0 < s.grad_step < s.step else s.step  # a diverged run: its last finite gradients
        when = f"(log) · step {at:,} · the last finite" if at != s.step else f"now (log) · step {at:,}"
        self.begin(f"gradient norm per layer, {when}")
        if n == 0:
            return self.show_waiting("gradient norm per layer")
        y = log10_safe(s.grad_norm)
        lo, hi = log_range(y)
        y = np.clip(y, lo, hi)
        lo -= 1  # the smallest bar is still a decade tall
        layers = np.arange(1, n + 1)
        sel = frame.selected
        has_sel = 0 <= sel < n and bool(np.isfinite(y[sel]))
        if self.columns >= 3 * n:  # room for separate bars
            self.plot.bars(layers, y, BAR, width=0.6)
            if has_sel:
                self.plot.bars([sel + 1], [y[sel]], "cyan", width=0.6)
        else:  # too narrow for bars: a line through the layers, one dot each
            self.plot.line(layers, y, BAR)
            self.plot.marks(layers, y, BAR, "•")
            if has_sel:
                self.plot.marks([sel + 1], [y[sel]], "cyan", "●")
        self.plot.x = Axis.counted(0.4, n + 0.6, layer_ticks(n, max(2, self.columns // 5)))
        self.set_log_y(lo, hi)
        self.plot.xlabel = "layer (1 = input side)"
        self.refresh()


class GradHistoryChart(Chart):
    """Gradient norm over steps (log axis), one line for each of up to five layers from first to last."""

    QUANTITY = "grad_norm"
    TITLE = "gradient norm over steps (log)"
    LOG = True

    def replot(self, frame: Frame) -> None:
        v = frame.view
        self.begin(self.TITLE)
        data = v.layers.get(self.QUANTITY)
        if len(v) == 0 or data is None or data.shape[1] == 0:
            return self.show_waiting(self.TITLE)
        x, rows = stride_decimate(v.steps, data, self.columns)
        picked = pick_layers(data.shape[1])
        if frame.selected not in picked and 0 <= frame.selected < data.shape[1]:
            picked = sorted({*picked[:-1], frame.selected, picked[-1]})[-len(LAYER_COLORS) :]
        series = [log10_safe(rows[:, i]) if self.LOG else rows[:, i] for i in picked]
        if self.LOG:  # values below the floor sit on the bottom edge
            lo, hi = log_range(*series)
            series = [np.clip(y, lo, hi) for y in series]
        for color, i, y in zip(LAYER_COLORS, picked, series, strict=False):
            self.plot.line(x, y, color, label=self.series_label(i, frame))
        x_lo, x_hi = float(x[0]), float(max(x[-1], x[0] + 1))
        self.set_step_x(x_lo, x_hi)
        if self.LOG:
            self.set_log_y(lo, hi)
            self.mark_floor(frame, x, rows, picked, lo)
        else:
            finite = np.concatenate([y[np.isfinite(y)] for y in series]) if series else np.array([])
            lo_v = float(finite.min()) if finite.size else 0.0
            hi_v = float(finite.max()) if finite.size else 1.0
            pad = max(1e-6, (hi_v - lo_v) * 0.1, abs(hi_v) * 0.01)
            self.set_linear_y(lo_v - pad, hi_v + pad)
        self.draw_markers(frame.snap.events, x_lo, x_hi)
        self.refresh()

    def series_label(self, i: int, frame: Frame) -> str:
        return layer_label(i, frame.snap.layer_names)

    def mark_floor(self, frame: Frame, x: np.ndarray, rows: np.ndarray, picked: list[int], lo: float) -> None:
        """Values a log axis cannot show (e.g. an exact 0): marked on the bottom edge in a subclass."""


class WeightChart(GradHistoryChart):
    """Mean |w| per layer over steps ("epoch vs weight value"): a flat line is a layer that stopped learning."""

    QUANTITY = "weight_mean_abs"
    TITLE = "mean |w| over steps (flat = not learning)"
    LOG = False


class UpdateRatioChart(GradHistoryChart):
    """‖ΔW‖/‖W‖ per step over steps (log axis); around 1e-3 is healthy, far below means frozen.

    A layer whose weights did not move at all (ratio exactly 0 with a gradient that is not 0: the update fell
    below float32 resolution) has no place on a log axis: its steps are a gap marked × on the bottom edge,
    its legend entry says ×, and the line under the axis says what × means.
    """

    QUANTITY = "update_ratio"
    TITLE = "update ratio ‖ΔW‖/‖W‖ (log)"
    LOG = True
    FROZEN = "×"

    def series_label(self, i: int, frame: Frame) -> str:
        label = layer_label(i, frame.snap.layer_names)
        frozen = frozen_layers(frame.snap.update_ratio, frame.snap.grad_norm)
        return f"{label} {self.FROZEN}" if i < len(frozen) and frozen[i] else label

    def mark_floor(self, frame: Frame, x: np.ndarray, rows: np.ndarray, picked: list[int], lo: float) -> None:
        grad = frame.view.layers.get("grad_norm")
        grads = stride_decimate(frame.view.steps, grad, self.columns)[1] if grad is not None else None
        marked = False
        named = {name for name, _ in self.plot.legend}
        for color, i in zip(LAYER_COLORS, picked, strict=False):
            g = grads[:, i] if grads is not None and grads.shape == rows.shape else np.ones(len(rows))
            zero = frozen_layers(rows[:, i], g)
            if zero.any():
                self.plot.marks(x[zero], np.full(int(zero.sum()), lo), color, self.FROZEN)
                marked = True
                label = self.series_label(i, frame)
                if label not in named:  # frozen all along: no line, but named in the legend, in layer order
                    at = sum(1 for j in picked if j < i and self.series_label(j, frame) in named)
                    self.plot.legend.insert(at, (label, color))
                    named.add(label)
        now = frozen_layers(frame.snap.update_ratio, frame.snap.grad_norm)
        if marked or now.any():
            text = "frozen: below float32 resolution"
            count = f" · {int(now.sum())}/{len(now)} layers now" if now.any() else ""
            room = (self.size.width or 80) - max((len(s) for s in self.plot.y.labels), default=0) - 1  # beside y labels
            longest_first = (f"{self.FROZEN} {text} (ΔW = 0){count}", f"{self.FROZEN} {text} (ΔW = 0)",
                             f"{self.FROZEN} {text}", text)  # fmt: skip
            self.plot.xlabel = next((t for t in longest_first if len(t) <= room), f"{self.FROZEN} frozen (ΔW = 0)")


class HistogramChart(Chart):
    """Histogram of log10|g| of one layer's gradient entries."""

    def replot(self, frame: Frame) -> None:
        s = frame.snap
        edges, counts = np.asarray(s.hist_edges, dtype=float), np.asarray(s.hist_counts, dtype=float)
        layer = s.hist_layer + 1
        note = "" if s.hist_layer == frame.selected else f" (selected L{frame.selected + 1})"
        self.begin(f"gradient histogram, layer {layer}{note} · log10|g|")
        if len(edges) < 2 or len(counts) != len(edges) - 1:
            return self.show_waiting("gradient histogram")
        centers = (edges[:-1] + edges[1:]) / 2
        keep = counts > 0
        self.plot.bars(centers[keep], counts[keep], BAR, width=float(edges[1] - edges[0]) * 0.8)
        ticks, labels = decade_ticks(float(edges[0]), float(edges[-1]), max_ticks=max(2, self.columns // 8))
        self.plot.x = Axis(float(edges[0]), float(edges[-1]), ticks, labels)
        top = float(counts[keep].max()) if keep.any() else 1.0
        self.plot.y = Axis(0.0, top * 1.1, [0.0, top / 2, top], ["0", f"{top / 2:.0f}", f"{top:.0f}"])
        self.refresh()


class TimeGradChart(Chart):
    """RNN: gradient norm reaching each time step, first → last (log axis); for an LSTM also the cell state's."""

    def replot(self, frame: Frame) -> None:
        s = frame.snap
        self.begin("RNN: ‖∂L/∂h_t‖ per time step (log)" if self.columns > 36 else "‖∂L/∂h_t‖ per step")
        if s.time_grad_norm is None or len(s.time_grad_norm) == 0:
            return self.show_waiting("gradient per time step")
        y = log10_safe(s.time_grad_norm)
        cell = s.time_cell_grad_norm
        yc = log10_safe(cell) if cell is not None and len(cell) == len(y) else None
        lo, hi = log_range(y) if yc is None else log_range(y, yc)
        steps = np.arange(1, len(y) + 1)
        t, y = stride_decimate(steps, np.clip(y, lo, hi), self.columns)
        self.plot.line(t, y, BAR, label=None if yc is None else "‖∂L/∂h_t‖")
        if yc is not None:
            self.plot.line(t, stride_decimate(steps, np.clip(yc, lo, hi), self.columns)[1], "cyan",
                           label="‖∂L/∂c_t‖ (cell state)")  # fmt: skip
        self.set_log_y(lo, hi)
        steps = len(s.time_grad_norm)
        self.plot.x = Axis.counted(1.0, float(max(2, steps)), layer_ticks(steps, max(2, self.columns // 7)))
        self.plot.xlabel = "time step t (1 = first input)"
        self.refresh()
