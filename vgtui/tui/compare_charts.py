"""The charts of a comparison: run A (the preset) and run B (forked from it with a remedy) on the same axes,
A in the loss colour, B in a second colour; the legend names B by its toggles and fork step ("B: relu @ 300").

`compare_replot(chart, frame)` draws any chart of the dashboard in its compare form, when `frame.snap.compare`
is set: the loss (and accuracy) of both, paired per-layer bars, the first and last layer of both over steps, A's
gradient histogram as bars with B's as a line, both runs' gradient through time. Event markers are B's (its fork
and toggles). No torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vgtui.contract import Snapshot
from vgtui.history import HistoryView
from vgtui.tui.chart_base import DARK, Chart, Frame
from vgtui.tui.charts import (
    LOSS_LOG_DECADES,
    GradBarsChart,
    GradHistoryChart,
    HistogramChart,
    LossChart,
    TimeGradChart,
    loss_spans_decades,
)
from vgtui.tui.plot import Axis, Plot
from vgtui.tui.series import decade_ticks, layer_ticks, log10_safe, log_range, minmax_decimate, stride_decimate

B_COLOUR = {True: "orange1", False: "dark_orange3"}  # dark theme, light theme
A_MARK, B_MARK = "●", "◆"
LAST_MARKS = ("■", "▲")  # the last layer's line: A, B


def colours(chart: Chart) -> tuple[str, str]:
    """(A's colour, B's colour) for the chart's theme."""
    pal = chart.palette
    return pal.loss, B_COLOUR[pal is DARK]


def b_label(frame: Frame, width: int = 200) -> str:
    """'B: leaky_relu+he @ 300', cut to fit a legend `width` wide."""
    label = frame.snap.compare.label if frame.snap.compare is not None else "B"
    return label if len(label) <= width else label[: max(1, width - 1)] + "…"


def compare_replot(chart: Chart, frame: Frame) -> None:
    """Draw `chart` with both runs (its own replot where a comparison has nothing to add)."""
    if frame.snap.compare is None:
        return chart.replot(frame)
    if isinstance(chart, LossChart):
        return _loss(chart, frame)
    if isinstance(chart, GradBarsChart):
        return _bars(chart, frame)
    if isinstance(chart, GradHistoryChart):
        return _layers(chart, frame)
    if isinstance(chart, HistogramChart):
        return _histogram(chart, frame)
    if isinstance(chart, TimeGradChart):
        return _time(chart, frame)
    return chart.replot(frame)


def _b(frame: Frame) -> Snapshot:
    assert frame.snap.compare is not None
    return frame.snap.compare.b


def _views(frame: Frame) -> list[HistoryView]:
    vb = frame.view_b
    return [frame.view] + ([vb] if vb is not None and len(vb) else [])


