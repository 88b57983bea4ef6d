"""AttachSession: a watched run (vgtui.watch in another process) behind the SessionLike face. No torch.

The dashboard, `vgtui attach --out` and notebooks read it like any session: `latest()` and `history`. A reader
thread takes frames from the socket (vgtui.wire: no pickle, frames over 8 MiB refused), fills a local History from
the backfill and each publish's rows, and keeps the newest Snapshot. `send()` writes a command frame; a read-only
session sends nothing and says so. When the run closes (a 'bye' frame) or the connection drops, the snapshot says
"done" (or "error") and `ended` is set.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from vgtui.contract import Command, Event, Notice, Snapshot
from vgtui.history import History
from vgtui.watchdir import Target, listed_sockets, parse_target
from vgtui.wire import OUTBOUND_MAX, FrameReader, WireError, command_header, decode, encode
from vgtui.wire_messages import add_rows, backfill_rows, merge_events, rows_from, snapshot_from

STALL_S = 3.0  # no frame for this long from a live run (it sends a heartbeat every second): "stalled"
MAX_NOTICES = 20
MAX_EVENTS = 2000
READ_ONLY_TEXT = "read-only viewer (vgtui attach --read-only): commands are not sent"


class AttachError(ConnectionError):
    """Could not attach (no such run, refused, not authenticated); str() is one line for the user."""


class AttachSession:
    """A live view of a watched run: start(), send(), latest(), history, stop()."""

    def __init__(
        self,
        target: str | Target,
        *,
        token: str | None = None,
        read_only: bool = False,
        timeout: float = 5.0,
        history_capacity: int = 4096,
    ) -> None:
        self.target = parse_target(target) if isinstance(target, str) else target
        self.token, self.read_only, self.timeout = token, read_only, timeout
        self.read_only_text = READ_ONLY_TEXT  # the notice a command gets on a read-only viewer
        self.history = History(history_capacity)
        self.hello: dict[str, Any] = {}
        self.ended = threading.Event()
        self.frames = 0
        self.on_snapshot: Callable[[Snapshot, int], None] | None = None
        self.error: str | None = None
        self._sock: socket.socket | None = None
        self._reader = FrameReader(OUTBOUND_MAX)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._send_lock = threading.Lock()
        self._latest: Snapshot | None = None
        self._events: list[Event] = []
        self._event_base = 0  # the run's index of self._events[0]
        self._notices: list[Notice] = []
        self._seq = 0
        self._hub_seq = 0
        self._heard = time.monotonic()

    # ------------------------------------------------------------------ SessionLike

    def open(self) -> AttachSession:
        """Connect, join, and wait for the hello (AttachError if that fails)."""
        if self._sock is not None:
            return self
        t = self.target
        if t.kind == "unix" and not Path(t.path).exists():
            raise AttachError(f"no watched run at {t.path} (vgtui attach --list shows the running ones)")
        try:
            if t.kind == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                sock.connect(t.path)
            else:
                sock = socket.create_connection((t.host, t.port), timeout=self.timeout)
        except OSError as exc:
            raise AttachError(f"cannot reach {t}: {exc.strerror or exc}") from None
        self._sock = sock
        join = {"t": "join", "read_only": self.read_only, "client": "vgtui attach"}
        if self.token:
            join["token"] = self.token
        sock.sendall(encode(join))
        end = time.monotonic() + self.timeout
        while not self.hello:
            if self.error:
                self._close_socket()
                raise AttachError(f"{t}: {self.error}")
            if time.monotonic() > end or not self._pump():
                self._close_socket()
                raise AttachError(self.error or f"{t}: no answer from the watched run")
        sock.settimeout(0.2)
        return self

    def start(self) -> AttachSession:
        self.open()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="vgtui-attach", daemon=True)
            self._thread.start()
        return self

    def send(self, command: Command) -> None:
        """Send a command to the watched run (applied between its optimizer steps); never blocks for long."""
        if self.read_only:
            self._local_notice("warn", self.read_only_text)
            return
        sock = self._sock
        if sock is None or self.ended.is_set():
            self._local_notice("warn", "the watched run has ended: nothing to send to")
            return
        try:
            frame = encode(command_header(command))
            with self._send_lock:
                sock.sendall(frame)
        except (OSError, WireError) as exc:
            self._local_notice("warn", f"could not send {type(command).__name__}: {exc}")

    def latest(self) -> Snapshot | None:
        snap = self._latest
        quiet = time.monotonic() - self._heard
        if snap is not None and snap.status in ("running", "paused") and quiet > STALL_S and not self.ended.is_set():
            return replace(
                snap, status="stalled", steps_per_sec=0.0, error=f"no word from the watched run for {quiet:.0f} s"
            )
        return snap

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError), self._send_lock:
                sock.sendall(encode({"t": "bye"}))
        if self._thread is not None:
            self._thread.join(timeout)
        self._close_socket()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def events(self) -> tuple[Event, ...]:
        return tuple(self._events)

    # ------------------------------------------------------------------ reading

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._pump():
                    break
            except WireError as exc:
                self.error = f"bad frame from the watched run: {exc}"
                break
        if not self.ended.is_set() and not self._stop.is_set():
            self._finish("error", self.error or "the connection to the watched run closed")
        self.ended.set()

    def _pump(self) -> bool:
        """Read what the socket has and handle every whole frame; False at the end of the stream."""
        sock = self._sock
        if sock is None:
            return False
        try:
            data = sock.recv(1 << 16)
        except TimeoutError:
            return True
        except OSError:
            return False
        if not data:
            return False
        for body in self._reader.feed(data):
            self._handle(*decode(body, OUTBOUND_MAX))
        return True

    def _handle(self, header: dict[str, Any], arrays: dict[str, Any]) -> None:
        self.frames += 1
        self._heard = time.monotonic()
        kind = header["t"]
        if kind == "pub":
            merge_events(self._events, header, self._event_base)
            if len(self._events) > MAX_EVENTS:
                self._event_base += len(self._events) - MAX_EVENTS
                del self._events[:-MAX_EVENTS]
            rows = rows_from(header, arrays)
            if rows is not None:
                add_rows(self.history, rows)
            snap = snapshot_from(header, arrays, tuple(self._events))
            self._latest = replace(snap, notices=self._merge_notices(snap.notices))
            if self.on_snapshot is not None:
                self.on_snapshot(self._latest, len(self._events))
        elif kind == "backfill":
            for step, scalars, layers in backfill_rows(header, arrays):
                self.history.append(step, scalars, layers)
        elif kind == "resync":
            self.history.clear()
            self._events.clear()
            listed = header.get("events", ())
            self._event_base = int(listed[0][0]) if listed else int(header.get("n_events", 0))
            merge_events(self._events, header, self._event_base)
        elif kind == "hello":
            self.hello = header
        elif kind == "notice":
            self._local_notice(str(header.get("level", "info")), str(header.get("text", ""))[:500])
        elif kind == "bye":  # a run that ended in an error stays so
            self._finish("error" if self._latest is not None and self._latest.status == "error" else "done", None)
            self.ended.set()
        elif kind == "refused":
            self.error = str(header.get("reason", "refused"))[:300]

    def _merge_notices(self, hub: tuple[Notice, ...]) -> tuple[Notice, ...]:
        """The run's notices and this viewer's own, numbered here so that each is shown once."""
        for n in hub:
            if n.seq > self._hub_seq:
                self._hub_seq = n.seq
                self._seq += 1
                self._notices.append(Notice(self._seq, n.level, n.text))
        del self._notices[:-MAX_NOTICES]
        return tuple(self._notices)

    def _local_notice(self, level: str, text: str) -> None:
        self._seq += 1
        self._notices.append(Notice(self._seq, level, text))
        del self._notices[:-MAX_NOTICES]
        if self._latest is not None:
            self._latest = replace(self._latest, notices=tuple(self._notices))

    def _finish(self, status: str, error: str | None) -> None:
        snap = self._latest
        if snap is not None:
            self._latest = replace(snap, status=status, error=error, steps_per_sec=0.0)
            if self.on_snapshot is not None and status == "done":
                self.on_snapshot(self._latest, len(self._events))

    def _close_socket(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


def connect(
    target: str,
    *,
    token: str | None = None,
    token_file: str | None = None,
    read_only: bool = False,
    timeout: float = 5.0,
) -> AttachSession:
    """The SessionLike of a watched run (NAME, unix:PATH or tcp://HOST:PORT), connected and reading."""
    if token is None and token_file is not None:
        token = Path(token_file).read_text(encoding="utf-8").strip()
    return AttachSession(target, token=token, read_only=read_only, timeout=timeout).start()


def list_watches(timeout: float = 1.0) -> list[dict[str, Any]]:
    """This user's watched runs: each live one's hello (name, pid, script, step, status, layers); a socket left by
    a run that died reads {'name': ..., 'stale': True}."""
    out = []
    for path in listed_sockets():
        session = AttachSession(Target("unix", path=str(path)), timeout=timeout)
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(str(path))
        except OSError:
            out.append({"name": path.stem, "path": str(path), "stale": True})
            continue
        session._sock = sock
        try:
            sock.sendall(encode({"t": "join", "list": True, "client": "vgtui attach --list"}))
            end = time.monotonic() + timeout
            while not session.hello and time.monotonic() < end and session._pump():
                pass
        except (OSError, WireError):
            pass
        session._close_socket()
        out.append(
            {**session.hello, "path": str(path)}
            if session.hello
            else {"name": path.stem, "path": str(path), "stale": True}
        )
    return out
