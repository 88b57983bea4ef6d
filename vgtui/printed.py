"""Charts printed to stdout with plotext: what `vgtui run` shows at the end and what `vgtui plot FILE.jsonl` prints.

The live dashboard draws with its own renderer (vgtui/tui/plot.py, measured 3x cheaper per frame); a chart that is
printed once is plotext's job. plotext 5 is pure Python; its pitfalls (see STYLE.md) are handled here: log scales
are log10 values with decade labels, non-finite values are dropped, a zero span is widened, and the figure is
cleared with clear_figure() before every chart. No torch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vgtui.history import History, HistoryView

CHARTS = ("loss", "grad", "weights", "ratio")
MAX_SERIES = 5  # per-layer charts show up to five layers, from the first to the last
MARKERS = ("braille", "x", "+", "o", "*")  # distinct without colour (NO_COLOR, a CI log)


@dataclass
class Curves:
    """What the printed charts show, one row per kept step (a History keeps at most its capacity)."""

    steps: np.ndarray
    loss: np.ndarray
    acc: np.ndarray
    layers: list[str]
    grad: np.ndarray  # (rows, layers): gradient norm of each layer's weight
    weights: np.ndarray  # mean |w|
    ratio: np.ndarray  # update ratio ||dW|| / ||W|| (0 = frozen)
    events: list[tuple[int, str]] = field(default_factory=list)
    b: Curves | None = None  # a compare run: run B's curves, drawn beside these (run A's)
    label_b: str = "B"  # its legend, e.g. "B: leaky_relu+he @ 300"


def curves_from_view(view: HistoryView, layers: Sequence[str], events: Iterable[tuple[int, str]] = ()) -> Curves:
    n = view.n_layers
    return Curves(
        steps=view.steps.astype(float),
        loss=view["loss"],
        acc=view["acc"],
        layers=list(layers)[:n] or [f"L{i + 1}" for i in range(n)],
        grad=view["grad_norm"],
        weights=view["weight_mean_abs"],
        ratio=view["update_ratio"],
        events=list(events),
    )


def curves_from_records(records: Iterable[dict[str, Any]], capacity: int = 4096) -> Curves:
    """Step records of a run log (any length: kept in a bounded History) -> Curves; a compare log (records with
    "run": "B") -> run A's Curves with run B's in `.b`."""
    runs: dict[str, tuple[History, list[str], list[tuple[int, str]]]] = {}
    label_b = "B"

    def num(x: Any) -> float:
        return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else math.nan

    def arr(x: Any) -> np.ndarray | None:
        return np.array([num(v) for v in x], dtype=float) if isinstance(x, list) else None

    for rec in records:
        kind = rec.get("type")
        if kind == "meta" and isinstance(rec.get("compare"), dict):
            label_b = str(rec["compare"].get("label") or label_b)
        if kind not in ("event", "step"):
            continue
        history, layers, events = runs.setdefault(str(rec.get("run") or "A"), (History(capacity), [], []))
        if kind == "event":
            events.append((int(rec.get("step", 0)), f"{rec.get('name')}={rec.get('value')}"))
            continue
        if isinstance(rec.get("layers"), list):
            layers[:] = [str(x) for x in rec["layers"]]
        per_layer = {k: arr(rec.get(k)) for k in ("grad_norm", "weight_mean_abs", "update_ratio")}
        if rec.get("stats_step") not in (None, rec.get("step")):  # statistics taken at an earlier step
            per_layer.pop("weight_mean_abs")
            per_layer.pop("update_ratio")
        history.append(int(rec.get("step", 0)), {"loss": num(rec.get("loss")), "acc": num(rec.get("acc"))}, per_layer)
    history, layers, events = runs.get("A") or (History(capacity), [], [])
    curves = curves_from_view(history.view(), layers, events)
    if "B" in runs:
        curves.b = curves_from_view(runs["B"][0].view(), runs["B"][1], runs["B"][2])
        curves.label_b = label_b
    return curves


def terminal_size(width: int | None = None, height: int | None = None) -> tuple[int, int]:
    """Chart size: as asked, else the terminal's width and a height that fits four charts (min 60x12)."""
    cols, rows = os.get_terminal_size(1) if os.isatty(1) else os.terminal_size((100, 40))
    return max(40, width or min(cols, 160)), max(8, height or max(12, min(20, rows // 2)))


def render(curves: Curves, what: Sequence[str] = CHARTS, width: int = 100, height: int = 16, color: bool = True) -> str:
    """The charts asked for, one under the other, as text."""
    import plotext as plt

    out = []
    for name in what:
        plt.clear_figure()
        plt.plotsize(width, height)
        plt.theme("pro" if color else "clear")
        drawn = {"loss": _loss, "grad": _grad, "weights": _weights, "ratio": _ratio}[name](plt, curves, color)
        if not drawn:
            out.append(f"({name}: nothing to plot yet)")
            continue
        plt.xlabel("step")
        text = plt.build()
        out.append(text if color else plt.uncolorize(text))
    plt.clear_figure()
    return "\n".join(out)


def _finite(x: np.ndarray, y: np.ndarray) -> tuple[list[float], list[float]]:
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep].tolist(), y[keep].tolist()


def _log_axis(plt: Any, values: list[float]) -> None:
    """Decade labels (1e-12 … 1e0) on a y axis of log10 values; a zero span widened to one decade."""
    lo, hi = math.floor(min(values)), math.ceil(max(values))
    if hi <= lo:
        hi = lo + 1
    step = max(1, math.ceil((hi - lo) / 6))
    ticks = list(range(lo, hi + 1, step))
    plt.ylim(lo, hi)
    plt.yticks(ticks, [f"1e{t}" for t in ticks])


def _series(plt: Any, curves: Curves, data: np.ndarray, log: bool, color: bool, name: str = "") -> bool:
    """Up to five layers' lines (first … last), or with a run B the first and last layer of A and of B; True if
    anything was drawn."""
    n = data.shape[1] if data.ndim == 2 else 0
    if n == 0:
        return False
    runs = [("A " if curves.b is not None else "", curves, data)]
    if curves.b is not None:
        runs.append(("B ", curves.b, getattr(curves.b, name)))
    most = 2 if curves.b is not None else MAX_SERIES
    values: list[float] = []
    k = 0
    for prefix, run, table in runs:
        m = table.shape[1] if table.ndim == 2 else 0
        for i in np.unique(np.linspace(0, m - 1, min(m, most)).round().astype(int)) if m else ():
            y = table[:, i]
            if log:
                with np.errstate(divide="ignore", invalid="ignore"):
                    y = np.where(y > 0, np.log10(y), np.nan)
            xs, ys = _finite(run.steps, y)
            if not xs:
                continue
            marker = MARKERS[k % len(MARKERS)] if not color or k else "braille"
            layer = run.layers[i] if i < len(run.layers) else f"L{i + 1}"
            plt.plot(xs, ys, label=prefix + layer, marker=marker)
            values += ys
            k += 1
    if not values:
        return False
    if log:
        _log_axis(plt, values)
    return True


def _loss(plt: Any, curves: Curves, color: bool) -> bool:
    runs = [(curves, "")] if curves.b is None else [(curves, "A "), (curves.b, curves.label_b + " ")]
    finite = [_finite(run.steps, run.loss) for run, _ in runs]
    every = [y for _, ys in finite for y in ys]
    if not every:
        return False
    spans = min(every) > 0 and max(every) / min(every) > 100  # more than two decades: log scale
    if spans:
        _log_axis(plt, np.log10(every).tolist())
    title = "loss"
    for k, ((run, prefix), (xs, ys)) in enumerate(zip(runs, finite, strict=True)):
        if xs:
            ys = np.log10(ys).tolist() if spans else ys
            plt.plot(xs, ys, label=prefix + ("loss (log)" if spans else "loss"), marker="braille" if not k else "x")
        ax, ay = _finite(run.steps, run.acc)
        if ax:
            marker = "+" if k else ("o" if not color else "braille")
            plt.plot(ax, ay, label=prefix + "accuracy", marker=marker, yside="right")
            title = "loss (left) and accuracy (right, 0-1)"
    plt.title(title + " over steps")
    return True


def _grad(plt: Any, curves: Curves, color: bool) -> bool:
    plt.title("gradient norm per layer (log10; L1 = input side)")
    return _series(plt, curves, curves.grad, True, color, "grad")


def _weights(plt: Any, curves: Curves, color: bool) -> bool:
    plt.title("mean |w| per layer: epoch vs weight value (flat = not moving)")
    return _series(plt, curves, curves.weights, False, color, "weights")


def _ratio(plt: Any, curves: Curves, color: bool) -> bool:
    last = curves.ratio[-1] if len(curves.ratio) else np.zeros(0)
    frozen = [curves.layers[i] for i in np.flatnonzero(last == 0) if i < len(curves.layers)]
    note = f"; frozen now: {_names(frozen)}" if frozen else ""
    plt.title(f"update ratio ||dW||/||W|| (log10{note})")
    return _series(plt, curves, curves.ratio, True, color, "ratio")


def _names(names: list[str]) -> str:
    """'L1-L11' for a run of L<n> names, else the names joined."""
    nums = [int(n[1:]) for n in names if n[:1] == "L" and n[1:].isdigit()]
    if len(nums) == len(names) > 2 and nums == list(range(nums[0], nums[-1] + 1)):
        return f"{names[0]}-{names[-1]}"
    return ", ".join(names)
