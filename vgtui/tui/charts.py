"""The chart widgets: each a Textual widget whose `replot(frame)` describes the chart and whose lines come
from `vgtui.tui.plot` (numpy braille and block rendering, Line API: no Rich layout per frame).

Log-scaled quantities are drawn as log10 values on a linear axis with decade labels (1e-8 … 1e0).
Every series is decimated to the chart's width. The widget base, colours and marks: `vgtui.tui.chart_base`.
"""

from __future__ import annotations

import numpy as np
from textual.strip import Strip

from vgtui.tui.chart_base import SERIES_MARKS, Chart, Frame, layer_label
from vgtui.tui.plot import Axis, Plot
from vgtui.tui.series import (
    decade_ticks,
    frozen_layers,
    layer_ticks,
    log10_safe,
    log_range,
    minmax_decimate,
    pick_layers,
    stride_decimate,
)

LOSS_LOG_DECADES = 2.0  # the loss axis turns logarithmic where the loss in view spans more than this
STACK_MIN_ROWS = 8  # below this height the loss chart leaves out its accuracy pane (the status bar has it)

__all__ = ["Chart", "Frame"]  # re-exported: the app and the tests take every chart from here


class LossChart(Chart):
    """Loss over steps and, below it on its own 0-100 % scale, the accuracy; both with the event markers.

    The loss axis is logarithmic where the loss in view spans more than LOSS_LOG_DECADES decades: after a
    spike (1e3, 1e14) a linear axis would flatten the real loss to a line at 0.
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.acc_plot: Plot | None = None
        self.log_axis = False

    def replot(self, frame: Frame) -> None:
        v = frame.view
        pal = self.palette
        self.acc_plot = None
        if len(v) == 0:
            return self.show_waiting(frame.title("loss over steps"))
        x, loss = minmax_decimate(v.steps, v["loss"], self.columns)
        xa, acc = stride_decimate(v.steps, v["acc"], self.columns)
        has_acc = bool(np.isfinite(acc).any())
        self.log_axis = loss_spans_decades(loss, LOSS_LOG_DECADES)
        self.begin(frame.title(("loss (log)" if self.log_axis else "loss") + (" and accuracy" if has_acc else "")))
        if self.log_axis:  # values at or below 0 (none for a cross-entropy) sit on the bottom edge
            y = log10_safe(loss)
            lo, hi = log_range(y)
            y = np.where(np.isfinite(loss) & (loss <= 0), lo, np.clip(y, lo, hi))
            self.plot.line(x, y, pal.loss, label="loss (log axis)", mark=SERIES_MARKS[0])
            self.set_log_y(lo, hi)
        else:
            finite = loss[np.isfinite(loss)]
            top = float(finite.max()) * 1.05 if finite.size and finite.max() > 0 else 1.0
            bottom = min(0.0, float(finite.min())) if finite.size else 0.0
            self.plot.line(x, loss, pal.loss, label="loss", mark=SERIES_MARKS[0])
            self.set_linear_y(bottom, top)
        x_lo, x_hi = frame.x_range(v.steps)
        self.set_step_x(x_lo, x_hi)
        self.draw_markers(frame.snap.events, x_lo, x_hi)
        if has_acc:
            p = self.acc_plot = Plot()
            p.x, p.labels = self.plot.x, False
            p.y = Axis(0.0, 1.0, [0.0, 0.5, 1.0], ["0%", "50%", "100%"])
            p.line(xa, acc, pal.acc, mark=SERIES_MARKS[1])
            for line in self.plot._vlines:
                p.vline(line.x, line.color)
        self.refresh()

    def render_plot(self, width: int, height: int) -> list[Strip]:
        """The loss above, the accuracy below on one step axis, each scale labelled in its series' colour; the
        loss alone where the chart is short."""
        acc = self.acc_plot
        if acc is None or height < STACK_MIN_ROWS:
            return self.plot.render(width, height)
        acc_rows = max(4, height * 2 // 5)  # its plot rows, the step axis and its labels
        loss, legend = self.plot, list(self.plot.legend)
        loss.x_axis, loss.y_color, acc.y_color = False, self.palette.loss, self.palette.acc
        loss.legend = [*legend, ("accuracy (below)", self.palette.acc, SERIES_MARKS[1])]
        try:
            return render_stacked([(loss, height - acc_rows), (acc, acc_rows)], width)
        finally:
            loss.x_axis, loss.y_color, loss.legend = True, "", legend


def render_stacked(panes: list[tuple[Plot, int]], width: int) -> list[Strip]:
    """Plots one above the other (each with its height in rows), their y axes in one column."""
    left = max((max((len(s) for s in p.y.labels), default=0) + 1 for p, _ in panes), default=0)
    rows: list[Strip] = []
    for plot, height in panes:
        plot.left_min = left
        rows += plot.render(width, height)
    return rows


def loss_spans_decades(loss: np.ndarray, decades: float) -> bool:
    """Whether the positive finite values span more than `decades` powers of ten."""
    values = np.asarray(loss, dtype=np.float64)
    values = values[np.isfinite(values) & (values > 0)]
    return bool(values.size) and float(np.log10(values.max() / values.min())) > decades


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
        pal = self.palette
        if self.columns >= 3 * n:  # room for separate bars
            self.plot.bars(layers, y, pal.bar, width=0.6)
            if has_sel:
                self.plot.bars([sel + 1], [y[sel]], pal.selected, width=0.6)
        else:  # too narrow for bars: a line through the layers, one dot each
            self.plot.line(layers, y, pal.bar)
            self.plot.marks(layers, y, pal.bar, "•")
            if has_sel:
                self.plot.marks([sel + 1], [y[sel]], pal.selected, "●")
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
        title = frame.title(self.TITLE)
        self.begin(title)
        data = v.layers.get(self.QUANTITY)
        if len(v) == 0 or data is None or data.shape[1] == 0:
            return self.show_waiting(title)
        x, rows = stride_decimate(v.steps, data, self.columns)
        colors = self.palette.layers
        picked = pick_layers(data.shape[1], len(colors))
        if frame.selected not in picked and 0 <= frame.selected < data.shape[1]:
            picked = sorted({*picked[:-1], frame.selected, picked[-1]})[-len(colors) :]
        series = [log10_safe(rows[:, i]) if self.LOG else rows[:, i] for i in picked]
        if self.LOG:  # values below the floor sit on the bottom edge
            lo, hi = log_range(*series)
            series = [np.clip(y, lo, hi) for y in series]
        for k, (i, y) in enumerate(zip(picked, series, strict=True)):
            self.plot.line(x, y, colors[k], label=self.series_label(i, frame), mark=SERIES_MARKS[k])
        x_lo, x_hi = frame.x_range(x)
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
        named = {name for name, _, _ in self.plot.legend}
        for k, i in enumerate(picked):
            color = self.palette.layers[k]
            g = grads[:, i] if grads is not None and grads.shape == rows.shape else np.ones(len(rows))
            zero = frozen_layers(rows[:, i], g)
            if zero.any():
                self.plot.marks(x[zero], np.full(int(zero.sum()), lo), color, self.FROZEN)
                marked = True
                label = self.series_label(i, frame)
                if label not in named:  # frozen all along: no line, but named in the legend, in layer order
                    at = sum(1 for j in picked if j < i and self.series_label(j, frame) in named)
                    self.plot.legend.insert(at, (label, color, SERIES_MARKS[k]))
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
        self.plot.bars(centers[keep], counts[keep], self.palette.bar, width=float(edges[1] - edges[0]) * 0.8)
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
        pal = self.palette
        self.plot.line(t, y, pal.bar, label=None if yc is None else "‖∂L/∂h_t‖", mark=SERIES_MARKS[0])
        if yc is not None:
            self.plot.line(t, stride_decimate(steps, np.clip(yc, lo, hi), self.columns)[1], pal.selected,
                           label="‖∂L/∂c_t‖ (cell state)", mark=SERIES_MARKS[1])  # fmt: skip
        self.set_log_y(lo, hi)
        steps = len(s.time_grad_norm)
        self.plot.x = Axis.counted(1.0, float(max(2, steps)), layer_ticks(steps, max(2, self.columns // 7)))
        self.plot.xlabel = "time step t (1 = first input)"
        self.refresh()
