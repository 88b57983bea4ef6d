"""ReplaySession: a recorded run log played back behind the Session face, without torch.

The dashboard cannot tell it from a live run: it reads `latest()` and `history` as usual. Space
plays/pauses, Step moves forward, Seek moves either way, NextEvent jumps to the next recorded toggle,
SetSpeed changes the playback speed (x0.5 .. x8), Reset goes back to the start. Toggles are refused:
a recording shows what was done, it cannot be changed.
"""

from __future__ import annotations

import math
import queue
from pathlib import Path
from typing import Any

import numpy as np

from vgtui.config import ConfigError, from_resolved, model_state
from vgtui.contract import (
    HIST_BINS,
    HIST_EDGES,
    Command,
    Event,
    ModelState,
    NextEvent,
    Notice,
    Pause,
    Reset,
    Resume,
    Seek,
    SetSpeed,
    Snapshot,
    Step,
    Verdict,
)
from vgtui.history import LAYERWISE, History
from vgtui.runlog import read_runlog
from vgtui.worker import ThreadedSession

BASE_RATE = 10.0  # published steps shown per second at x1
SPEEDS = (0.5, 8.0)


def _arr(values: Any) -> np.ndarray:
    if values is None:
        return np.zeros(0)
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


class ReplaySession(ThreadedSession):
    """Plays a run log (from `vgtui run --out` or `vgtui launch --record`)."""

    thread_name = "vgtui-replay"
    kind = "replay"  # the dashboard shows the replay keys, footer and status for this session

    def __init__(self, path: str | Path, speed: float = 1.0) -> None:
        super().__init__()
        self.source = Path(path).name  # the recording's file name, in the dashboard's status bar
        try:
            records = read_runlog(path)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not a vgtui run log ({exc})") from None
        if not records or records[0].get("type") != "meta" or "config" not in records[0]:
            raise ConfigError(f"{path}: not a vgtui run log: the first line must be the 'meta' record")
        meta = records[0]
        try:
            self.config = from_resolved(meta["config"])
        except TypeError as exc:
            raise ConfigError(f"{path}: the meta record's config is not valid ({exc})") from None
        self.steps = [_upgrade(r) for r in records if r.get("type") == "step" and isinstance(r.get("step"), int)]
        if not self.steps:
            raise ConfigError(f"{path}: the run log has no step records to replay")
        self.device = f"replay of {meta.get('device', '?')}"
        self.events = [Event(r["step"], r["name"], str(r["value"])) for r in records if r.get("type") == "event"]
        self.diagnoses = [(r["step"], _verdicts(r)) for r in records if r.get("type") == "diagnosis"]
        self.recorded_notices = [
            (r["step"], r.get("level", "info"), r["text"]) for r in records if r.get("type") == "notice"
        ]
        self.history = History()
        self.speed = min(max(speed, SPEEDS[0]), SPEEDS[1])
        self.pos = -1
        self.playing = True
        self._notices: list[Notice] = []
        self._goto(0)

    # ------------------------------------------------------------------ playback

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                command = self._commands.get(timeout=1.0 / (BASE_RATE * self.speed) if self.playing else 0.1)
            except queue.Empty:
                if self.playing:
                    self._goto(self.pos + 1)
                continue
            self.handle(command)

    def handle(self, command: Command) -> None:
        """Apply one command now (the player thread calls this; tests may call it directly)."""
        if isinstance(command, Pause):
            self.playing = False
        elif isinstance(command, Resume):
            self.playing = self.pos < len(self.steps) - 1
        elif isinstance(command, Step):
            self.playing = False
            self._goto(self.pos + max(1, command.count))
        elif isinstance(command, Seek):
            self._goto(self.pos + command.records)
        elif isinstance(command, SetSpeed):
            self.speed = min(max(self.speed * command.factor, SPEEDS[0]), SPEEDS[1])
            self._notify("info", f"replay speed x{self.speed:g}")
        elif isinstance(command, NextEvent):
            step = self.steps[self.pos]["step"]
            later = [e.step for e in self.events if e.step > step]
            if later:
                after = [i for i, r in enumerate(self.steps) if r["step"] > later[0]]
                self._goto(after[0] if after else len(self.steps) - 1)
            else:
                self._notify("info", "no later toggle in this recording")
        elif isinstance(command, Reset):
            self._goto(0)
        else:
            self._notify("warn", "this is a recording: it shows what was done and cannot be changed")
        self._publish()

    def _goto(self, index: int) -> None:
        index = min(max(index, 0), len(self.steps) - 1)
        if index < self.pos:  # going back: rebuild the history from the start
            self.history.clear()
            self.pos = -1
        for i in range(self.pos + 1, index + 1):
            self._add_row(self.steps[i])
        self.pos = index
        if index == len(self.steps) - 1:
            self.playing = False
        self._publish()

    def _add_row(self, r: dict) -> None:
        scalars = {k: _num(r.get(k)) for k in ("loss", "acc", "lr", "grad_total")}
        scalars["clipped"] = float(bool(r.get("clipped")))
        layers = {"grad_norm": _arr(r.get("grad_norm"))}
        if r.get("stats_step") == r["step"]:
            layers.update({k: _arr(r.get(k)) for k in LAYERWISE if k != "grad_norm"})
        self.history.append(r["step"], scalars, layers)

    def _notify(self, level: str, text: str) -> None:
        self._notices.append(Notice(len(self._notices) + 1 + 1000, level, text))

    def _publish(self) -> None:
        self._latest = self.snapshot(self.pos)

    def snapshot(self, index: int) -> Snapshot:
        """The Snapshot the live session published at step record `index`."""
        r = self.steps[index]
        step = r["step"]
        n = len(r.get("grad_norm") or ())
        state = r.get("model_state")
        model = ModelState(**state) if isinstance(state, dict) else model_state(self.config)
        verdicts: tuple[Verdict, ...] = ()
        for at, vs in self.diagnoses:
            if at <= step:
                verdicts = vs
        recorded = [Notice(i + 1, lvl, text) for i, (at, lvl, text) in enumerate(self.recorded_notices) if at <= step]
        last = index == len(self.steps) - 1
        status = "paused" if not self.playing else "running"
        if last:
            status = "done" if r.get("status") in (None, "done", "running") else r.get("status", "done")
        elif r.get("status") in ("diverged", "error"):
            status = r["status"]
        tgn, tcgn = r.get("time_grad_norm"), r.get("time_cell_grad_norm")

        def layer(key: str) -> np.ndarray:
            values = _arr(r.get(key))
            return values if len(values) == n else np.full(n, np.nan)

        return Snapshot(
            step=step,
            status=status,
            loss=_num(r.get("loss")),
            acc=_num(r.get("acc")),
            lr=_num(r.get("lr")),
            grad_total=_num(r.get("grad_total")),
            clipped=bool(r.get("clipped")),
            layer_names=tuple(r.get("layers") or (f"L{i + 1}" for i in range(n))),
            grad_norm=layer("grad_norm"),
            weight_norm=layer("weight_norm"),
            update_ratio=layer("update_ratio"),
            weight_mean_abs=layer("weight_mean_abs"),
            saturation=layer("saturation"),
            dead=layer("dead"),
            negative=layer("negative"),  # logs before these keys: NaN (unknown)
            slope=layer("slope"),
            gain=layer("gain"),
            gain_product=layer("gain_product"),
            hist_layer=max(0, int(r.get("hist_layer") or 1) - 1),
            hist_edges=HIST_EDGES,
            hist_counts=_arr(r.get("hist_counts")) if r.get("hist_counts") else np.zeros(HIST_BINS),
            time_grad_norm=_arr(tgn) if tgn else None,
            model=model,
            verdicts=verdicts,
            events=tuple(e for e in self.events if e.step <= step),
            notices=tuple(recorded + self._notices),
            steps_per_sec=_num(r.get("steps_per_sec")) * (1 if self.playing else 0) if r.get("steps_per_sec") else 0.0,
            device=f"{self.device} · x{self.speed:g} · {index + 1}/{len(self.steps)}",
            preset=self.config.name,
            title=self.config.title,
            error=None,
            stats_step=int(r.get("stats_step") or 0),
            time_cell_grad_norm=_arr(tcgn) if tcgn else None,
            extra={
                "replay": {"file": self.source, "speed": self.speed, "record": index + 1, "records": len(self.steps)}
            },
        )


def _upgrade(record: dict) -> dict:
    """A step record of a log written before the slope (vgtui 0.1 logs): where it wrote 0 for a statistic that is
    undefined for its model (saturation of ReLU, dead units of sigmoid, saturation of a gated RNN cell), the value
    is unknown (NaN), not 0."""
    state = record.get("model_state")
    if "slope" in record or not isinstance(state, dict):
        return record
    n = len(record.get("grad_norm") or ())
    unknown = [None] * n
    if state.get("kind") == "rnn":
        if state.get("cell") in ("lstm", "gru"):
            record["saturation"] = unknown
    elif state.get("activation") in ("sigmoid", "tanh"):
        record["dead"] = unknown
    else:  # relu, leaky_relu (whose 'dead' was never measured)
        record["saturation"] = unknown
        if state.get("activation") != "relu":
            record["dead"] = unknown
    return record


def _verdicts(record: dict) -> tuple[Verdict, ...]:
    return tuple(Verdict(v["code"], v["severity"], v["text"], tuple(v.get("remedies", ()))) for v in record["verdicts"])
