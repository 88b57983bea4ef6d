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
from vgtui.tui.series import chain_rows, fmt_num, fmt_ratio, grad_ratio, plain_numbers, remedy_key

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


NOTE_STYLE = {"✓": "bold black on green", "⚠": "bold white on red"}
REPLAY_STATUS = {"running": ("▶ playing", "bold green"), "done": ("■ end", "bold cyan")}


def replay_info(snap: Snapshot) -> dict | None:
    """Where a replayed snapshot is in its recording: file, speed, record (1-based) of records; None when live.

    From the snapshot's `extra["replay"]`, else read off its device string ('replay of cpu · x2 · 5/100')."""
    info = snap.extra.get("replay") if isinstance(snap.extra, dict) else None
    if isinstance(info, dict):
        return info
    m = re.match(r"replay of .*· x([\d.]+) · (\d+)/(\d+)$", snap.device)
    if m is None:
        return None
    return {"file": "", "speed": float(m[1]), "record": int(m[2]), "records": int(m[3])}


def _pack(pieces: list[tuple[int, Text]], width: int, sep: str = " │ ") -> Text:
    """The pieces in their order, leaving out the least important (highest number) until the line fits."""
    keep = list(pieces)
    while len(keep) > 1 and sum(t.cell_len for _, t in keep) + len(sep) * (len(keep) - 1) > width:
        keep.remove(max(keep, key=lambda p: p[0]))
    out = Text(no_wrap=True, overflow="ellipsis")
    for k, (_, t) in enumerate(keep):
        if k:
            out.append(sep, "dim")
        out.append_text(t)
    return out


def dist_text(snap: Snapshot) -> Text | None:
    """'DDP × 4 ranks' for a watched torchrun job (from the snapshot's `extra["dist"]`), else None."""
    info = snap.extra.get("dist") if isinstance(snap.extra, dict) else None
    if not isinstance(info, dict) or not isinstance(info.get("world"), int):
        return None
    world = info["world"]
    return Text.assemble((str(info.get("wrapper", "?")), "bold"), f" × {world} rank{'s' if world != 1 else ''}")


def numbers_text(snap: Snapshot) -> Text:
    """'loss 0.693 · acc 50% · grad L1/L20 2e-16': the newest loss, accuracy (where there is one) and ratio."""
    label, _, ratio = grad_ratio(snap.grad_norm, snap.time_grad_norm)
    t = Text.assemble("loss ", (fmt_num(snap.loss), "bold"))
    if np.isfinite(snap.acc):
        t.append_text(Text.assemble(" · acc ", (pct(snap.acc), "bold")))
    style = "bold red" if np.isfinite(ratio) and (ratio < 1e-6 or ratio > 1e6) else "bold"
    t.append_text(Text.assemble(f" · {label} ", (fmt_ratio(ratio), style)))
    return t


def status_text(snap: Snapshot | None, preset: str, waiting_note: str = "", width: int = 160) -> Text:
    """Two lines, each fitted to `width`: state · preset · step · loss, accuracy, gradient ratio · speed · device;
    then a toggle sent and not yet confirmed, and the model. A replay shows its speed, position and file."""
    if snap is None:
        label, style = STATUS_STYLE["starting"]
        return Text.assemble((f" {label} ", style), f" {preset}  {waiting_note}")
    replay = replay_info(snap)
    label, style = (REPLAY_STATUS if replay else {}).get(snap.status) or STATUS_STYLE.get(
        snap.status, (snap.status, "bold")
    )
    pieces = [
        (0, Text.assemble((f" {label} ", style), " ", (snap.preset or preset, "bold"))),
        (0, Text(f"step {snap.step:,}")),
        (1, numbers_text(snap)),
    ]
    second = Text(no_wrap=True, overflow="ellipsis")
    if replay:  # where in the recording and how fast; the file's name leads the second line
        where = Text(f"record {replay['record']:,}/{replay['records']:,} · x{replay['speed']:g}")
        pieces.insert(2, (0, where))
        if replay.get("file"):
            second.append(f" {replay['file']} ", "bold reverse")
    else:
        pieces += [(4, Text(f"{snap.steps_per_sec:.1f} steps/s")), (5, Text(snap.device))]
        ranks = dist_text(snap)
        if ranks is not None:  # a watched torchrun job: its wrapper and world size
            pieces.insert(3, (2, ranks))
    if waiting_note:  # a toggle sent (yellow), applied (green) or unanswered (red)
        second.append(f" {waiting_note} ", NOTE_STYLE.get(waiting_note[:1], "bold black on yellow"))
        second.append(" ")
    second.append(" " + snap.model.describe())
    if snap.model.clip is not None and snap.clipped:
        second.append(" (clipped)", "yellow")
    user_clip = user_clip_note(snap)
    if user_clip:
        second.append(f" · {user_clip}", "yellow")
    return Text("\n").join([_pack(pieces, width), second])


def user_clip_note(snap: Snapshot) -> str:
    """'grad norms after your clipping (×0.42 @ 1,200)' where a watched run's own code clips its gradients."""
    watch = snap.extra.get("watch") if isinstance(snap.extra, dict) else None
    clip = watch.get("user_clip") if isinstance(watch, dict) else None
    if not isinstance(clip, dict):
        return ""
    try:
        factor, step = float(clip["factor"]), int(clip["step"])
    except (KeyError, TypeError, ValueError):
        return "grad norms after your clipping"
    did = f"×{factor:.2g}" if factor < 1 else "no clip"
    return f"grad norms after your clipping ({did} @ {step:,})"


class StatusBar(Static):
    """Top two lines: what runs, how it is doing (loss, accuracy, gradient ratio), how fast, and in which state."""

    def show(self, snap: Snapshot | None, preset: str, waiting_note: str = "") -> None:
        self.update(status_text(snap, preset, waiting_note, self.size.width or self.app.size.width))
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
    out = [Text.assemble((f"{icon} ", style), (plain_numbers(v.text), style if v.severity == "bad" else ""))]
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
    _, measure, ratio = grad_ratio(snap.grad_norm, snap.time_grad_norm)
    if np.isfinite(ratio):  # named, so it is not taken for the chain-rule product beside it
        value = fmt_ratio(ratio) + (" (underflows to 0 in float32)" if ratio == 0 else "")
        lines.append(Text.assemble(f"{measure} = ", (value, "bold"), style="dim" if 1e-2 < ratio < 1e2 else ""))
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
