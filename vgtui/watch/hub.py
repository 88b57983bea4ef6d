"""The hub: a daemon "vgtui-hub" thread that serves any number of viewers: in the hub process
(vgtui.watch.hubproc, the default), or in the training process itself (`vgtui.watch(..., hub="thread")`).

It runs a stdlib asyncio loop: a Unix socket in the per-user 0700 directory (socket 0600), and TCP only when asked
(always with a token, compared with hmac.compare_digest). The training thread hands it a publish with
`loop.call_soon_threadsafe` and never waits; here the publish becomes history rows, a diagnosis and a Snapshot
(vgtui.watch.report), then one frame written to every viewer. A viewer's write buffer is capped (1 MiB): past it,
frames for that viewer are dropped and, once it has read what it had, it gets a fresh backfill (a resync); a stalled
viewer never slows the trainer, a disconnect just removes it. Viewers must first send a 'join' frame (with the
token over TCP) within 5 s; commands from them are validated here (closed whitelist) and queued for the training
thread, which applies them between optimizer steps. In the hub process, `tell` carries the commands, the viewers'
figures and each publish's step to the trainer instead (vgtui.watch.hubproxy).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vgtui.contract import Command
from vgtui.watch import remedies
from vgtui.watch.report import Batch, Reporter
from vgtui.wire import INBOUND_MAX, PROTOCOL, WireError, decode, encode, parse_command, read_frame
from vgtui.wire_messages import backfill_messages, pub_message

WRITE_CAP = 1 << 20  # bytes queued for one viewer before its frames are dropped
RESYNC_BELOW = WRITE_CAP // 4  # a viewer that lost frames is resynced once its queue is this short
JOIN_TIMEOUT_S = 5.0
HEARTBEAT_S = 1.0
RESYNC_ROWS = 2048  # history rows in a (re)sync backfill


@dataclass
class Viewer:
    id: int
    writer: asyncio.StreamWriter
    read_only: bool = False
    tcp: bool = False
    sent: int = 0
    dropped: int = 0
    resyncs: int = 0
    behind: bool = False
    peak_buffer: int = 0
    client: str = ""

    def buffered(self) -> int:
        transport = self.writer.transport
        return transport.get_write_buffer_size() if transport is not None and not transport.is_closing() else 0


@dataclass
class HubInfo:
    """What the hello frame says about the watched run."""

    name: str
    pid: int = field(default_factory=os.getpid)
    script: str = ""
    device: str = "cpu"
    heavy_every: int = 50
    started: float = field(default_factory=time.time)


class Hub:
    """Serves viewers from a daemon thread; the training thread calls publish(), close() and drains `commands`."""

    def __init__(
        self,
        info: HubInfo,
        reporter: Reporter,
        unix_path: Path | None,
        tcp: tuple[str, int] | None = None,
        token: str | None = None,
        on_snapshot: Callable[[Any], None] | None = None,
    ) -> None:
        if tcp is not None and not token:
            raise ValueError("TCP needs a token")
        self.info, self.reporter = info, reporter
        self.unix_path, self.tcp, self.token = unix_path, tcp, token
        self.on_snapshot = on_snapshot
        self.on_idle: Callable[[], None] | None = None  # called every half heartbeat: flush an idle trainer
        self.allow_swap = False  # vgtui.watch(..., allow_swap=...): activation toggles go on to the trainer
        self.commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self.wake = threading.Event()  # set when a command arrives (a paused trainer waits on it)
        self.viewers: dict[int, Viewer] = {}
        self.error: str | None = None  # why the hub stopped, if it failed
        self.tcp_port = 0
        self._ids = itertools.count(1)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._thread = threading.Thread(target=self._run, name="vgtui-hub", daemon=True)
        self._stop: asyncio.Event | None = None
        self._last_sent = time.monotonic()
        self.publish_errors = 0
        self.log: Any = None  # the record= run log (vgtui.watchlog.SnapshotLog), closed with the hub
        self.tell: Callable[[str, Any], None] | None = None  # the hub process's line to the trainer

    # ------------------------------------------------------------------ training thread

    def start(self, timeout: float = 5.0) -> Hub:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the vgtui hub did not start in time")
        if self.error:
            raise RuntimeError(self.error)
        return self

    @property
    def step(self) -> int:
        """The newest step published to the viewers."""
        return self.reporter.step

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self.error is None

    def publish(self, item: Any) -> None:
        """Hand a publish (a Batch, or a transfer whose result() is one) to the hub; never waits."""
        if self._loop is None or not self.alive:
            raise RuntimeError(self.error or "the vgtui hub is not running")
        self._loop.call_soon_threadsafe(self._publish, item)

    def close(self, timeout: float = 2.0) -> None:
        """Tell the viewers the run ended, close the sockets and join the thread (idempotent)."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
            self._thread.join(timeout)
        if self.unix_path is not None:
            with contextlib.suppress(OSError):
                self.unix_path.unlink()
        if self.log is not None:
            self.log.close()

    def end(self, text: str) -> None:
        """The trainer went away without close(): the viewers (and the log) get a last snapshot saying so."""
        if self._loop is not None and self.alive:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._end, text)

    def viewer_stats(self) -> list[dict[str, Any]]:
        """Per viewer: id, read_only, sent, dropped, resyncs, buffered and peak buffered bytes."""
        return [
            {
                "id": v.id,
                "read_only": v.read_only,
                "sent": v.sent,
                "dropped": v.dropped,
                "resyncs": v.resyncs,
                "buffered": v.buffered(),
                "peak_buffer": v.peak_buffer,
            }
            for v in list(self.viewers.values())
        ]

    # ------------------------------------------------------------------ hub thread

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:  # noqa: BLE001 - reported to the training thread, which degrades to a no-op
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self.unix_path is not None:
            if self.unix_path.exists():
                self.unix_path.unlink()
            server = await asyncio.start_unix_server(lambda r, w: self._serve(r, w, False), path=str(self.unix_path))
            os.chmod(self.unix_path, 0o600)
            self._servers.append(server)
        if self.tcp is not None:
            server = await asyncio.start_server(
                lambda r, w: self._serve(r, w, True), host=self.tcp[0], port=self.tcp[1]
            )
            self.tcp_port = server.sockets[0].getsockname()[1]
            self._servers.append(server)
        self._ready.set()
        beat = asyncio.create_task(self._heartbeat())
        await self._stop.wait()
        beat.cancel()
        for v in list(self.viewers.values()):
            self._write(v, encode({"t": "bye", "step": self.reporter.step}), force=True)
        for v in list(self.viewers.values()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(v.writer.drain(), 1.0)
            v.writer.close()
        for server in self._servers:
            server.close()

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S / 2)
            if self.on_idle is not None:
                try:
                    self.on_idle()
                except Exception as exc:  # noqa: BLE001 - the trainer's own path goes on
                    self.on_idle = None
                    self.reporter.notify("error", f"vgtui could not flush an idle run: {type(exc).__name__}: {exc}")
            if self.tell is not None:
                self.tell("viewers", self.viewer_stats())
            if time.monotonic() - self._last_sent >= HEARTBEAT_S:
                latest = self.reporter.latest
                status = latest.status if latest else "starting"
                self._broadcast(encode({"t": "hb", "step": self.reporter.step, "status": status}))

    def _publish(self, item: Any) -> None:
        t0 = time.perf_counter()
        try:
            batch: Batch = item.result() if hasattr(item, "result") else item
            snap, rows = self.reporter.absorb(batch)
            if self.on_snapshot is not None:
                self.on_snapshot(snap)
            frame = encode(*pub_message(snap, rows, self.reporter.n_events))
        except Exception as exc:  # noqa: BLE001 - a bad publish is reported, the next one may be fine
            self.publish_errors += 1
            if self.publish_errors == 1:
                self.reporter.notify("error", f"vgtui could not publish a step: {type(exc).__name__}: {exc}")
        else:
            self._broadcast(frame)
        finally:
            if self.tell is not None:
                self.tell("pub", (self.reporter.step, self.publish_errors, time.perf_counter() - t0))

    def _end(self, text: str) -> None:
        self.reporter.notify("error", text)
        snap = self.reporter.latest = self.reporter.snapshot("error")
        if self.on_snapshot is not None:
            with contextlib.suppress(Exception):
                self.on_snapshot(snap)
        self._broadcast(encode(*pub_message(snap, None, self.reporter.n_events)))

    def _broadcast(self, frame: bytes) -> None:
        """A live frame to every viewer (the heartbeat waits a second after it)."""
        self._last_sent = time.monotonic()
        for v in list(self.viewers.values()):
            self._send(v, frame)

    def _send(self, v: Viewer, frame: bytes) -> None:
        """A live frame: dropped past the viewer's cap; a viewer that lost frames is resynced once it catches up."""
        size = v.buffered()
        if size + len(frame) > WRITE_CAP:
            v.dropped += 1
            v.behind = True
            return
        if v.behind and size <= RESYNC_BELOW:
            v.behind = False
            v.resyncs += 1
            self._sync(v)
        self._write(v, frame)

    def _write(self, v: Viewer, frame: bytes, force: bool = False) -> None:
        if v.writer.is_closing():
            return
        v.writer.write(frame)
        v.sent += 1
        v.peak_buffer = max(v.peak_buffer, v.buffered())

    def _sync(self, v: Viewer) -> None:
        """The run so far: the events, the history (decimated to RESYNC_ROWS rows) and the newest snapshot."""
        r = self.reporter
        events = list(r.events)
        first = r.n_events - len(events)
        listed = [[first + i, e.step, e.name, e.value] for i, e in enumerate(events)]
        self._write(v, encode({"t": "resync", "step": r.step, "n_events": r.n_events, "events": listed}))
        for header, arrays in backfill_messages(r.history.view(max_points=RESYNC_ROWS)):
            self._write(v, encode(header, arrays))
        if r.latest is not None:
            self._write(v, encode(*pub_message(r.latest, None, r.n_events)))

    def _hello(self, v: Viewer) -> bytes:
        i = self.info
        latest = self.reporter.latest
        return encode(
            {
                "t": "hello",
                "protocol": PROTOCOL,
                "name": i.name,
                "pid": i.pid,
                "script": i.script,
                "device": i.device,
                "heavy_every": i.heavy_every,
                "started": i.started,
                "capabilities": list(self.reporter.layers.capabilities),
                "layers": list(self.reporter.layers.names),
                "step": self.reporter.step,
                "status": latest.status if latest else "starting",
                "viewer": v.id,
                "read_only": v.read_only,
                "viewers": len(self.viewers),
            }
        )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tcp: bool) -> None:
        v = Viewer(next(self._ids), writer, tcp=tcp)
        try:
            header, _ = decode(await asyncio.wait_for(read_frame(reader, INBOUND_MAX), JOIN_TIMEOUT_S), INBOUND_MAX)
            if header.get("t") != "join":
                raise WireError("the first frame must be 'join'")
            if tcp and not _token_ok(header.get("token"), self.token or ""):
                raise WireError("not authenticated: a wrong or missing token")
            v.read_only = bool(header.get("read_only"))
            v.client = str(header.get("client", ""))[:64]
            self._write(v, self._hello(v))
            if header.get("list"):
                await writer.drain()
                return
            self._sync(v)
            self.viewers[v.id] = v
            self._viewers_changed()
            while True:
                header, _ = decode(await read_frame(reader, INBOUND_MAX), INBOUND_MAX)
                if header["t"] == "cmd":
                    self._command(v, header)
                elif header["t"] == "bye":
                    return
                else:
                    raise WireError(f"unexpected frame {header['t'][:32]!r}")
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        except (WireError, TimeoutError) as exc:
            reason = str(exc) or "no 'join' frame in time"
            with contextlib.suppress(Exception):
                writer.write(encode({"t": "refused", "reason": reason}))
                await asyncio.wait_for(writer.drain(), 1.0)
        finally:
            if self.viewers.pop(v.id, None) is not None:
                self._viewers_changed()
            writer.close()

    def _viewers_changed(self) -> None:
        if self.tell is not None:
            self.tell("viewers", self.viewer_stats())

    def _command(self, v: Viewer, header: dict[str, Any]) -> None:
        try:
            if v.read_only:
                raise remedies.Refused("this viewer is read-only (vgtui attach --read-only): it sends no commands")
            command = remedies.check(parse_command(header), len(self.reporter.layers.names), self.allow_swap)
        except (WireError, remedies.Refused) as exc:
            self._write(v, encode({"t": "notice", "level": "warn", "text": str(exc)}))
            return
        if self.tell is not None:
            self.tell("cmd", command)
            return
        self.commands.put(command)
        self.wake.set()


def _token_ok(given: object, token: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), token.encode())
