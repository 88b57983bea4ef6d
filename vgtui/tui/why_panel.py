"""The "why" panel: per layer the saturation, dead units, slope and gain, and the chain rule's running product."""

from __future__ import annotations

import numpy as np
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.text import Text
from textual.widgets import Static

from vgtui.contract import Snapshot
from vgtui.tui.panels import pct
from vgtui.tui.series import chain_rows, fmt_num

Cell = str | tuple[str, str]  # text, or (text, style)


class ChainTable:
    """The table both chain-rule views use: a title, borderless right-aligned columns, a caption.

    Why not rich.table.Table: measuring and laying out a Table cost ~8 ms per redraw of this panel,
    a third of a whole dashboard frame; these cells are short strings, so padding them is enough.
    Where the columns do not fit the width, the `optional` ones go, in that order (the last column, the
    running product, always stays).
    """

    def __init__(self, title: str, caption: str, columns: tuple[str, ...], optional: tuple[int, ...] = ()) -> None:
        self.title, self.caption, self.columns, self.optional = title, caption, columns, optional
        self.rows: list[tuple[tuple[Cell, ...], str]] = []

    def add_row(self, *cells: Cell, style: str = "") -> None:
        self.rows.append((cells, style))

    def shown_columns(self, width: int) -> list[int]:
        """The columns that fit in `width` cells."""
        texts = [[c if isinstance(c, str) else c[0] for c in cells] for cells, _ in self.rows]
        widths = [max([len(name)] + [len(row[j]) for row in texts if j < len(row)]) for j, name in
                  enumerate(self.columns)]  # fmt: skip
        keep = list(range(len(self.columns)))
        drop = list(self.optional)
        while drop and sum(widths[j] for j in keep) + 2 * (len(keep) - 1) > width:
            keep.remove(drop.pop(0))
        return keep

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        keep = self.shown_columns(options.max_width)
        texts = [[c if isinstance(c, str) else c[0] for c in cells] for cells, _ in self.rows]
        widths = {j: max([len(self.columns[j])] + [len(row[j]) for row in texts if j < len(row)]) for j in keep}

        def cell(j: int, text: str) -> str:  # the first column (layer, step) reads left to right
            return text.ljust(widths[j]) if j == keep[0] else "  " + text.rjust(widths[j])

        table = Text(self.title + "\n", style="bold", no_wrap=True, overflow="ellipsis")
        table.append("".join(cell(j, self.columns[j]) for j in keep), "bold")
        for cells, row_style in self.rows:
            line = Text(style=row_style)
            for j in keep:
                c = cells[j] if j < len(cells) else ""
                text, style = (c, None) if isinstance(c, str) else c
                line.append(cell(j, text), style)
            table.append("\n")
            table.append_text(line)
        yield Group(table, Text(self.caption, style="dim"))


def product_style(product: float) -> str:
    """Red once less than a millionth of the gradient is left (or it underflowed), yellow below a hundredth."""
    if np.isnan(product):
        return ""
    if not np.isfinite(product) or product < 1e-6:
        return "bold red"
    return "yellow" if product < 1e-2 else ""


TIME_CAPTION = "each step back multiplies ‖∂L/∂h_t‖ by the recurrent gain; product: ‖∂L/∂h_t‖ / the last step's"


def why_time_caption(snap: Snapshot) -> str:
    caption = TIME_CAPTION
    slope = snap.slope[np.isfinite(snap.slope)] if len(snap.slope) else snap.slope
    if len(slope):  # the vanilla cell: h_t = tanh(...), its mean slope 1 - h^2 is one factor of the gain
        caption += f" · mean tanh slope 1−h² {fmt_num(float(slope[0]))}"
    return caption + UNDERFLOW_NOTE if _underflow(snap.time_grad_norm) else caption


UNDERFLOW_NOTE = " · <1e-38: underflowed in float32 (its gain –)"


def _underflow(values: np.ndarray | None) -> bool:
    return values is not None and bool(np.any(np.asarray(values) == 0))


def why_time_renderable(tgn: np.ndarray, max_rows: int, caption: str = "") -> ChainTable:
    """RNN: the chain rule through time. Each step back multiplies ‖∂L/∂h_t‖ by its gain; the product is
    what reaches step t from the last step."""
    table = ChainTable(
        "why: the chain rule through time, last step → first",
        caption or TIME_CAPTION,
        ("step", "‖∂L/∂h_t‖", "gain", "→ product"),
        optional=(1, 2),
    )
    t = np.asarray(tgn, dtype=float)
    if len(t) < 2:
        return table
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.append(t[:-1] / t[1:], 1.0)
        product = t / t[-1]
    for step, g, prod in chain_rows(gain, product, max_rows):
        if step == "…":
            table.add_row("…", "", "", "")
            continue
        i = int(step) - 1
        p = float(product[i])
        table.add_row(step, fmt_num(float(t[i])), g, (prod, product_style(p)))
    return table


