"""What the time charts show, as data: the history within the charts' time window, and that window as CSV.

No textual, no torch: a `History` (or anything with its `view`) in, a `HistoryView` or CSV text out.
"""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from vgtui.history import HistoryView

# The per-layer series of the time charts, in the CSV's column order (prefix, HistoryView layer key)
CSV_LAYERS = (("grad_norm", "grad_norm"), ("mean_abs_w", "weight_mean_abs"), ("update_ratio", "update_ratio"))
CSV_SCALARS = ("loss", "acc", "lr", "grad_total")


def window_view(history, since: int | None, max_points: int | None) -> HistoryView:
    """The history from step `since` on (all of it where `since` is None), at most `max_points` rows.

    The window is the newest rows: how many is found by bisection with two-row probes, so the window is
    sampled at full resolution however long the run before it was.
    """
    if since is None:
        return history.view(max_points=max_points)
    lo, hi = 1, max(1, len(history))  # the fewest newest rows that reach back to `since`
    while lo < hi:
        mid = (lo + hi) // 2
        probe = history.view(max_points=2, last=mid)
        if len(probe) and probe.steps[0] <= since:
            hi = mid
        else:
            lo = mid + 1
    return since_step(history.view(max_points=max_points, last=lo), since)


def since_step(view: HistoryView, since: int) -> HistoryView:
    """Only the rows at or after step `since`."""
    keep = view.steps >= since
    if keep.all():
        return view
    return HistoryView(
        steps=view.steps[keep],
        scalars={k: v[keep] for k, v in view.scalars.items()},
        layers={k: v[keep] for k, v in view.layers.items()},
        n_layers=view.n_layers,
    )


def layer_names(n: int, names: tuple[str, ...] = ()) -> list[str]:
    """Column names of the layers: the engine's names where it gives them, else L1 … Ln."""
    return [names[i] if i < len(names) and names[i] else f"L{i + 1}" for i in range(n)]


def view_csv(view: HistoryView, names: tuple[str, ...] = ()) -> str:
    """The history view as CSV: one row per step, one column per series; NaN (not measured) is an empty cell."""
    n = view.n_layers
    cols = layer_names(n, names)
    header = ["step", *CSV_SCALARS]
    series = [view.scalars[k] for k in CSV_SCALARS]
    for prefix, key in CSV_LAYERS:
        data = view.layers.get(key)
        if data is None:
            continue
        header += [f"{prefix}_{c}" for c in cols]
        series += [data[:, i] for i in range(min(n, data.shape[1]))]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    table = np.column_stack(series) if series else np.zeros((len(view), 0))
    for step, row in zip(view.steps.tolist(), table.tolist(), strict=True):
        writer.writerow([step, *(_cell(v) for v in row)])
    return out.getvalue()


def _cell(value: float) -> str:
    return "" if not math.isfinite(value) else f"{value:.7g}"