def _loss(chart: LossChart, frame: Frame) -> None:
    views = _views(frame)
    chart.acc_plot = None
    if len(frame.view) == 0:
        return chart.show_waiting(frame.title("loss over steps · A vs B"))
    ca, cb = colours(chart)
    pairs = [minmax_decimate(v.steps, v["loss"], chart.columns) for v in views]
    accs = [stride_decimate(v.steps, v["acc"], chart.columns) for v in views]
    has_acc = any(bool(np.isfinite(a).any()) for _, a in accs)
    every = np.concatenate([y for _, y in pairs])
    chart.log_axis = loss_spans_decades(every, LOSS_LOG_DECADES)
    title = ("loss (log)" if chart.log_axis else "loss") + (" and accuracy" if has_acc else "") + " · A vs B"
    chart.begin(frame.title(title))
    labels = ["A: the preset", b_label(frame, max(12, chart.columns // 2))]
    marks, cols = (A_MARK, B_MARK), (ca, cb)
    if chart.log_axis:
        lo, hi = log_range(*[log10_safe(y) for _, y in pairs])
        for k, (x, y) in enumerate(pairs):
            chart.plot.line(x, np.clip(log10_safe(y), lo, hi), cols[k], label=labels[k], mark=marks[k])
        chart.set_log_y(lo, hi)
    else:
        finite = every[np.isfinite(every)]
        top = float(finite.max()) * 1.05 if finite.size and finite.max() > 0 else 1.0
        bottom = min(0.0, float(finite.min())) if finite.size else 0.0
        for k, (x, y) in enumerate(pairs):
            chart.plot.line(x, y, cols[k], label=labels[k], mark=marks[k])
        chart.set_linear_y(bottom, top)
    x_lo, x_hi = frame.x_range(frame.view.steps)
    chart.set_step_x(x_lo, x_hi)
    _markers(chart, frame, x_lo, x_hi)
    if has_acc:
        p = chart.acc_plot = Plot()
        p.x, p.labels = chart.plot.x, False
        p.y = Axis(0.0, 1.0, [0.0, 0.5, 1.0], ["0%", "50%", "100%"])
        for k, (xa, acc) in enumerate(accs):
            p.line(xa, acc, cols[k], mark=marks[k])
        for line in chart.plot._vlines:
            p.vline(line.x, line.color)
    chart.refresh()


@dataclass(frozen=True)
class _Mark:
    step: int
    name: str
    label: str


def _markers(chart: Chart, frame: Frame, x_lo: float, x_hi: float) -> None:
    """B's markers: the fork ('fork B @ 300'), then each toggle of B after it (those at the fork are in its name)."""
    comp = frame.snap.compare
    assert comp is not None
    later = [_Mark(e.step, e.name, e.label) for e in comp.b.events if e.step > comp.fork_step and e.name != "fork"]
    chart.draw_markers((_Mark(comp.fork_step, "fork", f"fork B @ {comp.fork_step}"), *later), x_lo, x_hi)  # type: ignore[arg-type]


def _bars(chart: GradBarsChart, frame: Frame) -> None:
    """Per layer, A's bar and B's bar side by side (log axis); B's may have another depth."""
    a, b = frame.snap, _b(frame)
    chart.begin(f"gradient norm per layer (log) · A vs B · step {a.step:,}")
    n = max(len(a.grad_norm), len(b.grad_norm))
    if n == 0:
        return chart.show_waiting("gradient norm per layer")
    ya, yb = log10_safe(a.grad_norm), log10_safe(b.grad_norm)
    lo, hi = log_range(ya, yb)
    lo -= 1  # the smallest bar is still a decade tall
    ca, cb = colours(chart)
    if chart.columns >= 3 * n:  # room for pairs of bars
        chart.plot.bars(np.arange(1, len(ya) + 1) - 0.2, np.clip(ya, lo, hi), ca, width=0.38)
        chart.plot.bars(np.arange(1, len(yb) + 1) + 0.2, np.clip(yb, lo, hi), cb, width=0.38)
    else:  # too narrow: a line through the layers for each run
        for y, c, mark in ((ya, ca, A_MARK), (yb, cb, B_MARK)):
            layers = np.arange(1, len(y) + 1)
            chart.plot.line(layers, np.clip(y, lo, hi), c)
            chart.plot.marks(layers, np.clip(y, lo, hi), c, mark)
    chart.plot.legend = [("A", ca, "█"), (b_label(frame, max(12, chart.columns - 10)), cb, "█")]
    chart.plot.x = Axis.counted(0.4, n + 0.6, layer_ticks(n, max(2, chart.columns // 5)))
    chart.set_log_y(lo, hi)
    wide = chart.columns >= 48
    chart.plot.xlabel = "layer (1 = input side) · left bar A, right bar B" if wide else "layer · bars: A left, B right"
    chart.refresh()


def _layers(chart: GradHistoryChart, frame: Frame) -> None:
    """The first and the last layer of each run over steps: A in its colour, B in the other."""
    title = frame.title(chart.TITLE + " · A vs B")
    chart.begin(title)
    runs = [(frame.view, "A", 0)]
    if frame.view_b is not None and len(frame.view_b):
        runs.append((frame.view_b, "B", 1))
    data = frame.view.layers.get(chart.QUANTITY)
    if len(frame.view) == 0 or data is None or data.shape[1] == 0:
        return chart.show_waiting(title)
    series = []
    for view, name, k in runs:
        table = view.layers.get(chart.QUANTITY)
        if table is None or table.shape[1] == 0:
            continue
        x, rows = stride_decimate(view.steps, table, chart.columns)
        for j, i in enumerate(sorted({0, table.shape[1] - 1})):
            y = log10_safe(rows[:, i]) if chart.LOG else rows[:, i]
            mark = (A_MARK, B_MARK)[k] if j == 0 else LAST_MARKS[k]
            frozen = rows[:, i] == 0 if chart.LOG else np.zeros(len(x), dtype=bool)  # no place on a log axis
            series.append((x, y, colours(chart)[k], f"{name} L{i + 1}" + (" ×" if frozen.any() else ""), mark, frozen))
    ys = [y for _, y, *_ in series]
    if chart.LOG and not any(np.isfinite(y).any() for y in ys):
        ys = [np.zeros(1)]
    if chart.LOG:
        lo, hi = log_range(*ys)
        chart.set_log_y(lo, hi)
    else:
        finite = np.concatenate([y[np.isfinite(y)] for y in ys]) if ys else np.array([])
        lo = float(finite.min()) if finite.size else 0.0
        hi = float(finite.max()) if finite.size else 1.0
        pad = max(1e-6, (hi - lo) * 0.1, abs(hi) * 0.01)
        lo, hi = lo - pad, hi + pad
        chart.set_linear_y(lo, hi)
    for x, y, colour, label, mark, frozen in series:
        chart.plot.line(x, np.clip(y, lo, hi), colour, mark=mark)
        chart.plot.legend.append((label, colour, mark))  # (a line that is all frozen still has its entry)
        if frozen.any():
            chart.plot.marks(x[frozen], np.full(int(frozen.sum()), lo), colour, "×")
    if any(f.any() for *_, f in series):
        chart.plot.xlabel = "× frozen: the update fell below float32 resolution (ΔW = 0)"
    x_lo, x_hi = frame.x_range(frame.view.steps)
    chart.set_step_x(x_lo, x_hi)
    _markers(chart, frame, x_lo, x_hi)
    chart.refresh()


def _histogram(chart: HistogramChart, frame: Frame) -> None:
    """A's gradient histogram as bars, B's (of its own histogram layer) as a line over them."""
    a, b = frame.snap, _b(frame)
    chart.begin(f"gradient histogram · A L{a.hist_layer + 1} bars, B L{b.hist_layer + 1} line · log10|g|")
    edges = np.asarray(a.hist_edges, dtype=float)
    counts = [np.asarray(s.hist_counts, dtype=float) for s in (a, b)]
    if len(edges) < 2 or any(len(c) != len(edges) - 1 for c in counts):
        return chart.show_waiting("gradient histogram")
    ca, cb = colours(chart)
    centers = (edges[:-1] + edges[1:]) / 2
    keep = counts[0] > 0
    chart.plot.bars(centers[keep], counts[0][keep], ca, width=float(edges[1] - edges[0]) * 0.8)
    chart.plot.line(centers, counts[1], cb, label=b_label(frame, max(12, chart.columns // 2)), mark=B_MARK)
    chart.plot.legend.insert(0, ("A", ca, "█"))
    x_ticks = max(2, chart.columns // 8)
    ticks, labels = decade_ticks(float(edges[0]), float(edges[-1]), max_ticks=x_ticks)
    chart.plot.x = Axis(float(edges[0]), float(edges[-1]), ticks, labels)
    top = max(float(counts[0].max()), float(counts[1].max()), 1.0)
    chart.plot.y = Axis(0.0, top * 1.1, [0.0, top / 2, top], ["0", f"{top / 2:.0f}", f"{top:.0f}"])
    chart.refresh()


def _time(chart: TimeGradChart, frame: Frame) -> None:
    """RNN: ‖∂L/∂h_t‖ per time step of both runs."""
    a, b = frame.snap, _b(frame)
    chart.begin("RNN: ‖∂L/∂h_t‖ per time step (log) · A vs B" if chart.columns > 44 else "‖∂L/∂h_t‖ A vs B")
    runs = [(s.time_grad_norm, k) for k, s in enumerate((a, b)) if s.time_grad_norm is not None]
    if not runs or not any(len(t) for t, _ in runs):
        return chart.show_waiting("gradient per time step")
    ys = [log10_safe(t) for t, _ in runs]
    lo, hi = log_range(*ys)
    labels = ("A", b_label(frame, max(12, chart.columns // 2)))
    for (_, k), y in zip(runs, ys, strict=True):
        steps = np.arange(1, len(y) + 1)
        x, yy = stride_decimate(steps, np.clip(y, lo, hi), chart.columns)
        chart.plot.line(x, yy, colours(chart)[k], label=labels[k], mark=(A_MARK, B_MARK)[k])
    chart.set_log_y(lo, hi)
    steps = max(len(t) for t, _ in runs)
    chart.plot.x = Axis.counted(1.0, float(max(2, steps)), layer_ticks(steps, max(2, chart.columns // 7)))
    chart.plot.xlabel = "time step t (1 = first input)"
    chart.refresh()
