"""Text panels: the status bar, the live diagnosis and the "why" panel (saturation, dead units, slope, chain rule)."""

from __future__ import annotations

import re

import numpy as np
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.text import Text
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static

from vgtui.contract import Snapshot, Verdict
from vgtui.tui.series import chain_rows, fmt_num, remedy_key

STATUS_STYLE = {
    "running": ("▶ running", "bold green"),
    "paused": ("⏸ paused", "bold yellow"),
    "diverged": ("✖ diverged", "bold red"),
    "error": ("✖ error", "bold white on red"),
    "done": ("■ done", "bold cyan"),
    "stalled": ("⚠ stalled", "bold black on yellow"),
    "starting": ("… starting", "bold"),
}
SEVERITY_STYLE = {"ok": ("✔", "green"), "warn": ("▲", "yellow"), "bad": ("✖", "bold red")}


def status_text(snap: Snapshot | None, preset: str, waiting_note: str = "") -> Text:
    """One line (wraps on narrow terminals): status · preset · step · steps/s · device · model."""
    if snap is None:
        label, style = STATUS_STYLE["starting"]
        return Text.assemble((f" {label} ", style), f" {preset}  {waiting_note}")
    label, style = STATUS_STYLE.get(snap.status, (snap.status, "bold"))
    t = Text.assemble(
        (f" {label} ", style),
        " ",
        (snap.preset or preset, "bold"),
        f" │ step {snap.step:,} │ {snap.steps_per_sec:.1f} steps/s │ {snap.device} │ ",
        snap.model.describe(),
    )
    if snap.model.clip is not None and snap.clipped:
        t.append(" (clipped)", "yellow")
    return t


class StatusBar(Static):
    """Top line: what runs, how fast, and in which state."""

    def show(self, snap: Snapshot | None, preset: str, waiting_note: str = "") -> None:
        self.update(status_text(snap, preset, waiting_note))
        self.set_class(snap is not None and snap.status in ("error", "diverged"), "-alarm")


def remedy_line(remedy: str) -> Text:
    """'→ BatchNorm  [b]': the remedy with its key, unless the text already names one, e.g. '(b)'."""
    key = remedy_key(remedy)
    t = Text("   → " + remedy)
    if key and not re.search(r"[(\[]\S[)\]]", remedy):
        t.append(f"  [{key}]", "bold cyan")
    return t


def verdict_lines(v: Verdict) -> list[Text]:
    icon, style = SEVERITY_STYLE.get(v.severity, ("•", ""))
    out = [Text.assemble((f"{icon} ", style), (v.text, style if v.severity == "bad" else ""))]
    out.extend(remedy_line(r) for r in v.remedies)
    return out


def diagnosis_renderable(snap: Snapshot | None, error: str | None = None) -> Group:
    """Plain words: what is wrong, what to press. Errors and divergence first."""
    lines: list[Text] = []
    if error:
        lines.append(Text("✖ The training session could not run:", "bold red"))
        lines.append(Text("  " + error, "red"))
    if snap is None:
        if not error:
            lines.append(Text("Waiting for the first training step…", "dim"))
        return Group(*lines)
    if snap.status == "stalled":
        lines.append(Text(f"⚠ {snap.error or 'no word from the trainer'}: it is stopped or stuck.", "bold yellow"))
        lines.append(Text("   → q quits (the trainer is ended with it)", "cyan"))
    if snap.status == "error":
        lines.append(Text("✖ The training worker stopped with an error:", "bold red"))
        lines.append(Text("  " + (snap.error or "unknown error"), "red"))
        lines.append(Text("   → try a reset  [r], or another preset  [p]", "cyan"))
    for v in snap.verdicts:
        lines.extend(verdict_lines(v))
    tgn = snap.time_grad_norm
    if tgn is not None and len(tgn) > 1:
        ratio = float(tgn[0] / tgn[-1]) if tgn[-1] > 0 else float("nan")
        what = ("Time step 1 gets ", f" × the gradient of step {len(tgn)}.")
    else:
        ratio = snap.first_last_ratio
        what = ("Layer 1 gets ", f" × the gradient of layer {len(snap.grad_norm)}.")
    if np.isfinite(ratio):
        lines.append(Text.assemble(what[0], (fmt_num(ratio), "bold"), what[1], style="dim" if ratio > 1e-2 else ""))
    events = [e.label for e in snap.events if e.name != "hist_layer"][-4:]
    if events:
        lines.append(Text("events: " + " · ".join(events), "magenta"))
    if not lines:
        lines.append(Text("No diagnosis yet.", "dim"))
    return Group(*lines)


