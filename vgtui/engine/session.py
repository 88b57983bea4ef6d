"""Session: the trainer in a worker thread behind a small face (start, send, latest, history, stop)."""

from __future__ import annotations

import math
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import numpy as np
import torch

from vgtui.config import RunConfig
from vgtui.contract import (
    Command,
    Event,
    NextEvent,
    Notice,
    Pause,
    Reset,
    Resume,
    Seek,
    SelectLayer,
    SetSpeed,
    Snapshot,
    Step,
    Toggle,
    Verdict,
)
from vgtui.engine.diagnosis import Diagnoser, Observation
from vgtui.engine.latest import Latest, heavy_dict
from vgtui.engine.telemetry import HIST_EDGES
from vgtui.engine.toggles import ToggleError
from vgtui.engine.trainer import Published, Trainer, pick_device
from vgtui.history import History
from vgtui.runlog import Recorder, RunLogWriter, meta_record
from vgtui.worker import ThreadedSession

MAX_EVENTS = 500
MAX_NOTICES = 20
# Heavy steps closer together than this are published together (one host transfer, then each heavy step's rows
# go through the history, the diagnoser and the subscriber in order, as if published one by one). Why: a publish
# costs ~130 us of Python and numpy on caches the training step just evicted, ~9% of a 1.4 ms step at
# train.log_every=1 (deep-sigmoid 20x64, 2-core x86_64); together, ~70 us a step. 20 ms is still 5x faster than
# the dashboard polls (4 Hz). The price: a divergence is seen up to 20 ms later (at log_every=10, up to 9 steps).
PUBLISH_INTERVAL_S = 0.02
MAX_PENDING_STEPS = 1024


@dataclass(frozen=True)
class PublishRecord:
    """What a subscriber (the run log) gets at each publish."""

    snapshot: Snapshot
    published: Published | None
    events: tuple[Event, ...]  # new since the previous publish
    verdicts_changed: bool


