"""The hub process of vgtui.watch: `python -m vgtui.watch.hubproc`, started by the trainer (vgtui.watch.hubproxy).

It owns what serving viewers takes (vgtui.watch.hub.Hub: the sockets, the history, the diagnosis, the record= run
log), so none of that work holds the training process's GIL or lands between its steps. It imports no torch (the
`vgtui.watch` package loads torch only with a Watch) and no Textual.

Its stdin and stdout are pipes to the trainer that started it, carrying length-prefixed pickles: in, the HubSpec,
then ("pub", Batch), ("swap", allowed) and ("close", None); out, ("ready", tcp port) or ("error", why), then
("cmd", Command), ("viewers", stats), ("pub", (step, errors, seconds)) and ("closed", None). Pickle only because
both ends are this run's own processes on a pipe nobody else holds; never on a socket (vgtui.wire). Anything the
process prints goes to stderr. It runs in its own session (a Ctrl-C in the terminal reaches the trainer only) and
ends when the trainer closes it, when its stdin ends (the trainer was killed) or when the trainer's pid goes away
(a forked DataLoader worker may hold the pipe open); in the last two cases the viewers and the log are told first.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import struct
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from vgtui.watch.hub import Hub, HubInfo
from vgtui.watch.report import Reporter

TO_HUB_MAX = 1 << 30  # one publish's pickle (a wide model's heavy rows are a few MB)
TO_TRAINER_MAX = 1 << 22
_LEN = struct.Struct("<I")
GONE = "the watched process ended without close() (it was killed or crashed): the last steps it published are shown"


@dataclass
class HubSpec:
    """Everything that builds a Hub, in the training process (hub="thread") or here."""

    info: HubInfo
    unix_path: Path | None
    tcp: tuple[str, int] | None = None
    token: str | None = None
    record: str | None = None  # write the run log here (vgtui.watchlog)
    dist: dict | None = None  # {"world": N, "wrapper": "DDP"} under torchrun
    allow_swap: bool = False  # viewers may swap activation modules (vgtui.watch(..., allow_swap=...))


def build_hub(spec: HubSpec) -> Hub:
    """The Hub of `spec`, with its Reporter and record log (opened here: a bad path raises RunLogError)."""
    from vgtui.watchlog import SnapshotLog

    i = spec.info
    reporter = Reporter(i.name, i.device, i.heavy_every)
    reporter.dist = spec.dist
    log = SnapshotLog(spec.record, i.name, i.heavy_every) if spec.record is not None else None
    on_snapshot = (lambda snap: log.write(snap, reporter.n_events)) if log is not None else None
    hub = Hub(i, reporter, spec.unix_path, spec.tcp, spec.token, on_snapshot=on_snapshot)
    hub.log, hub.allow_swap = log, spec.allow_swap
    return hub


def send(out: IO[bytes], message: Any, lock: threading.Lock) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    with lock:
        out.write(_LEN.pack(len(data)))
        out.write(data)
        out.flush()


def receive(source: IO[bytes], limit: int) -> Any:
    """The next message, or None at the end of the stream; ValueError for a frame over `limit` bytes."""
    head = source.read(_LEN.size)
    if len(head) < _LEN.size:
        return None
    (size,) = _LEN.unpack(head)
    if size > limit:
        raise ValueError(f"a frame of {size} bytes (at most {limit})")
    data = source.read(size)
    return pickle.loads(data) if len(data) == size else None


class _Child:
    def __init__(self, out: IO[bytes]) -> None:
        self.out, self.lock = out, threading.Lock()
        self.hub: Hub | None = None
        self._ended = threading.Lock()

    def tell(self, kind: str, value: Any) -> None:
        with contextlib.suppress(OSError, ValueError):  # the trainer is gone: the end of stdin (or its pid) ends this
            send(self.out, (kind, value), self.lock)

    def finish(self, text: str | None) -> None:
        """Once: a last word to the viewers where the trainer went away (`text`), then close everything."""
        if not self._ended.acquire(blocking=False) or self.hub is None:
            return
        if text is not None:
            self.hub.end(text)
        self.hub.close()
        self.tell("closed", None)

    def orphan_watch(self, parent: int) -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        self.finish(GONE)
        os._exit(0)


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the frames
    source = sys.stdin.buffer
    child = _Child(out)
    spec = receive(source, TO_HUB_MAX)
    if spec is None:
        return 0
    try:
        child.hub = hub = build_hub(spec)
        hub.tell = child.tell
        hub.start()
    except Exception as exc:  # noqa: BLE001 - the trainer prints it in one line and goes on without watching
        child.tell("error", str(exc) if type(exc).__name__ == "RunLogError" else f"{type(exc).__name__}: {exc}")
        return 1
    child.tell("ready", hub.tcp_port)
    threading.Thread(target=child.orphan_watch, args=(os.getppid(),), daemon=True).start()
    text: str | None = GONE
    while True:
        try:
            message = receive(source, TO_HUB_MAX)
        except (OSError, ValueError, pickle.UnpicklingError, EOFError):
            break
        if message is None:
            break
        kind, value = message
        if kind == "pub":
            hub.publish(value)
        elif kind == "swap":
            hub.allow_swap = value
        elif kind == "close":
            text = None
            break
    child.finish(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
