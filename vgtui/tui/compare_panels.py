"""The text panels of a comparison: the status bar with the loss and accuracy gap (B − A) and where the toggle
keys go, one diagnosis per run, and the chain-rule table with a B/A column. No torch."""

from __future__ import annotations

import math

import numpy as np
from rich.console import Group
from rich.text import Text

from vgtui.contract import ModelState, Snapshot
from vgtui.tui.panels import (
    NOTE_STYLE,
    STATUS_STYLE,
    DiagnosisPanel,
    StatusBar,
    _pack,
    replay_info,
    verdict_lines,
)
from vgtui.tui.series import fmt_num, fmt_ratio
from vgtui.tui.why_panel import ChainTable, WhyPanel, product_style

A_STYLE, B_STYLE = "bold cyan", "bold dark_orange"


def target_of(snap: Snapshot | None) -> str:
    """The run the toggle keys go to: 'B' while comparing (unless moved back to A), else 'A'."""
    return snap.compare.target if snap is not None and snap.compare is not None else "A"


def model_of(snap: Snapshot) -> ModelState:
    """The model the toggle keys change: B's while they go to B."""
    return snap.compare.b.model if snap.compare is not None and snap.compare.target == "B" else snap.model


def signed(x: float, fmt=fmt_num) -> str:
    """'+0.12', '−0.56'; '–' where it does not apply."""
    if not math.isfinite(x):
        return "–"
    return ("+" if x >= 0 else "−") + fmt(abs(x))


def gap(a: float, b: float) -> float:
    return b - a if math.isfinite(a) and math.isfinite(b) else math.nan


def gap_text(snap: Snapshot) -> Text:
    """'gap B−A: loss −0.568 · acc +44%': what B gains over A now (accuracy where the task has one)."""
    b = snap.compare.b  # type: ignore[union-attr]
    t = Text.assemble("gap B−A: loss ", (signed(gap(snap.loss, b.loss)), "bold"))
    if math.isfinite(snap.acc) or math.isfinite(b.acc):
        d = gap(snap.acc, b.acc)
        t.append_text(Text.assemble(" · acc ", ("–" if not math.isfinite(d) else signed(100 * d, _pct_points), "bold")))
    return t


def _pct_points(x: float) -> str:
    return f"{x:.0f}%"


def compare_status_text(snap: Snapshot, preset: str, waiting_note: str = "", width: int = 160) -> Text:
    """Two lines fitted to `width`: state · preset · step · the gap · where toggles go · both losses · speed; then
    the note on a sent toggle and both models."""
    comp = snap.compare
    assert comp is not None
    replay = replay_info(snap)
    icon, style = STATUS_STYLE.get(snap.status, (snap.status, "bold"))
    b_icon, b_style = STATUS_STYLE.get(comp.b.status, (comp.b.status, "bold"))
    state = Text.assemble((f" A {icon.split()[0]} ", style), (f" B {b_icon.split()[0]} ", b_style))
    goes = Text("") if replay else Text.assemble("toggles → ", (f"{comp.target}", "bold reverse"), " [w]")
    pieces = [
        (0, state),
        (0, gap_text(snap)),
        (1, goes),
        (1, Text(f"step {snap.step:,}")),
        (2, Text(snap.preset or preset, style="bold")),
        (3, Text.assemble(("A", A_STYLE), f" {fmt_num(snap.loss)} · ", ("B", B_STYLE), f" {fmt_num(comp.b.loss)}")),
    ]
    if replay:
        pieces.insert(2, (0, Text(f"record {replay['record']:,}/{replay['records']:,} · x{replay['speed']:g}")))
    else:
        pieces += [(4, Text(f"{snap.steps_per_sec:.1f} steps/s")), (5, Text(snap.device))]
    second = Text(no_wrap=True, overflow="ellipsis")
    if waiting_note:
        second.append(f" {waiting_note} ", NOTE_STYLE.get(waiting_note[:1], "bold black on yellow"))
        second.append(" ")
    second.append_text(Text.assemble((f" {comp.label} ", B_STYLE), (" A ", A_STYLE), snap.model.describe()))
    return Text("\n").join([_pack([p for p in pieces if p[1].plain], width), second])


def compare_diagnosis(snap: Snapshot, error: str | None = None) -> Group:
    """One diagnosis per run: A's first verdict (and its remedies), then B's."""
    comp = snap.compare
    assert comp is not None
    lines: list[Text] = []
    if error:
        lines.append(Text("✖ " + error, "bold red"))
    for name, style, run in (("A: the preset", A_STYLE, snap), (comp.label, B_STYLE, comp.b)):
        lines.append(Text(name, style))
        if run.status == "error":
            lines.append(Text("✖ " + (run.error or "the run stopped with an error"), "bold red"))
        verdicts = run.verdicts[:1]
        for v in verdicts:
            lines.extend(verdict_lines(v)[:3])
        if not verdicts and run.status != "error":
            lines.append(Text("No diagnosis yet.", "dim"))
    return Group(*lines)


