"""The trainer's side of the hub process (vgtui.watch.hubproc): the Hub's interface, with the work elsewhere.

Why a process: the hub's bookkeeping (unpack, history, diagnosis, encode: 1-2 ms a publish on the 2-core box, more
for a wide model or many viewers) then never holds the training process's GIL, its history and sockets take no
memory there, and a killed trainer still has its viewers told. Speed, measured side by side (hub="process" against
hub="thread", one viewer, 2-core Intel box): the 20x64 loop 0.99-1.01x (noise), the 8x512 one 1.006-1.010x.
Here stay one "vgtui-hub" thread that packs a publish (CPU: one cat) and writes it to the child's stdin, and one
"vgtui-hub-in" thread that reads the child's messages (commands for the training thread, the viewers' figures).
The training thread only puts a publish on a bounded queue (never waits); a child that falls that far behind
loses publishes, counted, and its viewers are told. The child is started with subprocess, not multiprocessing: a
script without a __main__ guard is never re-run.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vgtui.contract import Command
from vgtui.watch.hub import HEARTBEAT_S
from vgtui.watch.hubproc import TO_TRAINER_MAX, HubSpec, receive, send

QUEUE_MAX = 240  # publishes waiting for the child (a minute at the default 4 a second)
START_TIMEOUT_S = 20.0
_CLOSE = object()


class HubStartError(RuntimeError):
    """The hub process could not start (not the hub's own refusal, which is a RuntimeError with its reason)."""


class HubProcess:
    """publish(), commands, wake, alive, step, viewer_stats(), tcp_port, allow_swap, on_idle and close(), as Hub."""

    def __init__(self, spec: HubSpec) -> None:
        self.spec = spec
        self.unix_path = spec.unix_path
        self.commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self.wake = threading.Event()
        self.on_idle: Callable[[], None] | None = None
        self.error: str | None = None
        self.tcp_port = 0
        self.step = 0  # the newest step the child published
        self.pack_errors = 0  # publishes this process could not pack or send
        self.hub_errors = 0  # publishes the hub process could not absorb (its own count)
        self.publish_seconds: deque[float] = deque(maxlen=4096)  # the child's time per publish
        self.dropped = 0
        self._allow_swap: Any = spec.allow_swap
        self._viewers: list[dict[str, Any]] = []
        self._queue: queue.Queue[Any] = queue.Queue(QUEUE_MAX)
        self._ready = threading.Event()
        self._said = False  # the child reported its own error (as opposed to dying)
        self._closed = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self._lock = threading.Lock()
        self._writer = threading.Thread(target=self._write_loop, name="vgtui-hub", daemon=True)
        self._reader = threading.Thread(target=self._read_loop, name="vgtui-hub-in", daemon=True)

    # ------------------------------------------------------------------ training thread

    def start(self, timeout: float = START_TIMEOUT_S) -> HubProcess:
        package_root = str(Path(__file__).resolve().parents[2])
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": package_root + (os.pathsep + path if path else "")}
        env |= dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), "1")  # tiny arrays
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "vgtui.watch.hubproc"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env=env,
                start_new_session=True,
            )
            self._reader.start()
            send(self._proc.stdin, self.spec, self._lock)  # type: ignore[arg-type]
        except OSError as exc:
            self._abandon()
            raise HubStartError(f"could not start the hub process: {exc}") from exc
        if not self._ready.wait(timeout):
            self._abandon()
            raise HubStartError(f"the hub process did not start in {timeout:.0f} s")
        if self.error is not None:
            self._abandon()
            raise RuntimeError(self.error) if self._said else HubStartError(self.error)
        self._writer.start()
        return self

    @property
    def publish_errors(self) -> int:
        """Publishes lost to an error, here or in the hub process (as Hub.publish_errors)."""
        return self.pack_errors + self.hub_errors

    @property
    def pid(self) -> int | None:
        """The hub process's pid (None before start)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and self.error is None and not self._closed

    @property
    def allow_swap(self) -> Any:
        return self._allow_swap

    @allow_swap.setter
    def allow_swap(self, value: Any) -> None:
        self._allow_swap = value
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(("swap", value))

    def publish(self, item: Any) -> None:
        """Hand a publish (a Batch, or a pack/transfer whose result() is one) to the hub process; never waits."""
        if not self.alive:
            raise RuntimeError(self.error or "the vgtui hub process is not running")
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def viewer_stats(self) -> list[dict[str, Any]]:
        """As Hub.viewer_stats, as the hub process last told it (on a join or a leave, and twice a second)."""
        return [dict(s) for s in self._viewers]

    def close(self, timeout: float = 2.0) -> None:
        """The pending publishes go out, the viewers are told the run ended, the process exits (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._writer.is_alive():
            with contextlib.suppress(queue.Full):
                self._queue.put(_CLOSE, timeout=timeout)
            self._writer.join(timeout + 1.0)
        proc = self._proc
        if proc is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # type: ignore[union-attr]
            try:
                proc.wait(timeout + 2.0)
            except subprocess.TimeoutExpired:
                self._kill()
        self._reader.join(1.0)
        self._stderr.close()
        if self.unix_path is not None:
            with contextlib.suppress(OSError):
                self.unix_path.unlink()

    # ------------------------------------------------------------------ the two threads

    def _write_loop(self) -> None:
        idle_at = time.monotonic() + HEARTBEAT_S / 2
        dropped = 0
        while True:
            try:
                item = self._queue.get(timeout=HEARTBEAT_S / 2)
            except queue.Empty:
                item = None
            if time.monotonic() >= idle_at:
                idle_at = time.monotonic() + HEARTBEAT_S / 2
                self._idle()
            if item is None:
                continue
            try:
                if item is _CLOSE:
                    self._send(("close", None))
                    return
                if isinstance(item, tuple):
                    self._send(item)
                    continue
                batch = item.result() if hasattr(item, "result") else item
                if self.dropped > dropped:
                    batch.notices.append(("warn", f"the vgtui hub process fell behind: {self.dropped - dropped} "
                                                  "publishes were dropped (their steps are missing)"))  # fmt: skip
                    dropped = self.dropped
                self._send(("pub", batch))
            except (OSError, ValueError) as exc:  # the child is gone: publish() now raises, the watch goes quiet
                self.error = self.error or f"the vgtui hub process stopped taking publishes ({exc})"
                return
            except Exception as exc:  # noqa: BLE001 - a publish that cannot be packed is lost, the next may be fine
                self.pack_errors += 1
                if self.pack_errors == 1:
                    print(f"vgtui.watch: a publish was lost: {type(exc).__name__}: {exc}", file=sys.stderr)

    def _send(self, message: Any) -> None:
        send(self._proc.stdin, message, self._lock)  # type: ignore[union-attr, arg-type]

    def _idle(self) -> None:
        if self.on_idle is not None:
            try:
                self.on_idle()
            except Exception:  # noqa: BLE001 - the trainer's own path goes on
                self.on_idle = None

    def _read_loop(self) -> None:
        source = self._proc.stdout  # type: ignore[union-attr]
        try:
            while (message := receive(source, TO_TRAINER_MAX)) is not None:  # type: ignore[arg-type]
                kind, value = message
                if kind == "cmd":
                    self.commands.put(value)
                    self.wake.set()
                elif kind == "viewers":
                    self._viewers = value
                elif kind == "pub":
                    self.step, self.hub_errors, seconds = value
                    self.publish_seconds.append(seconds)
                elif kind == "ready":
                    self.tcp_port = value
                    self._ready.set()
                elif kind == "error":
                    self.error, self._said = value, True
                    self._ready.set()
        except Exception as exc:  # noqa: BLE001 - a broken stream ends the hub like its end does
            self.error = self.error or f"the vgtui hub process sent a bad frame ({type(exc).__name__})"
        if not self._closed and self.error is None:
            self.error = "the vgtui hub process ended" + self._last_words()
        self._ready.set()
        self.wake.set()

    def _last_words(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            self._stderr.seek(0)
            lines = self._stderr.read().decode(errors="replace").strip().splitlines()
            if lines:
                return f": {lines[-1][:300]}"
        return ""

    def _abandon(self) -> None:
        """A start that failed: nothing of it stays (the process, the reader, the stderr file)."""
        self._closed = True
        self._kill()
        if self._reader.is_alive():
            self._reader.join(2.0)
        self._stderr.close()

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(2.0)
