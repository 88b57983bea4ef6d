"""ReplaySession: a recorded run log played back behind the Session face, without torch.

The dashboard cannot tell it from a live run: it reads `latest()` and `history` as usual. Space
plays/pauses, Step moves forward, Seek moves either way, NextEvent jumps to the next recorded toggle,
SetSpeed changes the playback speed (x0.5 .. x8), Reset goes back to the start. Toggles are refused:
a recording shows what was done, it cannot be changed.
"""

from __future__ import annotations

import math
import queue
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from vgtui.config import model_state
from vgtui.contract import (
    HIST_BINS,
    HIST_EDGES,
    Command,
    Comparison,
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
    compare_legend,
)
from vgtui.history import LAYERWISE, History
from vgtui.logreader import RunLogIndex
from vgtui.runlog import RunLogError
from vgtui.worker import ThreadedSession

BASE_RATE = 10.0  # published steps shown per second at x1
SPEEDS = (0.5, 8.0)
SAMPLE_ROWS = 2048  # records a rebuilt history holds at most (a chart draws at most a few hundred points)
CACHE_ROWS = 6144  # history rows kept for the next rebuild (~2 KB each for 20 layers)
CHECK_ALL_BYTES = 8 << 20  # a log up to this size has every record checked when opened (~0.3 s)
MAX_EVENTS, MAX_NOTICES = 500, 20  # what a live session keeps in its snapshots


def _arr(values: Any) -> np.ndarray:
    if values is None:
        return np.zeros(0)
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


class ReplayBroken(RunLogError):
    """A step record that is not valid, found while playing: `index` is its position among the step records."""

    def __init__(self, index: int, exc: RunLogError) -> None:
        super().__init__(str(exc), exc.reason)
        self.index = index


