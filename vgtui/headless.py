"""`vgtui run`: drive a Session without a UI, write the run log, show progress and a summary."""

from __future__ import annotations

import math
import os
import re
import sys

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vgtui.compare_summary import compare_summary
from vgtui.config import RunConfig
from vgtui.contract import Command, Snapshot, Toggle
from vgtui.engine.compare import CompareSession
from vgtui.engine.session import Session
from vgtui.engine.toggles import compare_label, parse_remedy
from vgtui.runlog import Recorder, RunLogError, RunLogWriter, compare_record, meta_record

KEY_HINT = re.compile(r"\s*\((?:[a-zA-Z+\-\[\]]|ctrl\+\w)\)")  # "(a)", "(+)": dashboard keys, not options here


def run_headless(
    config: RunConfig,
    schedule: list[tuple[int, Command]],
    *,
    device: str = "auto",
    out: str | RunLogWriter | None = None,
    quiet: bool = False,
    force: bool = False,
    plot: bool | None = None,
    compare: tuple[Toggle, ...] | None = None,
    fork_at: int = 0,
) -> int:
    """Train `config.train.steps` steps; returns the exit code (0 ok, 1 failed run or run log, 130 interrupted).

    `out` is a path or an already opened RunLogWriter (the command line opens it before importing torch, so that a
    bad path is refused at once). `compare`: train run B (the preset with these toggles, forked from A at step
    `fork_at`) beside run A in lockstep; every line of the log then carries its run, and the summary and charts
    compare the two.
    """
    console = Console(stderr=True)
    writer = RunLogWriter(out, force=force) if isinstance(out, str) else out
    recorder = Recorder(writer, run="A" if compare is not None else None)
    try:
        if compare is None:
            session = Session(config, device, max_steps=config.train.steps, schedule=schedule, on_publish=recorder)
        else:
            session = CompareSession(config, device, max_steps=config.train.steps, schedule=schedule,
                                     on_publish=recorder, compare=compare, fork_at=fork_at,
                                     on_publish_b=Recorder(writer, run="B"))  # fmt: skip
    except BaseException:
        if writer is not None:
            writer.discard()  # no run, no file left behind to refuse the next try
        raise
    if writer is not None:
        try:
            meta = meta_record(config, str(session.device), session.trainer.layer_names())
            if compare is not None:
                texts = [f"{t.name}={t.value}" for t in compare]
                meta["compare"] = compare_record(texts, fork_at, compare_label(compare, fork_at))
            writer.write(meta)
        except RunLogError as exc:
            print(f"vgtui: error: {exc}; nothing was trained", file=sys.stderr)
            return 1
    total = config.train.steps
    code = 0
    try:
        session.start()
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} steps"),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console,
            disable=quiet,
            transient=True,
        ) as progress:
            task = progress.add_task(config.name, total=total, info="")
            while not session.done.wait(0.1) and session.alive:
                snap = session.latest()
                if snap is not None:
                    progress.update(task, completed=_step(snap), info=_progress_info(snap))
            snap = session.latest()
            if snap is not None:
                progress.update(task, completed=_step(snap))
    except KeyboardInterrupt:
        code = 130
    finally:
        session.stop(timeout=2.0)
        if writer is not None:
            writer.close()
    last = session.latest()
    if code == 130:
        console.print(f"[yellow]interrupted: {_log_state(recorder, writer)}[/]", highlight=False)
    elif recorder.error is not None:
        print(f"vgtui: error: {recorder.error}; training stopped", file=sys.stderr)
        code = 1
    elif last is not None and last.status == "error":
        print(f"vgtui: error: {last.error}", file=sys.stderr)
        code = 1
    elif not session.done.is_set():
        print("vgtui: error: the training thread stopped without finishing the run", file=sys.stderr)
        code = 1
    if last is not None and compare is not None:
        compare_summary(Console(), config, last, out)
    elif last is not None:  # on stderr after a failed run, except after a run log failure: one line there
        loud = (code and recorder.error is None) or last.status == "diverged"
        _summary(console if loud else Console(), config, recorder.first, last, out)
    if last is not None and code != 130 and (plot or (plot is None and not quiet and sys.stdout.isatty())):
        _charts(session, last)
    if last is not None and last.status == "diverged" and code == 0 and compare is None:
        at = next((e.step for e in reversed(last.events) if e.name == "reset"), 0)
        print(f"vgtui: the run diverged (loss NaN/Inf) by step {last.step} and nothing scheduled could resume it; "
              f"try {_toggles(config, at)}", file=sys.stderr)  # fmt: skip
        code = 1
    return code


