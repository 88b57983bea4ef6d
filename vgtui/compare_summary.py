"""The closing summary of `vgtui run --compare`: run A (the preset) beside run B (the remedy), one column each,
the gap between them, and one diagnosis per run. No torch."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from vgtui.config import RunConfig
from vgtui.contract import Snapshot


def fmt(x: float) -> str:
    """A number for the summary; '–' where it does not apply (NaN)."""
    if not math.isfinite(x):
        return "–" if math.isnan(x) else str(x)
    return f"{x:.2e}" if (x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e4)) else f"{x:.4f}"


def gap(a: float, b: float) -> float:
    """B minus A; NaN where either is not a finite number."""
    return b - a if math.isfinite(a) and math.isfinite(b) else math.nan


def signed(x: float) -> str:
    return "–" if not math.isfinite(x) else ("+" if x >= 0 else "−") + fmt(abs(x))


def compare_rows(a: Snapshot, b: Snapshot) -> list[tuple[str, str, str, str]]:
    """(what, A, B, B − A or B / A) rows of the summary table."""
    rows = [("status", f"{a.status} at step {a.step}", f"{b.status} at step {b.step}", "")]
    rows.append(("loss", fmt(a.loss), fmt(b.loss), signed(gap(a.loss, b.loss))))
    if math.isfinite(a.acc) or math.isfinite(b.acc):
        rows.append(("accuracy", fmt(a.acc), fmt(b.acc), signed(gap(a.acc, b.acc))))
    ra, rb = a.first_last_ratio, b.first_last_ratio
    ratio = rb / ra if math.isfinite(ra) and math.isfinite(rb) and ra != 0 else math.nan
    rows.append(("weight-grad ratio layer 1 / last", fmt(ra), fmt(rb), f"B/A {fmt(ratio)}"))
    rows.append(("model", a.model.describe(), b.model.describe(), ""))
    return rows


def compare_summary(console: Console, config: RunConfig, last: Snapshot, out: object) -> None:
    """The table, then each run's diagnosis (the first verdict of each)."""
    comp = last.compare
    if comp is None:  # (the fork was scheduled after the run ended)
        console.print(f"{config.name}: run B was never forked (the run ended first)")
        return
    b = comp.b
    table = Table(title=f"{config.name}: A (the preset) vs {comp.label}", show_header=True)
    for name, justify in (("", "left"), ("A", "right"), ("B", "right"), ("B − A", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in compare_rows(last, b):
        table.add_row(*row)
    console.print(table)
    for run, snap in (("A", last), ("B", b)):
        for v in snap.verdicts[:1]:
            colour = "red" if v.severity == "bad" else "yellow" if v.severity == "warn" else "green"
            console.print(f"  {run}: [{colour}]{v.text}[/]")
    if out:
        console.print(f"run log: {getattr(out, 'path', out)}", highlight=False)
