"""`vgtui attach TARGET --out FILE.jsonl`: the whole run a viewer can see, as a run log. No torch.

A viewer that joins gets the history so far ('backfill' frames: one row per step, as the hub keeps it) and then
every publish with the rows of the steps since the one before. The recorder writes one 'step' line per step from
those rows, backfill first, each step once: a row at or below the last step written is skipped, so the seam between
backfill and live rows, and a resync after frames were dropped, neither repeat nor skip a step the hub still has.
Each line is what a viewer would have shown at that step: the step's loss, accuracy, learning rate and gradient
norms, and the newest heavy statistics with their `stats_step` (as every Snapshot carries them). The newest line
is held back until the next frame, so that the publish of the same step (the final one says "done") completes it.
Events, diagnoses and notices go in as they arrive; the format is the one `vgtui run --out` writes, so
`vgtui replay` and `vgtui plot` read it.

A backfill holds every step of a run up to 2,048 steps; a longer run's is thinned evenly to 2,048 rows (the hub's
RESYNC_ROWS), so a recorder that joins late records the part before it at that resolution, and every step from its
join on.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np

from vgtui.attach import AttachSession
from vgtui.contract import Snapshot
from vgtui.history import LAYERWISE
from vgtui.runlog import RunLogWriter, event_record, meta_record, step_record
from vgtui.watchlog import user_config, write_news
from vgtui.wire_messages import backfill_rows, rows_from

STATS = LAYERWISE[1:]  # measured on heavy steps only


class RunRecorder:
    """Frames (after the AttachSession read them) -> run log lines; see the module docstring."""

    def __init__(self, writer: RunLogWriter, name: str = "watch") -> None:
        self.writer, self.name = writer, name
        self.records = 0  # step lines written
        self.last_step = 0  # the newest step taken (written or pending)
        self._meta = False
        self._early: list[tuple[int, dict[str, float], dict[str, np.ndarray]]] = []  # rows before the first snapshot
        self._pending: dict[str, Any] | None = None
        self._layers: list[str] = []
        self._model: tuple[str, dict[str, Any]] = ("", {})
        self._stats: dict[str, np.ndarray] = {}
        self._stats_step = 0
        self._hist: tuple[int, np.ndarray] | None = None
        self._events = 0  # the run's events written (by their index in the run)
        self._notice = 0
        self._verdicts: Any = None

    # ------------------------------------------------------------------ frames

    def frame(self, session: AttachSession, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        kind = header.get("t")
        if kind == "backfill":
            for step, scalars, layers in backfill_rows(header, arrays):
                self._row(step, scalars, layers)
        elif kind == "pub":
            snap = session._latest
            if snap is None:
                return
            if not self._meta and snap.layer_names:
                self._start(snap, session.hello)
            if not self._meta:
                return
            self._new_events(session)
            rows = rows_from(header, arrays)
            if rows is not None:
                self._pub_rows(rows)
            self._snapshot(snap)
        elif kind == "bye" and self._pending is not None:
            self._pending["status"] = "done"
            self.flush()

    def flush(self) -> None:
        """Write the held-back line (at the end of the run, or when the recording stops)."""
        if self._pending is not None:
            self.writer.write(_short(self._pending))
            self.records += 1
            self._pending = None

    # ------------------------------------------------------------------ lines

    def _start(self, snap: Snapshot, hello: dict[str, Any]) -> None:
        """The meta line from the first snapshot that names the layers, then the rows that came before it."""
        self.name = str(hello.get("name", self.name))
        self._layers = list(snap.layer_names)
        self._model = (snap.model.describe(), asdict(snap.model))
        config = user_config(self.name, snap, int(hello.get("heavy_every", 0)))
        self.writer.write(meta_record(config, snap.device, self._layers))
        self._meta = True
        early, self._early = self._early, []
        for row in early:
            self._row(*row)

    def _pub_rows(self, rows: dict[str, Any]) -> None:
        start = 0
        light, steps, lr = rows["light"], rows["steps"], float(rows["lr"])
        for end, heavy_step, heavy in rows["segments"]:
            for i in range(start, end):
                step = int(steps[i])
                loss, acc, grad_total, clipped = light[i, :4].tolist()
                scalars = {"loss": loss, "acc": acc, "lr": lr, "grad_total": grad_total, "clipped": clipped}
                layers = {"grad_norm": light[i, 4:]}
                if heavy is not None and step == heavy_step:
                    layers.update(heavy)
                self._row(step, scalars, layers)
            start = end

    def _row(self, step: int, scalars: dict[str, float], layers: dict[str, np.ndarray]) -> None:
        """One step's line, unless that step is already in the log."""
        if not self._meta:
            if not self._early or step > self._early[-1][0]:
                self._early.append((step, scalars, layers))
            return
        if step <= self.last_step:
            return
        if any(name in layers for name in STATS):
            self._stats = {name: layers[name] for name in STATS if name in layers}
            self._stats_step = step
        n = len(self._layers)
        rec: dict[str, Any] = {
            "type": "step",
            "step": step,
            "loss": scalars.get("loss"),
            "acc": scalars.get("acc"),
            "lr": scalars.get("lr"),
            "grad_total": scalars.get("grad_total"),
            "clipped": bool(scalars.get("clipped", 0) > 0.5),
            "layers": self._layers,
            "grad_norm": _sized(layers.get("grad_norm"), n),
            **{name: _sized(self._stats.get(name), n) for name in STATS},
            "stats_step": self._stats_step,
            "status": "running",
            "model": self._model[0],
            "model_state": self._model[1],
        }
        if self._hist is not None:
            rec["hist_layer"], rec["hist_counts"] = self._hist
        self._take(rec)

    def _snapshot(self, snap: Snapshot) -> None:
        """A publish's snapshot completes the line of its step (or is that line, where no row carried the step)."""
        self._model = (snap.model.describe(), asdict(snap.model))
        self._hist = (snap.hist_layer + 1, snap.hist_counts)
        if snap.layer_names and list(snap.layer_names) != self._layers:
            self._layers = list(snap.layer_names)
        if snap.step > 0 and (self._pending is not None and self._pending["step"] == snap.step):
            self._pending = step_record(snap)
        elif snap.step > self.last_step and snap.layer_names:
            self._take(step_record(snap))
        write_news(self, snap)

    def _take(self, rec: dict[str, Any]) -> None:
        self.flush()
        self._pending = rec
        self.last_step = rec["step"]

    def _new_events(self, session: AttachSession) -> None:
        base, known = session._event_base, session.events
        for i in range(max(self._events, base), base + len(known)):
            self.writer.write(event_record(known[i - base]))
        self._events = max(self._events, base + len(known))


