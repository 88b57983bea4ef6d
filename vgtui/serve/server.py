"""The textual-serve Server, guarded: Host/Origin/token checks, a session cap, clamped resizes, no orphans.

Routes: `/` (the page), `/ws` and `/ws/{token}` (one session per WebSocket), `/static/...` (textual-serve's
own JS/CSS/fonts: public, no token). textual-serve's `/download/...` route is not served: vgtui delivers no
files. Every request passes `Guard.refuse` first; a refusal is 403 with one log line per origin/host/peer.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import errno
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import WSCloseCode, WSMsgType, web
from textual_serve.server import Server

from vgtui.serve.guard import Guard, OnceLog, clamp_size, url_host
from vgtui.serve.session import TabSession, kill_group

log = logging.getLogger("vgtui.serve")

HEADERS = {
    "X-Frame-Options": "DENY",  # no framing by another site (clickjacking a live session)
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",  # the page URL may carry the token
    "X-Content-Type-Options": "nosniff",
}
FULL_HOLD_S = 600.0  # a tab told "full" keeps its message this long (no process behind it)


class ServeError(ValueError):
    """A reason `vgtui serve` cannot start: one line on stderr, exit 2."""


@dataclass(frozen=True)
class Tab:
    """What each browser tab runs: `vgtui COMMAND ARGS...` as an argument list (never through a shell), with
    `env` added to its environment; `title` names the page, `each` says what one session is (for "full")."""

    command: str = "launch"
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    title: str = "vgtui"
    each: str = "trains a model"


def full_message(running: int, limit: int, each: str = "trains a model") -> str:
    return (
        f"vgtui: this server is full: {running} of {limit} sessions are running (each {each}). "
        "Close another vgtui tab, or ask whoever started the server for a higher --max-sessions, "
        "then reload this page."
    )


# keys work without a click first: focus the terminal as soon as textual.js has made it (and again on a click
# anywhere, e.g. after the session restarts)
FOCUS_SCRIPT = """<script>
(function () {
  function focusTerminal() {
    var t = document.querySelector("#terminal textarea");
    if (t) { t.focus({preventScroll: true}); return true; }
    return false;
  }
  var tries = 0, timer = setInterval(function () { if (focusTerminal() || ++tries > 100) clearInterval(timer); }, 100);
  window.addEventListener("focus", focusTerminal);
  document.addEventListener("click", focusTerminal);
})();
</script>
"""


class VgtuiServer(Server):
    """Serve `python -m vgtui.serve.tether launch ARGS` (or a Tab's command) to each accepted WebSocket."""

    def __init__(self, tab: Tab | Sequence[str], *, host: str, port: int, guard: Guard, max_sessions: int,
                 font_size: int = 16) -> None:  # fmt: skip
        self.tab = tab if isinstance(tab, Tab) else Tab("launch", tuple(tab))
        self.argv = [sys.executable, "-m", "vgtui.serve.tether", self.tab.command, *self.tab.args]
        shown = " ".join(["vgtui", self.tab.command, *self.tab.args])
        super().__init__(shown, host=host, port=port, title=self.tab.title)
        self.guard = guard
        self.max_sessions = max_sessions
        self.font_size = font_size  # the page's default; ?fontsize=N overrides it
        self.sessions: dict[TabSession, web.WebSocketResponse] = {}
        self.waiting: set[web.WebSocketResponse] = set()  # tabs shown "full"
        self.refused = OnceLog(log)
        self._full_logged = False
        self._sock: socket.socket | None = None

    # ------------------------------------------------------------------ start-up

    def bind(self) -> None:
        """Bind the listening socket now, so a busy port or a bad host is reported before anything starts."""
        try:
            infos = socket.getaddrinfo(self.host or None, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            family, kind, proto, _, address = infos[0]
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            raise ServeError(f"--host {self.host}: {exc.strerror or exc}") from None
        try:
            if os.name == "posix":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(128)
        except OSError as exc:
            sock.close()
            hint = f" (another server? try --port {self.port + 1})" if exc.errno == errno.EADDRINUSE else ""
            raise ServeError(
                f"cannot serve on {url_host(self.host)}:{self.port}: {exc.strerror or exc}{hint}"
            ) from None
        self._sock = sock

    def initialize_logging(self) -> None:
        """One plain line per event on stderr, beside the banner (textual-serve's rich log wraps lines)."""
        logging.basicConfig(level="INFO", format="%(message)s", handlers=[logging.StreamHandler(sys.stderr)])

    def serve(self, debug: bool = False) -> None:
        if self._sock is None:
            self.bind()
        self.debug = debug
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self.request_exit)
        atexit.register(self.kill_all)
        web.run_app(
            self._make_app(),
            sock=self._sock,
            handle_signals=False,
            loop=loop,
            print=None,
            access_log=None,  # an access log would write the token of every page URL
            shutdown_timeout=5.0,
        )

    async def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=64 * 1024)
        aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(self.templates_path))
        app.add_routes(
            [
                web.get("/", self.handle_index, name="index"),
                web.get("/ws", self.handle_websocket, name="websocket"),
                web.get("/ws/{token}", self.handle_websocket),
                web.static("/static", self.statics_path, name="static"),
            ]
        )
        app.on_response_prepare.append(self._add_headers)
        app.on_shutdown.append(self.on_shutdown)
        return app

    async def on_startup(self, app: web.Application) -> None:  # the CLI prints its own banner
        pass

    # ------------------------------------------------------------------ the guard

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        refusal = self.guard.refuse(
            host=request.headers.get("Host"),
            origin=request.headers.get("Origin"),
            token=request.match_info.get("token") or request.query.get("token"),
            websocket=path == "/ws" or path.startswith("/ws/"),
            public=path.startswith("/static/"),
            peer=request.remote or "?",
        )
        if refusal is not None:
            self.refused(refusal.key, refusal.text)
            return web.Response(status=403, text=refusal.body)
        return await handler(request)

    @staticmethod
    async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
        response.headers.update(HEADERS)
        if not request.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"

    # ------------------------------------------------------------------ sessions

    def running(self) -> int:
        return sum(not s.finished for s in self.sessions)

    def _is_full(self) -> bool:
        full = self.running() >= self.max_sessions
        if full and not self._full_logged:
            log.warning("vgtui serve: %s", full_message(self.running(), self.max_sessions, self.tab.each))
        self._full_logged = full
        return full

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        if self._is_full():
            text = full_message(self.running(), self.max_sessions, self.tab.each)
            return web.Response(status=503, content_type="text/html", text=_FULL_PAGE.format(text=text))
        websocket_url = f"ws://{request.host}/ws"  # request.host passed the Host check
        if self.guard.token is not None:
            websocket_url += f"/{self.guard.token}"
        try:
            font_size = min(max(int(request.query.get("fontsize", str(self.font_size))), 6), 64)
        except ValueError:
            font_size = self.font_size
        context = {
            "font_size": font_size,
            "app_websocket_url": websocket_url,
            "config": {"static": {"url": "/static/"}},
            "application": {"name": self.title},
        }
        page = aiohttp_jinja2.render_template("app_index.html", request, context)
        page.text = (page.text or "").replace("</body>", FOCUS_SCRIPT + "</body>", 1)
        return page

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        websocket = web.WebSocketResponse(heartbeat=15, max_msg_size=1 << 20)
        width, height = clamp_size(request.query.get("width", 80), request.query.get("height", 24)) or (80, 24)
        await websocket.prepare(request)
        if self._is_full():
            await self._tell_full(websocket)
            return websocket
        session = TabSession(
            self.argv,
            env=self.tab.env,
            write_bytes=websocket.send_bytes,
            write_str=websocket.send_str,
            close=websocket.close,
            download_manager=self.download_manager,
            debug=self.debug,
        )
        self.sessions[session] = websocket  # counted before the first await: the cap cannot be overrun
        try:
            await session.start(width, height)
            await self._process_messages(websocket, session)
        except Exception:
            log.exception("vgtui serve: a session failed")
        finally:
            await session.stop()
            self.sessions.pop(session, None)
            with contextlib.suppress(Exception):
                await websocket.close()
        return websocket

    async def _tell_full(self, websocket: web.WebSocketResponse) -> None:
        """Write the message into the tab's terminal and keep it there; no process is started."""
        text = full_message(self.running(), self.max_sessions, self.tab.each)
        self.waiting.add(websocket)
        try:
            await websocket.send_bytes(f"\x1b[2J\x1b[H\x1b[1;33m{text}\x1b[0m\r\n".encode())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FULL_HOLD_S):
                    await self._process_messages(websocket, _NoApp())
        finally:
            self.waiting.discard(websocket)
            await websocket.close()

    async def _process_messages(self, websocket: web.WebSocketResponse, app_service: Any) -> None:
        """textual-serve's loop, but a malformed message is skipped and a resize is clamped."""
        async for message in websocket:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                envelope = json.loads(message.data)
            except ValueError:
                continue
            if not isinstance(envelope, list) or not envelope:
                continue
            kind, data = envelope[0], envelope[1] if len(envelope) > 1 else None
            if kind == "stdin" and isinstance(data, str):
                await app_service.send_bytes(data.encode("utf-8"))
            elif kind == "resize" and isinstance(data, dict):
                size = clamp_size(data.get("width"), data.get("height"))
                if size is not None:
                    await app_service.set_terminal_size(*size)
            elif kind == "ping":
                await websocket.send_json(["pong", data])
            elif kind == "blur":
                await app_service.blur()
            elif kind == "focus":
                await app_service.focus()

    async def on_shutdown(self, app: web.Application) -> None:
        await asyncio.gather(*(s.stop() for s in list(self.sessions)), return_exceptions=True)
        for websocket in [*self.sessions.values(), *self.waiting]:
            with contextlib.suppress(Exception):
                await websocket.close(code=WSCloseCode.GOING_AWAY)

    def kill_all(self) -> None:
        """Last resort at exit: kill every session's process group."""
        for session in list(self.sessions):
            if session.pid is not None:
                kill_group(session.pid, signal.SIGKILL)


class _NoApp:
    """Where a tab told "full" sends its keys and resizes: nowhere (its pings are still answered)."""

    async def send_bytes(self, data: bytes) -> bool:
        return False

    async def set_terminal_size(self, width: int, height: int) -> None:
        pass

    async def blur(self) -> None:
        pass

    async def focus(self) -> None:
        pass


_FULL_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>vgtui: server full</title></head>
<body style="background:#0c181f;color:#eee;font-family:monospace;padding:3em;font-size:18px">
<h1>vgtui</h1><p>{text}</p></body></html>
"""
