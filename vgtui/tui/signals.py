"""How the dashboard ends on a signal: SIGHUP (an SSH disconnect), SIGTERM and SIGINT, like q, with 128 + N."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from typing import Any

FORCE_EXIT_S = 3.0  # a normal shutdown takes well under a second


def _force_exit(app: Any, code: int) -> None:
    time.sleep(FORCE_EXIT_S)
    with contextlib.suppress(Exception):
        app.stop_session()
    os._exit(code)


@contextlib.contextmanager
def exit_on_signals(app: Any):
    """SIGHUP (an SSH disconnect), SIGTERM and SIGINT end the app the way q does: Textual restores the terminal,
    the session and its trainer are stopped; the exit code is 128 + the signal's number. Where the terminal is
    already gone (a dropped SSH connection), Textual's shutdown can wait forever on its output thread (seen with
    Textual 8.2: the process stayed, asleep, after `tmux kill-server`): FORCE_EXIT_S after the signal the session
    is stopped and the process exits regardless."""
    forcing: list[threading.Thread] = []

    def on_signal(signum: int, _frame: object) -> None:
        app._quitting = True
        app.exit(return_code=128 + signum)
        if not forcing:
            forcing.append(threading.Thread(target=_force_exit, args=(app, 128 + signum), daemon=True))
            forcing[0].start()

    names = ("SIGHUP", "SIGTERM", "SIGINT")
    caught = [getattr(signal, n) for n in names if hasattr(signal, n)]
    saved = {sig: signal.signal(sig, on_signal) for sig in caught}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