# The activation column of the chain-rule table: (header, legend, Snapshot field), by activation
ACTIVITY = {
    "sigmoid": ("sat", "sat: share with slope < 0.01", "saturation"),
    "tanh": ("sat", "sat: share with slope < 0.01", "saturation"),
    "relu": ("dead", "dead: output 0 on the whole batch", "dead"),
    "leaky_relu": ("neg", "neg: negative on the whole batch", "negative"),
}
WHY_CAPTION = (
    "each layer multiplies the gradient by its gain ≈ slope × weight scale; product: ‖∂L/∂h‖ reaching the layer"
    " / at the output (activation gradients, not the weight-grad ratio)"
)
WHY_CAPTION_SHORT = "gain ≈ slope × weight scale · product: ‖∂L/∂h‖ layer / output"  # the table rows come first
WHY_CAPTION_MIN = "product: ‖∂L/∂h‖ layer/output"  # a small panel: what the product divides, nothing else
TIME_CAPTION_MIN = "product: ‖∂L/∂h_t‖/last step"


def why_caption(snap: Snapshot, level: int = 0, activity_shown: bool = True) -> str:
    """The caption under the chain-rule table: level 0 in full, 1 short, 2 only what the product divides. It says
    what the activation column counts where that column is shown, and what '<1e-38' means where one underflowed."""
    if snap.time_grad_norm is not None:
        return TIME_CAPTION_MIN if level >= 2 else why_time_caption(snap)
    if level >= 2:
        return WHY_CAPTION_MIN
    activity = ACTIVITY.get(snap.model.activation) if activity_shown else None
    caption = (WHY_CAPTION_SHORT if level else WHY_CAPTION) + (" · " + activity[1] if activity else "")
    return caption + UNDERFLOW_NOTE if _underflow(snap.gain_product) else caption


def why_renderable(snap: Snapshot, selected: int, max_rows: int, short: bool = False) -> ChainTable:
    """Per layer from the output back: gradient, saturation / dead / negative units, the activation's mean slope,
    local gain and the running product. Undefined values (NaN) read '–'."""
    caption = why_caption(snap, int(short))
    if snap.time_grad_norm is not None:
        return why_time_renderable(snap.time_grad_norm, max_rows, caption)
    n = len(snap.gain)
    header, _, name = ACTIVITY.get(snap.model.activation, ("sat", "", "saturation"))
    activity = np.asarray(getattr(snap, name), dtype=float)
    table = ChainTable(
        "why: the chain rule, output → input",
        caption,
        ("layer", "‖g‖", header, "slope", "gain", "→ product"),
        optional=(1, 2, 3, 4),  # on narrow widths: ‖g‖ goes first, the running product never
    )
    if n == 0:
        return table
    for layer, gain, product in chain_rows(snap.gain, snap.gain_product, max_rows):
        if layer == "…":
            table.add_row("…", "", "", "", "", "")
            continue
        i = int(layer) - 1
        prod = float(snap.gain_product[i])
        row_style = "reverse" if i == selected else ""
        table.add_row(
            layer,
            _at(snap.grad_norm, i, fmt_num),
            _at(activity, i, pct),
            _at(snap.slope, i, fmt_num),
            gain,
            (product, product_style(prod)),
            style=row_style,
        )
    return table


def _at(values: np.ndarray, i: int, fmt) -> str:
    """values[i] formatted; '–' where it is missing or NaN."""
    return fmt(float(values[i])) if i < len(values) else "–"


class WhyPanel(Static):
    """Why it vanishes: saturation %, dead-ReLU %, and 0.25 × 0.25 × … becoming 1e-12."""

    def show(self, snap: Snapshot | None, selected: int) -> None:
        if snap is None:
            self.update(Text("why: waiting for data", "dim"))
            return
        width, height = max(20, self.size.width or 40), self.size.height or 12
        wanted = min(len(snap.gain) or 3, 5) + 1  # table rows worth a longer caption: a few layers and the "…"
        table = why_renderable(snap, selected, height, height < 14)
        activity_shown = 2 in table.shown_columns(width)
        for level in (0, 1, 2)[int(height < 14) :]:  # the longest caption that leaves room for the rows
            caption = why_caption(snap, level, activity_shown)
            rows = height - 2 - len(Text(caption).wrap(self.app.console, width))  # title and header first
            if rows >= wanted:
                break
        table = why_renderable(snap, selected, max(3, rows), level > 0)
        table.caption = caption
        self.update(table)
