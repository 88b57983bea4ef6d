"""The part of the Session face that every thread-driven session shares (live training and replay). No torch."""

from __future__ import annotations

import queue
import threading

from vgtui.contract import Command, Snapshot


class ThreadedSession:
    """start / send / latest / stop / alive around a `_run` loop in a daemon thread.

    The loop drains `self._commands`, watches `self._stop`, and publishes by assigning `self._latest`
    (one reference assignment: the UI thread reads it without a lock and never waits).
    """

    thread_name = "vgtui-worker"

    def __init__(self) -> None:
        self._commands: queue.Queue[Command] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._latest: Snapshot | None = None

    def start(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            self._thread.start()
        return self

    def send(self, command: Command) -> None:
        """Queue a command; the worker applies it before its next step. Never blocks."""
        self._commands.put(command)

    def latest(self) -> Snapshot | None:
        return self._latest

    def stop(self, timeout: float = 1.0) -> None:
        """Ask the worker to finish what it is doing and join it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError
