"""Text panels: the status bar, the live diagnosis and the "why" panel (saturation, dead units, chain rule)."""

from __future__ import annotations

import re

import numpy as np
from rich.console import Group
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
    """

    def __init__(self, title: str, caption: str, columns: tuple[str, ...]) -> None:
        self.title, self.caption, self.columns = title, caption, columns
        self.rows: list[tuple[tuple[Cell, ...], str]] = []

    def add_row(self, *cells: Cell, style: str = "") -> None:
        self.rows.append((cells, style))

    def __rich__(self) -> Group:
        texts = [[c if isinstance(c, str) else c[0] for c in cells] for cells, _ in self.rows]
        widths = [max([len(name)] + [len(row[j]) for row in texts]) for j, name in enumerate(self.columns)]

        def cell(j: int, text: str) -> str:  # the first column (layer, step) reads left to right
            return text.ljust(widths[j]) if j == 0 else "  " + text.rjust(widths[j])

        table = Text(self.title + "\n", style="bold", no_wrap=True, overflow="ellipsis")
        table.append("".join(cell(j, name) for j, name in enumerate(self.columns)), "bold")
        for cells, row_style in self.rows:
            line = Text(style=row_style)
            for j, c in enumerate(cells):
                text, style = (c, None) if isinstance(c, str) else c
                line.append(cell(j, text), style)
            table.append("\n")
            table.append_text(line)
        return Group(table, Text(self.caption, style="dim"))


def product_style(product: float) -> str:
    """Red once less than a millionth of the gradient is left (or it underflowed), yellow below a hundredth."""
    if np.isnan(product):
        return ""
    if not np.isfinite(product) or product < 1e-6:
        return "bold red"
    return "yellow" if product < 1e-2 else ""


def why_time_renderable(tgn: np.ndarray, max_rows: int) -> ChainTable:
    """RNN: the chain rule through time. Each step back multiplies ‖∂L/∂h_t‖ by its gain; the product is
    what reaches step t from the last step."""
    table = ChainTable(
        "why: the chain rule through time, last step → first",
        "each step back multiplies the gradient by the recurrent gain; the product is what is left",
        ("step", "‖∂L/∂h_t‖", "gain", "→ product"),
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


def why_renderable(snap: Snapshot, selected: int, max_rows: int) -> ChainTable:
    """Per layer from the output back: gradient, saturation, dead units, local gain and the running product."""
    if snap.time_grad_norm is not None:
        return why_time_renderable(snap.time_grad_norm, max_rows)
    n = len(snap.gain)
    table = ChainTable(
        "why: the chain rule, output → input",
        "each layer multiplies the gradient by its gain; the product is what reaches it",
        ("layer", "‖g‖", "sat", "dead", "gain", "→ product"),
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
            fmt_num(float(snap.grad_norm[i])) if i < len(snap.grad_norm) else "–",
            pct(float(snap.saturation[i])) if i < len(snap.saturation) else "–",
            pct(float(snap.dead[i])) if i < len(snap.dead) else "–",
            gain,
            (product, product_style(prod)),
            style=row_style,
        )
    return table


class WhyPanel(Static):
    """Why it vanishes: saturation %, dead-ReLU %, and 0.25 × 0.25 × … becoming 1e-12."""

    def show(self, snap: Snapshot | None, selected: int) -> None:
        if snap is None:
            self.update(Text("why: waiting for data", "dim"))
            return
        rows = max(3, (self.size.height or 14) - 5)
        self.update(why_renderable(snap, selected, rows))


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
