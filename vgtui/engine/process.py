"""ProcessSession: the same face as Session, with the trainer in a child process.

Why: a training thread only runs while the UI thread is not busy in Python (the GIL). In a child
process the trainer has its own interpreter, so drawing the dashboard no longer slows training.
Commands go to the child through a queue; each publish comes back through a pipe as plain data
(a Snapshot and the numpy rows of the steps since the last publish), and a reader thread here
keeps the latest Snapshot and fills a local History. This module does not import torch: only the
child does, so the parent (the dashboard) starts without it.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import sys
import threading
import time
from typing import Any

from vgtui.config import RunConfig, config_with_state
from vgtui.contract import Command, Notice, Reset, Snapshot
from vgtui.history import History

_STOP = "stop"
HEARTBEAT_S = 0.5  # the child says it is alive at least this often, even when paused
STALL_S = 1.5  # no word from a live child for this long: the snapshot says "stalled" (shown within 2 s)


def _child_main(config: RunConfig, device: str, options: dict[str, Any], commands: Any, conn: Any) -> None:
    """Entry point of the child: run a Session and forward every publish to the parent. It ends when the parent
    says stop, when the session ends, or when the parent is gone however it went (its parent pid changes)."""
    from vgtui.engine.compare import CompareSession
    from vgtui.engine.latest import heavy_dict
    from vgtui.engine.session import PublishRecord

    parent = os.getppid()
    lock = threading.Lock()  # the worker thread forwards publishes, this one sends heartbeats
    sent = [time.monotonic()]

    def send(message: Any) -> bool:
        try:
            with lock:
                conn.send(message)
                sent[0] = time.monotonic()
            return True
        except (BrokenPipeError, OSError):  # the parent is gone
            return False

    def rows_of(record: PublishRecord) -> tuple | None:
        pub = record.published
        return None if pub is None else (pub.steps, pub.light, heavy_dict(pub), pub.heavy_step, record.snapshot.lr)

    trainer: list[Any] = [None]

    def forward(record: PublishRecord) -> None:
        if trainer[0] is not None and session.trainer is not trainer[0] and not send(("swap",)):
            session._stop.set()  # (the comparison ended keeping B: B's history is A's now)
        trainer[0] = session.trainer
        if not send((record.snapshot, rows_of(record))):
            session._stop.set()

    def forward_b(record: PublishRecord) -> None:
        rows = rows_of(record)
        if rows is not None and not send(("B", id(session.b), rows)):
            session._stop.set()

    try:
        session = CompareSession(config, device=device, on_publish=forward, on_publish_b=forward_b, **options)
    except Exception as exc:  # e.g. an unavailable device: report it, then exit
        send(("error", f"{type(exc).__name__}: {exc}"))
        return
    session.start()
    while True:
        try:
            command = commands.get(timeout=0.05)
        except queue.Empty:
            if not session.alive or os.getppid() != parent:
                break
            if time.monotonic() - sent[0] >= HEARTBEAT_S and not send(("alive",)):
                break
            continue
        if command == _STOP:
            break
        session.send(command)
    session.stop(timeout=2.0)
    conn.close()
    os._exit(0)  # skip the interpreter's teardown of torch (~0.5 s): nothing is left to flush


class ProcessSession:
    """A Session whose worker is a child process. Start-up costs one extra interpreter (~1 s)."""

    def __init__(self, config: RunConfig, device: str = "auto", **options: Any) -> None:
        self.config = config
        self.device = device
        self.options = options
        self.history = History(options.pop("history_capacity", 4096))
        self._history_b: History | None = None  # run B's, while comparing
        self._b_id: int | None = None
        self._latest: Snapshot | None = None
        self._error: str | None = None
        self._proc: Any = None
        self._reader: threading.Thread | None = None
        self._commands: Any = None
        self._conn: Any = None
        self._heard = 0.0  # monotonic time of the child's last message

    def start(self) -> ProcessSession:
        # multiprocessing hands sys.stderr's file descriptor to its resource tracker; inside a Textual
        # app sys.stderr is a capture object whose fileno() is not a real descriptor.
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = sys.__stdout__ or saved[0], sys.__stderr__ or saved[1]
        try:
            return self._start()
        finally:
            sys.stdout, sys.stderr = saved

    def _start(self) -> ProcessSession:
        if self._proc is not None:
            return self
        ctx = mp.get_context("spawn")  # fork is unsafe once torch has started threads
        self._commands = ctx.Queue()
        self._conn, child_conn = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(
            target=_child_main,
            args=(self.config, self.device, self.options, self._commands, child_conn),
            name="vgtui-trainer",
            daemon=True,
        )
        self._proc.start()
        self._heard = time.monotonic()
        child_conn.close()
        self._reader = threading.Thread(target=self._read, name="vgtui-reader", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                break
            self._heard = time.monotonic()
            if message[0] == "alive":
                continue
            if message[0] == "error":
                self._error = message[1]
                self._latest = _error_snapshot(self.config, message[1], self._latest)
                continue
            if message[0] == "B":  # run B's rows; a new fork starts a new history
                if message[1] != self._b_id or self._history_b is None:
                    self._b_id, self._history_b = message[1], History(self.history.capacity)
                self._history_b.add_rows(*message[2])
                continue
            if message[0] == "swap":
                self.history = self._history_b or History(self.history.capacity)
                self._history_b, self._b_id = None, None
                continue
            snap, rows = message
            if rows is not None:
                self.history.add_rows(*rows)
            self._latest = snap
        if self._proc is not None:
            self._proc.join(1.0)  # the pipe closed: the child is ending; its exit code comes with the join
        if self._proc is not None and self._proc.exitcode not in (0, None) and self._error is None:
            self._latest = _error_snapshot(
                self.config, f"the training process stopped (exit code {self._proc.exitcode})", self._latest
            )

    def send(self, command: Command) -> None:
        if isinstance(command, Reset) and self._proc is not None and not self._proc.is_alive():
            self._restart()  # the child is gone (killed, crashed): a reset starts a new one
            return
        if self._commands is not None:
            self._commands.put(command)

    def _restart(self) -> None:
        """A new child with the settings the last one had (toggles kept, fresh weights, as a reset)."""
        last = self._latest
        self.stop(timeout=0.5)
        if last is not None:
            self.config = config_with_state(self.config, last.model)
        self.options.pop("record", None)  # a recording is never reopened: the new child trains without it
        self.history.clear()
        self._latest, self._error, self._proc = None, None, None
        self.start()

    @property
    def history_b(self) -> History | None:
        snap = self._latest
        return self._history_b if snap is not None and snap.compare is not None else None

    @property
    def error(self) -> str | None:
        """Why the child could not start or stopped (None while all is well)."""
        return self._error

    def latest(self) -> Snapshot | None:
        snap = self._latest
        quiet = time.monotonic() - self._heard
        if snap is not None and snap.status in ("running", "paused") and quiet > STALL_S and self.alive:
            from dataclasses import replace

            return replace(
                snap, status="stalled", steps_per_sec=0.0, error=f"no word from the trainer for {quiet:.0f} s"
            )
        return snap

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def stop(self, timeout: float = 1.0) -> None:
        """Ask the child to stop, join it within `timeout` (terminate it if it does not answer)."""
        if self._proc is None:
            return
        end = time.monotonic() + timeout
        with contextlib.suppress(OSError, ValueError):
            self._commands.put(_STOP)
        self._proc.join(max(0.0, end - time.monotonic() - 0.1))
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(0.1)
        if self._proc.is_alive():  # a stopped (SIGSTOP) or wedged child ignores SIGTERM until it runs again
            self._proc.kill()
            self._proc.join(0.5)
        if self._reader is not None:
            self._reader.join(max(0.0, end - time.monotonic()))
        self._commands.cancel_join_thread()
        self._commands.close()


def _error_snapshot(config: RunConfig, text: str, last: Snapshot | None) -> Snapshot | None:
    """The last snapshot marked as failed (or None before the first one: the UI shows `text` then)."""
    if last is None:
        return None
    from dataclasses import replace

    notice = Notice(last.notices[-1].seq + 1 if last.notices else 1, "error", text)
    return replace(last, status="error", error=text, notices=(*last.notices, notice))
