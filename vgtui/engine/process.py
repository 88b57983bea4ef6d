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

from vgtui.config import RunConfig
from vgtui.contract import Command, Notice, Snapshot
from vgtui.history import History

_STOP = "stop"


def _child_main(config: RunConfig, device: str, options: dict[str, Any], commands: Any, conn: Any) -> None:
    """Entry point of the child: run a Session and forward every publish to the parent."""
    from vgtui.engine.latest import heavy_dict
    from vgtui.engine.session import PublishRecord, Session

    def forward(record: PublishRecord) -> None:
        pub = record.published
        rows = None
        if pub is not None:
            rows = (pub.steps, pub.light, heavy_dict(pub), pub.heavy_step, record.snapshot.lr)
        try:
            conn.send((record.snapshot, rows))
        except (BrokenPipeError, OSError):  # the parent is gone
            session._stop.set()

    try:
        session = Session(config, device=device, on_publish=forward, **options)
    except Exception as exc:  # e.g. an unavailable device: report it, then exit
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    session.start()
    parent = mp.parent_process()
    while True:
        try:
            command = commands.get(timeout=0.05)
        except queue.Empty:
            # Stop with the session, or once the dashboard is gone however it died (kill -9 included).
            if not session.alive or (parent is not None and os.getppid() != parent.pid):
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
        self._latest: Snapshot | None = None
        self._error: str | None = None
        self._proc: Any = None
        self._reader: threading.Thread | None = None
        self._commands: Any = None
        self._conn: Any = None

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
            if message[0] == "error":
                self._error = message[1]
                self._latest = _error_snapshot(self.config, message[1], self._latest)
                continue
            snap, rows = message
            if rows is not None:
                self.history.add_rows(*rows)
            self._latest = snap
        if self._proc is not None and self._proc.exitcode not in (0, None) and self._error is None:
            self._latest = _error_snapshot(
                self.config, f"the training process stopped (exit code {self._proc.exitcode})", self._latest
            )

    def send(self, command: Command) -> None:
        if self._commands is not None:
            self._commands.put(command)

    def latest(self) -> Snapshot | None:
        return self._latest

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