def _charts(session: Session, last: Snapshot) -> None:
    """plotext charts of the run on stdout: loss and accuracy, per-layer gradients, epoch vs weight, update ratio."""
    from vgtui.printed import curves_from_view, render, terminal_size

    events = [(e.step, e.label) for e in last.events]
    curves = curves_from_view(session.history.view(max_points=1000), last.layer_names, events)
    history_b = getattr(session, "history_b", None)
    if last.compare is not None and history_b is not None:
        b = last.compare.b
        curves.b = curves_from_view(
            history_b.view(max_points=1000), b.layer_names, [(e.step, e.label) for e in b.events]
        )
        curves.label_b = last.compare.label
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    print(render(curves, width=terminal_size()[0], height=terminal_size()[1], color=color))


def _step(snap: Snapshot) -> int:
    """Steps done: of the run further on, while comparing (a diverged A stops; B goes on)."""
    return max(snap.step, snap.compare.b.step) if snap.compare is not None else snap.step


def _progress_info(snap: Snapshot) -> str:
    if snap.compare is None:
        return f"loss {snap.loss:.4f}"
    return f"loss A {snap.loss:.4f}  B {snap.compare.b.loss:.4f}"


def _log_state(recorder: Recorder, writer: RunLogWriter | None) -> str:
    """What an interrupted run left in its log, claimed only as far as it is true."""
    if writer is None:
        return "no run log was written (no --out)"
    if recorder.error is not None:
        return str(recorder.error)
    if recorder.last_step is None:
        return f"the run log {writer.path} has no step yet"
    return f"the run log {writer.path} is complete up to step {recorder.last_step}, every line whole"


def _toggles(config: RunConfig, step: int, reset: bool = True) -> str:
    """The preset's first suggested remedy (or clipping) as --toggle options from `step` (a reset added if asked)."""
    remedy = config.suggest[0] if config.suggest else "clip=1.0 + reset"
    parts = [f"{c.name}={c.value}" if isinstance(c, Toggle) else "reset" for c in parse_remedy(remedy)]
    if reset and "reset" not in parts:
        parts.append("reset")
    return " ".join(f"--toggle {step}:{p}" for p in parts)


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "–" if math.isnan(x) else str(x)
    return f"{x:.2e}" if (x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e4)) else f"{x:.4f}"


def _summary(console: Console, config: RunConfig, first: Snapshot | None, last: Snapshot, out: object) -> None:
    table = Table(title=f"{config.name}: {last.status} at step {last.step}", show_header=True)
    table.add_column("")
    table.add_column("first", justify="right")
    table.add_column("last", justify="right")
    f = first or last
    table.add_row("loss", _fmt(f.loss), _fmt(last.loss))
    if math.isfinite(last.acc) or math.isfinite(f.acc):
        table.add_row("accuracy", _fmt(f.acc), _fmt(last.acc))
    for label, first_value, last_value in _ratio_rows(f, last):
        table.add_row(label, _fmt(first_value), _fmt(last_value))
    table.add_row("model", f.model.describe(), last.model.describe())
    console.print(table)
    for v in last.verdicts:
        console.print(
            f"  [{'red' if v.severity == 'bad' else 'yellow' if v.severity == 'warn' else 'green'}]{v.text}[/]"
        )
        if v.remedies:
            console.print(f"    remedies: {'; '.join(KEY_HINT.sub('', r) for r in v.remedies)}", highlight=False)
    if config.suggest and last.verdicts and last.verdicts[0].severity != "ok":
        console.print(f"  this scene's remedy, as vgtui run options: {_toggles(config, 300, reset=False)}",
                      highlight=False)  # fmt: skip
    if out:
        console.print(f"run log: {out.path if isinstance(out, RunLogWriter) else out}", highlight=False)


def _ratio_rows(first: Snapshot, last: Snapshot) -> list[tuple[str, float, float]]:
    """The gradient ratios of the summary, each named by what it divides.

    MLP: the weight gradient of hidden layer 1 over the last hidden layer's. RNN: the gradient reaching the hidden
    state at step 1 over the last step's (and, for an LSTM, the cell state's), then the weight gradient of the
    input projection over the head's (Snapshot.first_last_ratio: first over last shown weight).
    """
    if last.model.kind != "rnn":
        return [("weight-grad ratio layer 1 / last layer", first.first_last_ratio, last.first_last_ratio)]
    rows = []
    for label, name in (("‖∂L/∂h‖ ratio step 1 / last step", "time_grad_norm"),
                        ("‖∂L/∂c‖ ratio step 1 / last step", "time_cell_grad_norm")):  # fmt: skip
        a, b = getattr(first, name), getattr(last, name)
        if a is not None and b is not None:
            rows.append((label, _ratio(a), _ratio(b)))
    rows.append(("weight-grad ratio input proj / head", first.first_last_ratio, last.first_last_ratio))
    return rows


def _ratio(t) -> float:
    return float(t[0] / t[-1]) if len(t) > 1 and t[-1] > 0 else math.nan
