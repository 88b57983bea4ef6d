"""What `vgtui serve` runs for each tab: `vgtui launch ARGS...` (or `vgtui attach ARGS...`), tied to the server's life.

A server killed with SIGKILL cannot stop its sessions, so each session watches its parent:
- Linux: prctl(PR_SET_PDEATHSIG, SIGKILL), so the kernel kills this process the moment the server dies;
- everywhere: a thread polls os.getppid() every POLL_S and, once the server is gone, kills this process
  group (the server starts this process as a group leader; its trainer child is in the group).
The trainer child watches its own parent too (vgtui/engine/process.py), so it follows within a poll.

Usage (by the server): python -m vgtui.serve.tether launch [PRESET] [launch options]
                       python -m vgtui.serve.tether attach TARGET [attach options]
                       python -m vgtui.serve.tether present LESSON [present options]  (vgtui present --serve)
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence

POLL_S = 0.2
SERVER_PID_ENV = "VGTUI_SERVER_PID"
_PR_SET_PDEATHSIG = 1
COMMANDS = ("launch", "attach", "present")  # what a tab may run: a dashboard, never anything else of the command line


def server_pid() -> int:
    """The server's pid as it told us (so a server that died before we looked is still noticed)."""
    try:
        return int(os.environ[SERVER_PID_ENV])
    except (KeyError, ValueError):
        return os.getppid()


def _set_parent_death_signal(sig: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _end_group() -> None:
    with contextlib.suppress(OSError):
        if os.getpgid(0) == os.getpid():  # we lead our group: take the trainer with us
            os.killpg(os.getpid(), signal.SIGKILL)
    os._exit(1)


def die_with_parent(parent: int | None = None, poll_s: float = POLL_S) -> threading.Thread:
    """Arm both watches; returns the polling thread (a daemon)."""
    parent = server_pid() if parent is None else parent
    _set_parent_death_signal(signal.SIGKILL)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        _end_group()

    thread = threading.Thread(target=watch, name="vgtui-tether", daemon=True)
    thread.start()
    return thread


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        print(f"vgtui.serve.tether: the first argument must be one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    die_with_parent()
    from vgtui.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