def compare_why(snap: Snapshot, selected: int, max_rows: int) -> ChainTable:
    """Per layer from the output back (per time step for an RNN): A's and B's gradient, B/A, and each run's
    running product of gains. '–' where a run has no such layer or the value is undefined."""
    comp = snap.compare
    assert comp is not None
    b = comp.b
    if snap.time_grad_norm is not None or b.time_grad_norm is not None:
        return _time_rows(snap, b, max_rows)
    table = ChainTable(
        "why: the chain rule, A vs B, output → input",
        "‖g‖: weight gradient · B/A: B's over A's · product: ‖∂L/∂h‖ reaching the layer / at the output",
        ("layer", "A ‖g‖", "B ‖g‖", "B/A", "A product", "B product"),
        optional=(1, 2, 4),
    )
    n = max(len(snap.grad_norm), len(b.grad_norm))
    for layer in _order(n, max_rows):
        if layer < 0:
            table.add_row("…", "", "", "", "", "")
            continue
        ga, gb = _at(snap.grad_norm, layer), _at(b.grad_norm, layer)
        pa, pb = _at(snap.gain_product, layer), _at(b.gain_product, layer)
        ratio = gb / ga if math.isfinite(ga) and math.isfinite(gb) and ga > 0 else math.nan
        table.add_row(str(layer + 1), fmt_num(ga), fmt_num(gb), (fmt_ratio(ratio), _ratio_style(ratio)),
                      (_product(pa), product_style(pa)), (_product(pb), product_style(pb)),
                      style="reverse" if layer == selected else "")  # fmt: skip
    return table


def _time_rows(a: Snapshot, b: Snapshot, max_rows: int) -> ChainTable:
    table = ChainTable(
        "why: the chain rule through time, A vs B, last step → first",
        "‖∂L/∂h_t‖ of each run · B/A: B's over A's",
        ("step", "A ‖∂L/∂h_t‖", "B ‖∂L/∂h_t‖", "B/A"),
        optional=(1, 2),
    )
    ta = a.time_grad_norm if a.time_grad_norm is not None else np.zeros(0)
    tb = b.time_grad_norm if b.time_grad_norm is not None else np.zeros(0)
    for t in _order(max(len(ta), len(tb)), max_rows):
        if t < 0:
            table.add_row("…", "", "", "")
            continue
        va, vb = _at(ta, t), _at(tb, t)
        ratio = vb / va if math.isfinite(va) and math.isfinite(vb) and va > 0 else math.nan
        table.add_row(str(t + 1), fmt_num(va), fmt_num(vb), (fmt_ratio(ratio), _ratio_style(ratio)))
    return table


def _order(n: int, max_rows: int) -> list[int]:
    """Indices from the last back to the first, elided in the middle (-1) to fit `max_rows`."""
    order = list(range(n - 1, -1, -1))
    max_rows = max(3, max_rows)
    if n > max_rows:
        head = (max_rows - 1) // 2
        order = order[:head] + [-1] + order[n - (max_rows - 1 - head) :]
    return order


def _at(values: np.ndarray, i: int) -> float:
    return float(values[i]) if i < len(values) else math.nan


def _product(p: float) -> str:
    return "–" if math.isnan(p) else fmt_ratio(p)


def _ratio_style(ratio: float) -> str:
    """Green where B's gradient is 100× A's or more (the remedy lets it through), red where 100× less."""
    if not math.isfinite(ratio):
        return ""
    return "bold green" if ratio >= 100 else "bold red" if ratio <= 1e-2 else ""


class CompareStatusBar(StatusBar):
    """The status bar; while comparing, the gap B − A and the run the toggle keys go to."""

    def show(self, snap: Snapshot | None, preset: str, waiting_note: str = "") -> None:
        if snap is None or snap.compare is None:
            return super().show(snap, preset, waiting_note)
        self.update(compare_status_text(snap, preset, waiting_note, self.size.width or self.app.size.width))
        self.set_class(snap.status in ("error", "diverged"), "-alarm")


class CompareDiagnosisPanel(DiagnosisPanel):
    """The diagnosis; while comparing, one verdict per run."""

    def show(self, snap: Snapshot | None, error: str | None = None) -> None:
        if snap is None or snap.compare is None:
            return super().show(snap, error)
        self.update(compare_diagnosis(snap, error))


class CompareWhyPanel(WhyPanel):
    """The chain-rule table; while comparing, A and B side by side with a B/A column."""

    def show(self, snap: Snapshot | None, selected: int) -> None:
        if snap is None or snap.compare is None:
            return super().show(snap, selected)
        self.update(compare_why(snap, selected, max(3, (self.size.height or 12) - 3)))
