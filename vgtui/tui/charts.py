"""The chart widgets: each a PlotextPlot subclass whose `replot(frame)` redraws it from plain data.

Log-scaled quantities are drawn as log10 values on a linear axis with decade labels (1e-8 … 1e0);
plotext's own log scale breaks on the second build. Every series is decimated to the chart's width.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

from vgtui.contract import Event, Snapshot
from vgtui.history import HistoryView
from vgtui.tui.series import (
    decade_ticks,
    finite_xy,
    layer_ticks,
    log10_safe,
    log_range,
    minmax_decimate,
    pick_layers,
    step_ticks,
    stride_decimate,
)

LAYER_COLORS = ("red", "orange", "yellow", "cyan", "green")
LINE = "braille"  # 2×4 dots per cell: the finest lines plotext draws
MARKER_COLOR = "magenta"
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


class Chart(PlotextPlot):
    """A PlotextPlot that draws only what its last `replot` gave it."""

    TITLE = ""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.plt._limit_size(False, False)
        self.markers: list[str] = []  # labels of the event markers drawn by the last replot

    @property
    def columns(self) -> int:
        """How many points are worth drawing: about the plot area's width in columns."""
        return max(20, self.size.width - 8) if self.size.width else 120

    def render(self) -> RenderResult:
        """Build the plot; a plotext failure shows as a line of text instead of ending the app."""
        try:
            return super().render()
        except Exception as exc:  # noqa: BLE001 - plotext has edge cases (e.g. legends of empty series)
            return Text(f"(chart could not be drawn: {type(exc).__name__}: {exc})", style="dim")

    def begin(self, title: str) -> None:
        self.plt.clear_data()
        self.plt.title(title)
        self.markers = []

    def replot(self, frame: Frame) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def set_log_y(self, lo: float, hi: float) -> None:
        ticks, labels = decade_ticks(lo, hi, max_ticks=max(2, (self.size.height or 12) // 3))
        self.plt.ylim(lo, hi)
        self.plt.yticks(ticks, labels)

    def set_step_x(self, x_lo: float, x_hi: float) -> None:
        self.plt.xlim(x_lo, x_hi)
        self.plt.xticks(*step_ticks(x_lo, x_hi, max_ticks=max(2, self.columns // 12)))

    def draw_markers(self, events: tuple[Event, ...], x_lo: float, x_hi: float, y_top: float) -> None:
        """A vertical line per event inside the x range, labelled at the top (last MAX_MARKERS only)."""
        shown = [e for e in events if e.name not in HIDDEN_EVENTS and x_lo <= e.step <= x_hi][-MAX_MARKERS:]
        span = max(1.0, x_hi - x_lo)
        last_x = None
        for e in shown:
            self.plt.vline(e.step, MARKER_COLOR)
            self.markers.append(e.label)
            # Skip a label that would overlap the previous one (about 12 columns apart).
            if last_x is None or (e.step - last_x) / span * self.columns > 12:
                self.plt.text(e.label, e.step, y_top, color=MARKER_COLOR, alignment="left")
                last_x = e.step

    def show_waiting(self, title: str) -> None:
        self.begin(title + " — waiting for data")
        self.refresh()


class LossChart(Chart):
    """Loss (left axis) and accuracy (right axis) over steps, with event markers."""

    def replot(self, frame: Frame) -> None:
        v = frame.view
        self.begin("loss (cyan) · accuracy (green, right)" if self.columns > 40 else "loss · acc")
        if len(v) == 0:
            return self.show_waiting("loss")
        x, loss = minmax_decimate(v.steps, v["loss"], self.columns)
        lx, ly = finite_xy(x, loss)
        if lx:
            self.plt.plot(lx, ly, color="cyan", marker=LINE)
        xa, acc = stride_decimate(v.steps, v["acc"], self.columns)
        ax, ay = finite_xy(xa, acc)
        if ax:
            self.plt.plot(ax, ay, color="green", yside="right", marker=LINE)
            self.plt.ylim(0, 1, yside="right")
        x_lo, x_hi = float(v.steps[0]), float(max(v.steps[-1], v.steps[0] + 1))
        self.set_step_x(x_lo, x_hi)
        y_top = max(ly) if ly else 1.0
        y_lo = min(ly) if ly else 0.0
        self.plt.ylim(min(0.0, y_lo), y_top * 1.05 if y_top > 0 else 1.0)
        self.draw_markers(frame.snap.events, x_lo, x_hi, y_top * 1.05 if y_top > 0 else 1.0)
        self.refresh()


class GradBarsChart(Chart):
    """Current gradient norm of every layer (log axis), layer 1 (input) … N (output); selected layer highlighted."""

    def replot(self, frame: Frame) -> None:
        s = frame.snap
        n = len(s.grad_norm)
        self.begin(f"gradient norm per layer, now (log) · step {s.step}")
        if n == 0:
            return self.show_waiting("gradient norm per layer")
        y = log10_safe(s.grad_norm)
        lo, hi = log_range(y)
        y = np.clip(y, lo, hi)
        lo -= 1
        xs, ys = finite_xy(np.arange(1, n + 1), y)
        sel = frame.selected
        has_sel = 0 <= sel < n and bool(np.isfinite(y[sel]))
        if self.columns >= 3 * n:  # room for separate bars
            if xs:
                self.plt.bar(xs, ys, color="orange", minimum=lo, width=0.6, reset_ticks=False)
            if has_sel:
                self.plt.bar([sel + 1], [float(y[sel])], color="cyan", minimum=lo, width=0.6, reset_ticks=False)
        else:  # too narrow for bars: a line through the layers, one dot each
            if xs:
                self.plt.plot(xs, ys, color="orange", marker=LINE)
                self.plt.scatter(xs, ys, color="orange", marker="dot")
            if has_sel:
                self.plt.scatter([sel + 1], [float(y[sel])], color="cyan", marker="●")
        self.plt.xlim(0.4, n + 0.6)
        ticks = layer_ticks(n, max(2, self.columns // 5))
        self.plt.xticks(ticks, [str(t) for t in ticks])
        self.set_log_y(lo, hi)
        self.plt.xlabel("layer (1 = input side)")
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
        if self.LOG:  # values below the floor sit on the bottom edge (a point outside breaks plotext's legend)
            lo, hi = log_range(*series)
            series = [np.clip(y, lo, hi) for y in series]
        for color, i, y in zip(LAYER_COLORS, picked, series, strict=False):
            px, py = finite_xy(x, y)
            if px:
                self.plt.plot(px, py, color=color, label=layer_label(i, frame.snap.layer_names), marker=LINE)
        x_lo, x_hi = float(x[0]), float(max(x[-1], x[0] + 1))
        self.set_step_x(x_lo, x_hi)
        if self.LOG:
            self.set_log_y(lo, hi)
            top = hi
        else:
            finite = np.concatenate([y[np.isfinite(y)] for y in series]) if series else np.array([])
            lo_v = float(finite.min()) if finite.size else 0.0
            hi_v = float(finite.max()) if finite.size else 1.0
            pad = max(1e-6, (hi_v - lo_v) * 0.1, abs(hi_v) * 0.01)
            bottom, top = lo_v - pad, hi_v + pad
            self.plt.ylim(bottom, top)
        self.draw_markers(frame.snap.events, x_lo, x_hi, top)
        self.refresh()


class WeightChart(GradHistoryChart):
    """Mean |w| per layer over steps ("epoch vs weight value"): a flat line is a layer that stopped learning."""

    QUANTITY = "weight_mean_abs"
    TITLE = "mean |w| over steps (flat = not learning)"
    LOG = False


class UpdateRatioChart(GradHistoryChart):
    """‖ΔW‖/‖W‖ per step over steps (log axis); around 1e-3 is healthy, far below means frozen."""

    QUANTITY = "update_ratio"
    TITLE = "update ratio ‖ΔW‖/‖W‖ (log)"
    LOG = True


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
        cx, cy = finite_xy(centers[keep], counts[keep])
        if cx:
            width = float(edges[1] - edges[0]) * 0.8
            self.plt.bar(cx, cy, color="orange", width=width, reset_ticks=False)
        ticks, labels = decade_ticks(float(edges[0]), float(edges[-1]), max_ticks=max(2, self.columns // 8))
        self.plt.xlim(float(edges[0]), float(edges[-1]))
        self.plt.xticks(ticks, labels)
        top = max(cy) if cy else 1.0
        self.plt.ylim(0, top * 1.1)
        self.plt.yticks([0, top / 2, top], ["0", f"{top / 2:.0f}", f"{top:.0f}"])
        self.refresh()


class TimeGradChart(Chart):
    """RNN: gradient norm reaching each time step, first → last (log axis)."""

    def replot(self, frame: Frame) -> None:
        s = frame.snap
        self.begin("RNN: ‖∂L/∂h_t‖ per time step (log)" if self.columns > 36 else "‖∂L/∂h_t‖ per step")
        if s.time_grad_norm is None or len(s.time_grad_norm) == 0:
            return self.show_waiting("gradient per time step")
        y = log10_safe(s.time_grad_norm)
        lo, hi = log_range(y)
        y = np.clip(y, lo, hi)
        t = np.arange(1, len(y) + 1)
        t, y = stride_decimate(t, y, self.columns)
        px, py = finite_xy(t, y)
        if px:
            self.plt.plot(px, py, color="orange", marker=LINE)
        self.set_log_y(lo, hi)
        self.plt.xlim(1, max(2, len(s.time_grad_norm)))
        ticks = layer_ticks(len(s.time_grad_norm), max(2, self.columns // 7))
        self.plt.xticks(ticks, [str(t) for t in ticks])
        self.plt.xlabel("time step t (1 = first input)")
        self.refresh()