class DiagnosisPanel(Static):
    """Live diagnosis: the engine's verdicts in plain words, each remedy with its key."""

    def show(self, snap: Snapshot | None, error: str | None = None) -> None:
        self.update(diagnosis_renderable(snap, error))


def pct(x: float) -> str:
    return "–" if not np.isfinite(x) else f"{100 * x:.0f}%"


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


def why_time_caption(snap: Snapshot) -> str:
    caption = "each step back multiplies the gradient by the recurrent gain; the product is what is left"
    slope = snap.slope[np.isfinite(snap.slope)] if len(snap.slope) else snap.slope
    if len(slope):  # the vanilla cell: h_t = tanh(...), its mean slope 1 - h^2 is one factor of the gain
        caption += f" · mean tanh slope 1−h² {fmt_num(float(slope[0]))}"
    return caption


def why_time_renderable(tgn: np.ndarray, max_rows: int, caption: str = "") -> ChainTable:
    """RNN: the chain rule through time. Each step back multiplies ‖∂L/∂h_t‖ by its gain; the product is
    what reaches step t from the last step."""
    table = ChainTable(
        "why: the chain rule through time, last step → first",
        caption or "each step back multiplies the gradient by the recurrent gain; the product is what is left",
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
        table.add_row(step, fmt_num(float(t[i])), g, (product_text(p, prod), product_style(p)))
    return table


def product_text(value: float, shown: str) -> str:
    """A product that underflowed to 0 in float32 is said so, not shown as a plain 0."""
    return "<1e-38" if value == 0 else shown


# The activation column of the chain-rule table: (header, legend, Snapshot field), by activation
ACTIVITY = {
    "sigmoid": ("sat", "sat: share with slope < 0.01", "saturation"),
    "tanh": ("sat", "sat: share with slope < 0.01", "saturation"),
    "relu": ("dead", "dead: output 0 on the whole batch", "dead"),
    "leaky_relu": ("neg", "neg: negative on the whole batch", "negative"),
}
WHY_CAPTION = "each layer multiplies the gradient by its gain ≈ slope × weight scale; the product is what reaches it"
WHY_CAPTION_SHORT = "gain ≈ slope × weight scale"  # where the panel is short: the table rows come first


def why_caption(snap: Snapshot, short: bool = False) -> str:
    """The caption under the chain-rule table (it says what the activation column counts)."""
    if snap.time_grad_norm is not None:
        return why_time_caption(snap)
    activity = ACTIVITY.get(snap.model.activation)
    return (WHY_CAPTION_SHORT if short else WHY_CAPTION) + (" · " + activity[1] if activity else "")


def why_renderable(snap: Snapshot, selected: int, max_rows: int, short: bool = False) -> ChainTable:
    """Per layer from the output back: gradient, saturation / dead / negative units, the activation's mean slope,
    local gain and the running product. Undefined values (NaN) read '–'."""
    caption = why_caption(snap, short)
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
        short = height < 14  # the full caption would leave too few rows of the table
        caption_lines = len(Text(why_caption(snap, short)).wrap(self.app.console, width))
        rows = max(3, height - 2 - caption_lines)  # title and header, then the caption
        self.update(why_renderable(snap, selected, rows, short))


def too_small_text(width: int, height: int, min_width: int, min_height: int) -> Text:
    return Text(
        f"Terminal too small ({width}×{height}).\nvgtui needs at least {min_width}×{min_height}.\n"
        "Enlarge the window, or press q to quit.",
        justify="center",
    )


def shown(widget: Widget) -> bool:
    """Whether the widget and all its ancestors are displayed (a hidden chart is not redrawn)."""
    node: Widget | None = widget
    while isinstance(node, Widget) and not isinstance(node, Screen):
        if not node.display:
            return False
        node = node.parent  # type: ignore[assignment]
    return True