class RecordingSession(AttachSession):
    """An AttachSession that hands every frame it read to `on_frame` (the recorder)."""

    on_frame: Callable[[AttachSession, dict[str, Any], dict[str, np.ndarray]], None] | None = None

    def _handle(self, header: dict[str, Any], arrays: dict[str, Any]) -> None:
        super()._handle(header, arrays)
        if self.on_frame is not None:
            self.on_frame(self, header, arrays)


def record(session: RecordingSession, out: str) -> int:
    """Write the run log headless until the watched run ends (or Ctrl+C); the exit code (0: the run ended)."""
    writer = RunLogWriter(out)  # a path that cannot be written is refused before anything else
    recorder = RunRecorder(writer)
    session.on_frame = recorder.frame  # before the join: the backfill may come in the same read as the hello
    try:
        session.start()
    except BaseException:
        writer.discard()
        raise
    name = recorder.name = str(session.hello.get("name", "watch"))
    print(f"vgtui: recording {name} to {out} until the run ends (Ctrl+C stops)", file=sys.stderr)
    code = None
    try:
        while not session.ended.wait(0.5):
            pass
    except KeyboardInterrupt:
        print("vgtui: interrupted: the run log is complete up to the last step received", file=sys.stderr)
        code = 130
    finally:
        session.stop()
        recorder.flush()
        if writer.lines == 0:
            writer.discard()  # the run published nothing: no file (an empty one is not a run log)
        else:
            writer.close()
    last = session.latest()
    status = last.status if last else "gone"
    print(f"vgtui: {recorder.records} steps recorded to {out} (the last: {recorder.last_step}); the run is {status}",
          file=sys.stderr)  # fmt: skip
    return code if code is not None else 0 if status == "done" else 1


def _short(value: Any) -> Any:
    """Numbers to 8 significant digits: the wire carries float32 (about 7), more digits would only be noise."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, float):
        return float(f"{value:.8g}")
    if isinstance(value, (list, tuple)):
        return [_short(v) for v in value]
    if isinstance(value, dict):
        return {k: _short(v) for k, v in value.items()}
    return value


def _sized(values: Any, n: int) -> np.ndarray | None:
    """Per-layer values as a float array of the run's layer count (None where unknown)."""
    if values is None:
        return None
    arr = np.asarray(values, dtype=np.float64)
    return arr if len(arr) == n else None
