"""One browser tab's session: a `vgtui launch` (or `vgtui attach`) process group that ends whole when the tab leaves.

textual-serve's AppService runs the command through a shell and, once the WebSocket closes, stops reading
the app's output: the app then blocks writing to its pipe and never reads the "quit" it was sent, and its
trainer trains on. Here the app runs without a shell as the leader of its own process group (its trainer
joins that group); after the tab leaves its output is still drained, it gets a few seconds to quit, and then
the whole group is killed. If the app never starts, its error is written into the page.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Mapping, Sequence
from typing import Any

from textual_serve.app_service import AppService

from vgtui.serve.tether import SERVER_PID_ENV

log = logging.getLogger("vgtui.serve")

QUIT_GRACE_S = 3.0  # time for the dashboard to quit and join its trainer before the group is killed
TERM_GRACE_S = 1.0
STDERR_KEEP = 16 * 1024


class TabSession(AppService):
    """AppService for one tab: no shell, own process group, output drained to the end, errors shown."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(" ".join(argv), **kwargs)
        self.argv = list(argv)
        self.env = dict(env or {})  # added to the app's environment (e.g. a watched run's token: not in argv)
        self.client_gone = False
        self.started = False  # the app printed textual's start marker
        self.exited = False  # the app said it exits (a normal quit)
        self.finished = False  # the app's process has exited (its slot is free)
        self.stderr_tail = bytearray()
        self._stopping: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        environment = super()._build_environment(width=width, height=height)
        environment.update(self.env)
        environment[SERVER_PID_ENV] = str(os.getpid())  # the tether watches this pid
        return environment

    def _can_write(self) -> bool:
        process = self._process
        return process is not None and process.returncode is None and not self.stdin.is_closing()

    async def send_bytes(self, data: bytes) -> bool:
        return self._can_write() and await super().send_bytes(data)

    async def send_meta(self, data: dict[str, str | None | int | bool]) -> bool:
        return self._can_write() and await super().send_meta(data)

    async def _open_app_process(self, width: int = 80, height: int = 24) -> Any:
        self._process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._build_environment(width=width, height=height),
            start_new_session=True,  # its own process group: the trainer joins it, one killpg ends both
        )
        self._stdin = self._process.stdin
        return self._process

    async def run(self) -> None:
        process = self._process
        assert process is not None and process.stdout is not None and process.stderr is not None
        stderr_task = asyncio.create_task(self._read_stderr(process.stderr))
        stdout = process.stdout
        try:
            for _ in range(10):  # textual prints a marker line before its first frame
                line = await stdout.readline()
                if not line or line == b"__GANGLION__\n":
                    self.started = line == b"__GANGLION__\n"
                    break
            if self.started:
                await self._pump(stdout)
            else:
                while await stdout.read(65536):  # drain what a failed start prints, until the group is gone
                    pass
        except (asyncio.IncompleteReadError, ConnectionResetError):
            pass
        finally:
            await process.wait()
            self.finished = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stderr_task, 1.0)
            stderr_task.cancel()
        await self._report_failure(process.returncode)

    async def _pump(self, stdout: asyncio.StreamReader) -> None:
        while True:
            type_bytes = await stdout.readexactly(1)
            size = int.from_bytes(await stdout.readexactly(4), "big")
            payload = await stdout.readexactly(size)
            if self.client_gone:
                continue  # keep reading so the app is never stuck on a full pipe
            if type_bytes == b"D":
                await self.on_data(payload)
            elif type_bytes == b"M":
                await self.on_meta(payload)
            elif type_bytes == b"P":
                await self.on_packed(payload)

    async def _read_stderr(self, stderr: asyncio.StreamReader) -> None:
        while data := await stderr.read(4096):
            self.stderr_tail += data
            del self.stderr_tail[:-STDERR_KEEP]

    async def _report_failure(self, code: int | None) -> None:
        """An app that did not start, or died without quitting: its error goes to the log and into the page."""
        if self.exited or self.client_gone or code == 0:
            return
        text = self.stderr_tail.decode("utf-8", "replace").strip()
        lines = text.splitlines()[-20:] or [f"the session exited with code {code} before it started"]
        log.error("vgtui serve: a session %s (exit code %s): %s", "ended" if self.started else "could not start",
                  code, lines[-1])  # fmt: skip
        head = "the session stopped" if self.started else "the session could not start"
        page = "\x1b[?1049l\x1b[2J\x1b[H\x1b[1;31mvgtui: " + head + ":\x1b[0m\r\n\r\n" + "\r\n".join(lines)
        page += "\r\n\r\nReload the page to try again."
        await self.on_data(page.encode("utf-8"))

    async def on_data(self, payload: bytes) -> None:
        if self.client_gone:
            return
        try:
            await self.remote_write_bytes(payload)
        except (ConnectionResetError, RuntimeError):  # the tab closed while we wrote
            self.client_gone = True

    async def on_meta(self, data: bytes) -> None:
        with contextlib.suppress(ValueError, AttributeError):
            self.exited = self.exited or json.loads(data).get("type") == "exit"
        try:
            await super().on_meta(data)
        except (ConnectionResetError, RuntimeError):
            self.client_gone = True

    async def stop(self) -> None:
        """End the session: ask the app to quit, then kill its process group (idempotent, shared by callers)."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        self.client_gone = True
        process = self._process
        if process is None:
            return
        with contextlib.suppress(Exception):
            await self._download_manager.cancel_app_downloads(app_service_id=self.app_service_id)
        if process.returncode is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.send_meta({"type": "quit"}), 0.5)
            if not await _exited(process, QUIT_GRACE_S):
                kill_group(process.pid, signal.SIGTERM)
                if not await _exited(process, TERM_GRACE_S):
                    kill_group(process.pid, signal.SIGKILL)
        kill_group(process.pid, signal.SIGKILL)  # whatever is left of the group: the trainer, a tracker
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 2.0)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
            self._task = None


async def _exited(process: asyncio.subprocess.Process, timeout: float) -> bool:
    try:
        await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        return False
    return True


def kill_group(pgid: int, sig: int) -> None:
    """Signal the process group a session leads (ignored once the group is gone)."""
    with contextlib.suppress(ProcessLookupError, PermissionError, AttributeError):
        os.killpg(pgid, sig)
