"""Text panels: the status bar and the live diagnosis (the "why" panel is vgtui.tui.why_panel)."""

from __future__ import annotations

import re

import numpy as np
from rich.console import Group
from rich.text import Text
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static

from vgtui.contract import Snapshot, Verdict
from vgtui.tui.series import fmt_num, fmt_ratio, grad_ratio, plain_numbers, remedy_key

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
    if snap.status == "error" and snap.model is not None and snap.model.kind == "user":  # a watched run
        said = [n.text for n in snap.notices if n.level == "error"]
        lines.append(Text("✖ The watched run stopped:", "bold red"))
        lines.append(Text("  " + (snap.error or (said[-1] if said else "no reason given")), "red"))
        lines.append(Text("   → its own terminal may say more; the charts keep what it published", "cyan"))
    elif snap.status == "error":
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
