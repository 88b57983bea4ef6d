"""Rank 0's SIGTERM notice for vgtui.watch under torchrun (see TermNotice)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from typing import Any


class TermNotice:
    """Rank 0's SIGTERM handler: torchrun sends SIGTERM to every rank when one fails, and Python's default is to die
    at once, so the viewers would only see the connection close. This tells them first, then does what was there
    before (the default: die by SIGTERM; a user's handler: call it). Installed only from the main thread and only
    over the default or a callable handler. While `holding` (the watch is closing anyway), a SIGTERM waits for
    restore()."""

    def __init__(self, on_term: Callable[[], None]) -> None:
        self.on_term = on_term
        self.previous: Any = None
        self.installed = False
        self.holding = False
        self.pending: tuple[int, Any] | None = None
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)
        if previous is signal.SIG_DFL or callable(previous):
            self.previous = previous
            signal.signal(signal.SIGTERM, self._handle)
            self.installed = True

    def _handle(self, signum: int, frame: Any) -> None:
        if self.holding:
            self.pending = (signum, frame)
            return
        self.restore()
        with contextlib.suppress(Exception):  # the signal's own effect comes next regardless
            self.on_term()
        self._chain(signum, frame)

    def _chain(self, signum: int, frame: Any) -> None:
        if callable(self.previous):
            self.previous(signum, frame)
        else:
            signal.raise_signal(signum)

    def restore(self) -> None:
        """Put the previous handler back (main thread only); a SIGTERM that came while holding takes effect now."""
        self.holding = False
        if not self.installed:
            return
        if threading.current_thread() is not threading.main_thread():  # the handler stays; it runs on the main one
            pending, self.pending = self.pending, None
            if pending is not None:
                os.kill(os.getpid(), pending[0])
            return
        self.installed = False
        if signal.getsignal(signal.SIGTERM) == self._handle:
            signal.signal(signal.SIGTERM, self.previous if self.previous is not None else signal.SIG_DFL)
        pending, self.pending = self.pending, None
        if pending is not None:
            self._chain(*pending)
