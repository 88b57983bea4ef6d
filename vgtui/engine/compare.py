"""CompareSession: a Session that can carry a second run, B, forked from its own run A and trained in lockstep.

Run A is this Session (its trainer, history, diagnosis, events); run B is an inner Session that is never started:
this worker steps A, then B, on the same batches, and publishes both. Every snapshot of A carries B's latest
snapshot in `Snapshot.compare`, so a dashboard that reads one snapshot sees both runs. Toggles (and reset) go to
the run `Target` names (B once forked); pause, resume, step and layer choice go to both.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import torch

from vgtui.config import RunConfig
from vgtui.contract import (
    Command,
    Comparison,
    EndCompare,
    Event,
    Fork,
    Pause,
    Reset,
    Resume,
    SelectLayer,
    Snapshot,
    Step,
    Target,
    Toggle,
    compare_legend,
)
from vgtui.engine.pair import fork_trainer
from vgtui.engine.session import MAX_PENDING_STEPS, PUBLISH_INTERVAL_S, PublishRecord, Session
from vgtui.engine.toggles import ToggleError, changes
from vgtui.history import History
from vgtui.runlog import Recorder

BOTH = (Pause, Resume, Step, SelectLayer)
# what a run is, beside its trainer: swapped into A when the comparison ends keeping B
RUN_STATE = ("trainer", "history", "_last", "_diagnoser", "_verdicts", "_events", "_events_tuple", "_status",
             "_steps_left", "_error")  # fmt: skip


class _AllDone(threading.Event):
    """`done` of a comparison: set only once no run can step any more (A diverged while B trains on: not done)."""

    def __init__(self, session: CompareSession) -> None:
        super().__init__()
        self.session = session

    def set(self) -> None:
        b = getattr(self.session, "b", None)
        if b is None or not Session._should_step(b) or self.session._stop.is_set():
            super().set()


class CompareSession(Session):
    """A Session (run A) with an optional run B. `compare`: B's toggles; forked at step `fork_at` (0: from the
    start, None: only when a Fork command comes). `on_publish_b` subscribes to B's publishes (its run log)."""

    def __init__(
        self,
        config: RunConfig,
        device: str = "auto",
        *,
        compare: Sequence[Toggle] | None = None,
        fork_at: int | None = 0,
        on_publish_b: Callable[[PublishRecord], None] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(config, device, **options)
        self.done = _AllDone(self)
        if self._writer is not None and on_publish_b is None:  # launch --record: B's lines too, tagged "B"
            on_publish_b = Recorder(self._writer, run="B")
        self.compare_toggles: tuple[Toggle, ...] = tuple(compare or ())
        self.b: Session | None = None
        self.fork_step = 0
        self.label = ""
        self.target = "A"
        self._on_publish_b = on_publish_b
        self._b_options = {k: options[k] for k in ("history_capacity",) if k in options}
        if compare is not None and fork_at is not None:
            if fork_at <= 0:
                self._fork(self.compare_toggles, strict=True)
            else:
                self._schedule = sorted([*self._schedule, (fork_at, Fork())], key=lambda item: item[0])

    @property
    def history_b(self) -> History | None:
        b = self.b
        return b.history if b is not None else None

    # ------------------------------------------------------------------ forking

    def _fork(self, toggles: Sequence[Toggle], strict: bool = False) -> None:
        """B := A now with `toggles`. A toggle that does not apply is a notice (raised if `strict`: the command
        line asked for it) and leaves the comparison as it was."""
        self._publish()  # A's telemetry up to now is A's alone
        try:
            trainer, events = fork_trainer(self.trainer, toggles)
        except ToggleError as exc:
            if strict:
                raise
            self._notify("warn", f"fork: {exc}")
            return
        rng = torch.get_rng_state()  # (a Session builds a trainer of its own, from the seed: B's replaces it)
        b = Session(self.config, str(self.device), max_steps=self.max_steps, on_publish=self._on_publish_b,
                    cpu_threads=None, **self._b_options)  # fmt: skip
        torch.set_rng_state(rng)
        b.trainer = trainer
        b._status = "paused" if self._status == "paused" else "running"
        b._diagnoser = copy.deepcopy(self._diagnoser)
        b._verdicts = self._verdicts
        step = self.trainer.step
        b._notify = self._notify_b  # B's notices (a refused toggle) reach the dashboard with A's, marked "B:"
        b._record(Event(step, "fork", "A"))
        for event in events:
            b._record(event)
        self.b, self.fork_step, self.target = b, step, "B"
        self.label = compare_legend(self.trainer.state, trainer.state, step)
        self._notify("info", f"comparing: {self.label}; toggle keys now go to B (w sends them to A)")
        if self._thread is not None:  # (before start: the worker's first publish publishes B too, after the meta)
            b._publish(force=True)

    def _notify_b(self, level: str, text: str) -> None:
        self._notify(level, f"B: {text}")

    def _end(self, keep: str) -> None:
        b = self.b
        if b is None:
            self._notify("warn", "not comparing: fork a run B first (f)")
            return
        self._publish()
        b._publish()
        if keep == "B":
            for name in RUN_STATE:
                setattr(self, name, getattr(b, name))
            self._events_tuple = None
            del b._notify
        self.b, self.target, self.label = None, "A", ""
        self._notify("info", f"comparison ended: kept run {keep}")

    # ------------------------------------------------------------------ commands

    def _apply_schedule(self) -> None:
        """Scheduled toggles and resets (`vgtui run --toggle`) apply to both runs: they are part of the scene."""
        self._scheduling = True
        try:
            super()._apply_schedule()
        finally:
            self._scheduling = False

    def _handle(self, command: Command) -> None:
        b = self.b
        if b is not None and getattr(self, "_scheduling", False) and isinstance(command, (Toggle, Reset)):
            b._handle(command)
            super()._handle(command)
            return
        if isinstance(command, Fork):
            toggles = self.compare_toggles if command.toggles is None else command.toggles
            with contextlib.suppress(ToggleError):  # (a toggle that does not apply: _fork says why)
                toggles = changes(toggles, self.trainer.state)  # one that changes nothing is left out
            self._fork(toggles)
        elif isinstance(command, EndCompare):
            if command.keep in ("A", "B"):
                self._end(command.keep)
            else:
                self._notify("warn", f"keep {command.keep!r}: allowed: A or B")
        elif isinstance(command, Target):
            if command.run not in ("A", "B"):
                self._notify("warn", f"run {command.run!r}: allowed: A or B")
            elif b is None and command.run == "B":
                self._notify("warn", "not comparing: fork a run B first (f)")
            else:
                self.target = command.run
        elif b is not None and isinstance(command, (Toggle, Reset)) and self.target == "B":
            b._handle(command)
        elif b is not None and isinstance(command, BOTH):
            b._handle(command)
            super()._handle(command)
            return
        else:
            super()._handle(command)
            return
        self._publish(force=True)

    # ------------------------------------------------------------------ worker

    def _runs(self) -> list[Session]:
        return [self] if self.b is None else [self, self.b]

    def _run(self) -> None:
        self._pin_threads()
        self._publish(force=True)
        while not self._stop.is_set():
            self._drain()
            self._apply_schedule()
            runs = [r for r in self._runs() if Session._should_step(r)]
            if not runs:
                if self.max_steps is not None and not self._schedule:
                    self.done.set()  # headless: every run finished, diverged or failed, and nothing can resume one
                self._wait_for_command()
                continue
            due = finished_any = False
            for r in runs:
                finished = r._train_one()  # a fault inside one run's step stops that run only
                if finished is None:
                    continue
                finished_any |= finished or (r._steps_left == 0 and r._status == "paused")
                due |= r.trainer.heavy_due(r.trainer.step)
            if finished_any:
                self._publish(force=True)
            elif due and (time.perf_counter() - self._published_at >= PUBLISH_INTERVAL_S
                          or self.trainer.pending >= MAX_PENDING_STEPS):  # fmt: skip
                self._publish()
        self._publish()
        if self._writer is not None:
            self._writer.close()

    def _should_step(self) -> bool:
        return any(Session._should_step(r) for r in self._runs())

    def _publish(self, force: bool = False) -> None:
        if self.b is not None:
            self.b._publish(force)  # first, so that A's snapshot carries B's newest
        super()._publish(force)

    def _snapshot(self, step: int) -> Snapshot:
        snap = super()._snapshot(step)
        b = self.b
        if b is None or b._latest is None:
            return snap
        label = compare_legend(snap.model, b._latest.model, self.fork_step)  # what B is now, beside A
        return replace(snap, compare=Comparison(label, self.fork_step, self.target, b._latest))