class Session(ThreadedSession):
    """Owns a Trainer and the worker thread that drives it.

    The worker drains commands between steps, trains, and every `log_every` steps moves the
    telemetry to the host once and publishes a Snapshot. It never waits for the UI.
    """

    def __init__(
        self,
        config: RunConfig,
        device: str = "auto",
        *,
        max_steps: int | None = None,
        schedule: Iterable[tuple[int, Command]] = (),
        on_publish: Callable[[PublishRecord], None] | None = None,
        history_capacity: int = 4096,
        start_paused: bool = False,
        cpu_threads: int | None = 1,
        record: str | None = None,
        record_force: bool = False,
    ) -> None:
        super().__init__()
        self.config = config
        self.device = pick_device(device)
        self.max_steps = max_steps
        self.cpu_threads = cpu_threads
        self._schedule = sorted(schedule, key=lambda item: item[0])
        self._on_publish = on_publish
        self.history = History(history_capacity)
        self._status = "paused" if start_paused else "running"
        self._steps_left = 0  # single steps requested while paused
        self._events: list[Event] = []
        self._events_tuple: tuple[Event, ...] | None = None  # Snapshot.events, rebuilt when an event comes
        self._new_events: list[Event] = []
        self._notices: list[Notice] = []
        self._notice_seq = 0
        self._error: str | None = None
        self._diagnoser = Diagnoser()
        self._verdicts: tuple[Verdict, ...] = ()
        self._last = Latest()
        self._published_at = 0.0  # perf_counter() of the last publish
        self.trainer = Trainer(config, self.device)
        self._writer: RunLogWriter | None = None
        if record:  # --record: the same run log as `vgtui run --out`, written as the session goes
            self._writer = RunLogWriter(record, force=record_force)
            self._notify("info", f"recording the run log to {record}")
            self._writer.write(meta_record(config, str(self.device), self.trainer.layer_names()))
            recorder, chained = Recorder(self._writer), on_publish

            def on_publish(rec: PublishRecord) -> None:
                recorder(rec)
                if chained is not None:
                    chained(rec)

            self._on_publish = on_publish
        self.done = threading.Event()  # set when max_steps reached, or on error/divergence with no way on

    @property
    def status(self) -> str:
        return self._status

    # ------------------------------------------------------------------ worker

    def _pin_threads(self) -> None:
        if self.device.type == "cpu" and self.cpu_threads:
            # Measured on 2 cores: these small models run 1.5-2.5x faster on one intra-op thread, and a
            # second OpenMP team in a worker thread fights the main thread's pool (0.4x).
            torch.set_num_threads(self.cpu_threads)

    def _train_one(self) -> bool | None:
        """One training step and its bookkeeping: whether the run reached max_steps (None: the step failed, and
        the run with it; a fault inside the step must not kill the session)."""
        try:
            self.trainer.train_step()
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
            return None
        if self._status == "paused" and self._steps_left > 0:
            self._steps_left -= 1
        finished = self.max_steps is not None and self.trainer.step >= self.max_steps
        if finished and self._status == "running":
            self._status = "done"
        return finished

    def _run(self) -> None:
        self._pin_threads()
        self._publish(force=True)
        while not self._stop.is_set():
            self._drain()
            self._apply_schedule()
            if self._status in ("diverged", "error") and self.max_steps is not None and not self._schedule:
                self.done.set()  # a headless run that nothing left in its schedule can resume: it ends here
            if not self._should_step():
                self._wait_for_command()
                continue
            finished = self._train_one()
            if finished is None:
                continue
            if finished or (self._steps_left == 0 and self._status == "paused"):
                self._publish(force=finished)
            elif self.trainer.heavy_due(self.trainer.step) and (
                time.perf_counter() - self._published_at >= PUBLISH_INTERVAL_S
                or self.trainer.pending >= MAX_PENDING_STEPS
            ):
                self._publish()
            if finished and self._status in ("done", "paused"):
                self.done.set()
        self._publish()
        if self._writer is not None:
            self._writer.close()

    def _should_step(self) -> bool:
        if self.max_steps is not None and self.trainer.step >= self.max_steps:
            return False
        if self._status == "running":
            return True
        return self._status == "paused" and self._steps_left > 0

    def _wait_for_command(self) -> None:
        try:
            command = self._commands.get(timeout=0.05)
        except queue.Empty:
            return
        self._handle(command)

    def _drain(self) -> None:
        while self._commands.qsize():  # (a get_nowait() on an empty queue raises: 3 us a step)
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            self._handle(command)

    def _apply_schedule(self) -> None:
        """Scheduled commands whose step has come. A diverged or failed run cannot reach later steps,
        so it takes the next scheduled group at once (e.g. `--toggle 100:clip=1 --toggle 100:reset`)."""
        if self._schedule and self._status in ("diverged", "error"):
            due = self._schedule[0][0]
        else:
            due = self.trainer.step
        while self._schedule and self._schedule[0][0] <= due:
            _, command = self._schedule.pop(0)
            self._handle(command)

    def _handle(self, command: Command) -> None:
        self._publish()  # flush telemetry of the steps before the change
        if isinstance(command, Toggle):
            try:
                event = self.trainer.apply(command)
            except ToggleError as exc:
                self._notify("warn", str(exc))
            else:
                self._record(event)
        elif isinstance(command, Pause):
            if self._status == "running":
                self._status = "paused"
        elif isinstance(command, Resume):
            if self._status in ("diverged", "error"):
                self._notify("warn", f"the run is {self._status}: change a setting and reset (r) first")
            elif self._status == "paused":
                self._status = "running"
        elif isinstance(command, Step):
            if self._status in ("running", "paused", "done"):
                self._status = "paused"
                self._steps_left += max(1, command.count)
            else:
                self._notify("warn", f"the run is {self._status}: reset (r) before stepping")
        elif isinstance(command, Reset):
            self._reset()
        elif isinstance(command, SelectLayer):
            n = len(self.trainer.model.layer_weights())
            if 1 <= command.layer <= n:
                self.trainer.hist_layer = command.layer - 1
            else:
                self._notify("warn", f"layer {command.layer}: allowed: 1 to {n}")
        elif isinstance(command, (Seek, SetSpeed, NextEvent)):
            self._notify("warn", "seeking and speed work when replaying a recording (vgtui replay FILE.jsonl)")
        else:
            self._notify("warn", f"unknown command {command!r}")
        self._publish(force=True)

    def _reset(self) -> None:
        try:
            self.trainer.reset()
        except Exception as exc:
            self._fail(exc)
            return
        self._diagnoser.reset()
        self._verdicts = ()
        self._error = None
        if self._status in ("diverged", "error", "done"):
            self._status = "running"
        self._steps_left = 0
        self._record(Event(self.trainer.step, "reset", "seed"))
        self.done.clear()

    def _fail(self, exc: BaseException) -> None:
        self._publish()  # the steps before the failed one (a failed step leaves no telemetry behind)
        self._error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        self._status = "error"
        self._steps_left = 0
        self._notify("error", f"training step failed: {self._error} — reset (r) to start again")
        self._publish(force=True)
        if self.max_steps is not None and not self._schedule:  # nothing scheduled can rescue it
            self.done.set()

    def _record(self, event: Event) -> None:
        self._events.append(event)
        del self._events[:-MAX_EVENTS]
        self._events_tuple = None
        self._new_events.append(event)

    def _notify(self, level: str, text: str) -> None:
        self._notice_seq += 1
        self._notices.append(Notice(self._notice_seq, level, text))
        del self._notices[:-MAX_NOTICES]

    # ------------------------------------------------------------------ publishing

    def _publish(self, force: bool = False) -> None:
        """Move the pending telemetry to the host; each heavy step's rows then reach the history, the diagnoser
        and the subscriber in order, exactly as if each had been published on its own."""
        self._published_at = time.perf_counter()
        pubs = self.trainer.collect_all()
        if not pubs:
            if force:
                self._emit(None, False, self.trainer.step)
            return
        for i, pub in enumerate(pubs):
            changed = self._absorb(pub)
            if i == len(pubs) - 1:
                self._emit(pub, changed, self.trainer.step)
            elif self._on_publish is not None:  # an earlier heavy step: its own snapshot, for the subscriber
                self._emit(pub, changed, int(pub.steps[-1]), latest=False)
        if self._status == "diverged" and self.max_steps is not None and not self._schedule:
            self.done.set()  # after the snapshot that says so is the latest: a headless run ends here

    def _emit(self, pub: Published | None, changed: bool, step: int, latest: bool = True) -> None:
        snap = self._snapshot(step)
        if not latest and snap.status == "done":  # only the last step of the run is done
            snap = replace(snap, status="running", steps_per_sec=self._last.rate)
        if latest:
            self._latest = snap
        if self._on_publish is not None:
            events = tuple(self._new_events)
            self._new_events.clear()
            try:
                self._on_publish(PublishRecord(snap, pub, events, changed))
            except Exception as exc:  # e.g. the run log hit a full disk: stop here, not with a dead worker thread
                self._subscriber_failed(exc)
        else:
            self._new_events.clear()

    def _subscriber_failed(self, exc: Exception) -> None:
        """The subscriber (the run log) failed: the session ends with status 'error' and its message."""
        self._on_publish = None
        self._error = " ".join(str(exc).split()) or type(exc).__name__
        self._status = "error"
        self._steps_left = 0
        self._notify("error", f"{self._error}; training stopped (a reset starts it again, without the run log)")
        self._latest = self._snapshot(self.trainer.step)
        self._stop.set()
        self.done.set()

    def _absorb(self, pub: Published) -> bool:
        """Store a batch of steps in the history and update the latest values and verdicts."""
        light = pub.light
        state = self.trainer.state
        self.history.add_rows(pub.steps, light, heavy_dict(pub), pub.heavy_step, state.lr)
        last = self._last
        last.absorb(pub)
        last.update_rate(self._status == "running")
        # loss and total gradient norm of every row finite (float32 values: their float64 sum cannot overflow)
        diverged = not math.isfinite(light[:, 0:3:2].sum())
        before = tuple(v.code for v in self._verdicts)
        if pub.heavy is not None or diverged:
            heavy = last.heavy
            obs = Observation(
                step=last.step,
                kind=state.kind,
                activation=state.activation,
                loss=last.loss,
                baseline_loss=self.trainer.data.baseline_loss,
                grad_norm=last.grad_norm,
                grad_total=last.grad_total,
                saturation=heavy.saturation if heavy is not None else np.zeros(0),
                dead=heavy.dead if heavy is not None else np.zeros(0),
                weight_mean_abs=heavy.weight_mean_abs if heavy is not None else np.zeros(0),
                time_grad_norm=heavy.time_grad_norm if heavy is not None else None,
                diverged=diverged,
                gain_product=heavy.gain_product if heavy is not None else None,
            )
            self._verdicts = self._diagnoser.update(obs)
        if diverged and self._status in ("running", "paused", "done"):
            self._status = "diverged"
            self._steps_left = 0
            self._notify("error", f"diverged at step {last.step}: loss is NaN/Inf; paused. "
                                  "Turn gradient clipping on (c), then reset (r).")  # fmt: skip
        return tuple(v.code for v in self._verdicts) != before

    def _snapshot(self, step: int) -> Snapshot:
        t = self.trainer
        if self._events_tuple is None:
            self._events_tuple = tuple(self._events)
        return Snapshot(
            step=step,
            status=self._status,
            lr=t.state.lr,
            layer_names=t.names,
            **self._last.snapshot_fields(len(t.names)),
            hist_layer=t.hist_layer,
            hist_edges=HIST_EDGES,
            model=t.state,
            verdicts=self._verdicts,
            events=self._events_tuple,
            notices=tuple(self._notices),
            steps_per_sec=self._last.rate if self._status == "running" else 0.0,
            device=str(self.device),
            preset=self.config.name,
            title=self.config.title,
            error=self._error,
            extra={"baseline_loss": t.data.baseline_loss},
        )