class ReplaySession(ThreadedSession):
    """Plays a run log (from `vgtui run --out` or `vgtui launch --record`).

    The log is indexed, not loaded (vgtui.logreader): each step record is read back when it is shown. Going back,
    or far forward, rebuilds the history from at most SAMPLE_ROWS evenly spaced records (the charts draw fewer
    points than that), so a step back near the end of 100,000 records is as quick as one near the start.
    """

    thread_name = "vgtui-replay"
    kind = "replay"  # the dashboard shows the replay keys, footer and status for this session

    def __init__(self, path: str | Path, speed: float = 1.0, run: str = "A") -> None:
        super().__init__()
        self.log = RunLogIndex(path, run)
        self.source = Path(path).name  # the recording's file name, in the dashboard's status bar
        try:
            self._open()
        except BaseException:
            self.log.close()
            raise
        self.history = History()
        self.speed = min(max(speed, SPEEDS[0]), SPEEDS[1])
        self.pos = -1
        self.playing = True
        self._notices: list[Notice] = []
        self._rows: OrderedDict[int, tuple[int, dict[str, float], dict[str, np.ndarray]]] = OrderedDict()
        self.b: ReplaySession | None = None  # a compare log: run B, shown at run A's step
        compare = self.log.meta.get("compare")
        compare = compare if isinstance(compare, dict) else {}
        if run == "A" and self.log.other_run:
            try:
                self.b = ReplaySession(path, speed, run="B")
            except RunLogError:  # B was never forked (the run ended first): a replay of A
                self.b = None
            forks = [e.step for e in self.b.events if e.name == "fork"] if self.b is not None else []
            self.fork_step = forks[-1] if forks else int(compare.get("fork_at") or 0)
        self._goto(0)

    def _open(self) -> None:
        log = self.log
        self.config = log.config
        self.steps = log.steps  # the step number of each step record
        if not len(self.steps):
            raise RunLogError(f"{log.label}: the run log has no step records to replay")
        self.end = len(self.steps)  # records that can be shown: a bad record found while playing ends it early
        self.device = f"replay of {log.meta.get('device') or '?'}"
        self.events = log.events
        self.diagnoses = log.diagnoses
        self.recorded_notices = log.notices
        self._diagnosis_steps = np.array([at for at, _ in self.diagnoses], dtype=np.int64)
        self._diagnoses_sorted = bool(np.all(np.diff(self._diagnosis_steps) >= 0))
        # refused now, before the screen changes: a broken first or last record; every record of a small log
        for i in range(len(self.steps)) if log.size <= CHECK_ALL_BYTES else (0, len(self.steps) - 1):
            log.record(i)

    def stop(self, timeout: float = 1.0) -> None:
        super().stop(timeout)
        if not self.alive:
            self.log.close()
            if self.b is not None:
                self.b.log.close()

    @property
    def history_b(self) -> History | None:
        return self.b.history if self.b is not None and self.b._latest is not None else None

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
            self.playing = self.pos < self.end - 1
        elif isinstance(command, Step):
            self.playing = False
            self._goto(self.pos + max(1, command.count))
        elif isinstance(command, Seek):
            self._goto(self.pos + command.records)
        elif isinstance(command, SetSpeed):
            self.speed = min(max(self.speed * command.factor, SPEEDS[0]), SPEEDS[1])
            self._notify("info", f"replay speed x{self.speed:g}")
        elif isinstance(command, NextEvent):
            step = int(self.steps[self.pos])
            later = [e.step for e in self.events if e.step > step]
            if later:
                after = np.flatnonzero(self.steps[: self.end] > later[0])
                self._goto(int(after[0]) if len(after) else self.end - 1)
            else:
                self._notify("info", "no later toggle in this recording")
        elif isinstance(command, Reset):
            self._goto(0)
        else:
            self._notify("warn", "this is a recording: it shows what was done and cannot be changed")
        self._publish()

    def _goto(self, index: int) -> None:
        index = min(max(index, 0), self.end - 1)
        try:
            if index < self.pos or index - self.pos > SAMPLE_ROWS:
                self._rebuild(index)
            else:
                for i in range(self.pos + 1, index + 1):
                    self._append(self._row(i))
                    self.pos = i
            self.pos = index
            self._publish()
        except ReplayBroken as exc:
            self.playing = False
            self._notify("error", f"{exc}; the replay ends before it")
            if exc.index == 0 or exc.index >= self.end:
                return
            self.end = exc.index
            self._goto(min(index, self.end - 1))
            return
        if index == self.end - 1:
            self.playing = False

    def _rebuild(self, index: int) -> None:
        """The history of records 0..index from at most SAMPLE_ROWS of them, evenly spaced, the last included."""
        stride = 1
        while (index + 1) / stride > SAMPLE_ROWS:
            stride *= 2
        picks = list(range(0, index + 1, stride))
        if picks[-1] != index:
            picks.append(index)
        rows = [self._row(i) for i in picks]  # all read before the history changes (one may be broken)
        self.history.clear()
        for row in rows:
            self._append(row)
        self.pos = index

    def _record(self, index: int) -> dict:
        try:
            return _upgrade(self.log.record(index))
        except RunLogError as exc:
            raise ReplayBroken(index, exc) from None

    def _row(self, index: int) -> tuple[int, dict[str, float], dict[str, np.ndarray]]:
        """Record `index` as a history row (step, scalars, per-layer arrays), from a bounded cache."""
        row = self._rows.get(index)
        if row is not None:
            self._rows.move_to_end(index)
            return row
        r = self._record(index)
        scalars = {k: _num(r.get(k)) for k in ("loss", "acc", "lr", "grad_total")}
        scalars["clipped"] = float(bool(r.get("clipped")))
        keys = LAYERWISE if r.get("stats_step") == r["step"] else ("grad_norm",)
        layers = {k: _arr(r.get(k)).astype(np.float32) for k in keys}
        row = (r["step"], scalars, layers)
        self._rows[index] = row
        if len(self._rows) > CACHE_ROWS:
            self._rows.popitem(last=False)
        return row

    def _append(self, row: tuple[int, dict[str, float], dict[str, np.ndarray]]) -> None:
        self.history.append(*row)

    def _notify(self, level: str, text: str) -> None:
        self._notices.append(Notice(len(self._notices) + 1 + 1000, level, text))

    def _publish(self) -> None:
        snap = self.snapshot(self.pos)
        b = self.b
        if b is not None:  # run B as it was at this step of run A (the last of its records up to it)
            at = int(np.searchsorted(b.steps[: b.end], snap.step, side="right")) - 1
            if at < 0:
                b._latest = None
            elif at != b.pos or b._latest is None:
                b.playing = False
                b._goto(at)
            if b._latest is not None:
                label = compare_legend(snap.model, b._latest.model, self.fork_step)
                snap = replace(snap, compare=Comparison(label, self.fork_step, "B", b._latest))
        self._latest = snap

    def _verdicts_at(self, step: int) -> tuple[Verdict, ...]:
        if self._diagnoses_sorted:
            i = int(np.searchsorted(self._diagnosis_steps, step, side="right")) - 1
            return self.diagnoses[i][1] if i >= 0 else ()
        verdicts: tuple[Verdict, ...] = ()
        for at, vs in self.diagnoses:
            if at <= step:
                verdicts = vs
        return verdicts

    def snapshot(self, index: int) -> Snapshot:
        """The Snapshot the live session published at step record `index`."""
        r = self._record(index)
        step = r["step"]
        n = len(r.get("grad_norm") or ())
        state = r.get("model_state")
        model = ModelState(**state) if isinstance(state, dict) else model_state(self.config)
        verdicts = self._verdicts_at(step)
        shown = [(i, notice) for i, notice in enumerate(self.recorded_notices) if notice[0] <= step][-MAX_NOTICES:]
        recorded = [Notice(i + 1, lvl, text) for i, (_, lvl, text) in shown]
        last = index == self.end - 1
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
            events=tuple([e for e in self.events if e.step <= step][-MAX_EVENTS:]),
            notices=tuple(recorded + self._notices),
            steps_per_sec=_num(r.get("steps_per_sec")) * (1 if self.playing else 0) if r.get("steps_per_sec") else 0.0,
            device=f"{self.device} · x{self.speed:g} · {index + 1}/{len(self.steps)}",
            preset=self.config.name,
            title=self.config.title,
            error=None,
            stats_step=int(r.get("stats_step") or 0),
            grad_step=int(r.get("grad_step") or step),
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
