"""`vgtui serve` against a hostile user: foreign Origin / Host, the session cap, huge resizes, tabs that leave,
a server killed with SIGKILL, the token off loopback, bad addresses. Multi-process tests run a real server on a
free loopback port and look at its processes through /proc."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest
from serve_helpers import HAS_PROC, rss_mb, run_serve, serving, session_group, wait_until_gone

from vgtui.serve.guard import (
    MAX_HEIGHT,
    MAX_WIDTH,
    Guard,
    OnceLog,
    choose_token,
    clamp_size,
    default_max_sessions,
    served_names,
)
from vgtui.serve.server import VgtuiServer

needs_proc = pytest.mark.skipif(not HAS_PROC, reason="reads processes from /proc (Linux)")
PRESETS = Path(__file__).resolve().parents[1] / "presets"


# ---------------------------------------------------------------- the checks, without a server


def loopback_guard(port: int = 8000, token: str | None = None) -> Guard:
    return Guard(served_names("127.0.0.1"), port, token)


@pytest.mark.parametrize(
    ("origin", "ok"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://localhost:8000", True),
        ("http://LOCALHOST:8000", True),
        ("http://evil.example", False),
        ("http://evil.example:8000", False),
        ("http://127.0.0.1:8001", False),
        ("https://127.0.0.1:8000", False),
        ("http://127.0.0.1", False),
        ("null", False),
        ("", False),
        (None, False),
        ("http://127.0.0.1:99999", False),
    ],
)
def test_websocket_origin_must_be_the_served_address(origin, ok):
    assert loopback_guard().origin_ok(origin) is ok


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1:8000", True),
        ("localhost:8000", True),
        ("evil.example:8000", False),  # DNS rebinding: the attacker's name resolved to 127.0.0.1
        ("127.0.0.1", False),  # port 80 implied
        ("127.0.0.1:8000:1", False),
        ("", False),
        (None, False),
    ],
)
def test_host_header_must_be_a_served_name(host, ok):
    assert loopback_guard().host_ok(host) is ok


def test_a_non_loopback_host_answers_only_to_its_own_name():
    names = served_names("192.0.2.7", extra=["gpu-box.example"])
    assert names == {"192.0.2.7", "gpu-box.example"}
    guard = Guard(names, 8000)
    assert guard.origin_ok("http://192.0.2.7:8000") and guard.origin_ok("http://gpu-box.example:8000")
    assert not guard.origin_ok("http://localhost:8000")
    assert served_names("::1") == {"::1", "localhost"}
    assert served_names("localhost") == {"localhost", "127.0.0.1", "::1"}
    assert Guard(served_names("::1"), 8000).host_ok("[::1]:8000")


def test_off_loopback_a_token_is_required_and_made_up_when_not_given():
    assert choose_token("127.0.0.1", None) is None
    assert choose_token("localhost", None) is None
    assert choose_token("127.0.0.1", "given-token") == "given-token"
    made = choose_token("0.0.0.0", None)
    assert made is not None and len(made) >= 20 and made != choose_token("0.0.0.0", None)
    assert choose_token("192.0.2.7", None) is not None
    guard = Guard(served_names("192.0.2.7"), 8000, made)
    common = {"host": "192.0.2.7:8000", "origin": None, "websocket": False, "peer": "p"}
    assert guard.refuse(token=None, public=False, **common) is not None
    assert guard.refuse(token=made + "x", public=False, **common) is not None
    assert guard.refuse(token=made, public=False, **common) is None
    assert guard.refuse(token=None, public=True, **common) is None  # textual-serve's static JS and CSS


def test_terminal_size_is_clamped():
    assert clamp_size(4000, 4000) == (MAX_WIDTH, MAX_HEIGHT) == (500, 200)
    assert clamp_size("120", "40") == (120, 40)
    assert clamp_size(-5, 0) == (1, 1)
    assert clamp_size(None, 3) is None and clamp_size("x", 3) is None and clamp_size(float("inf"), 3) is None


def test_default_session_cap_fits_the_machine():
    mb = 2**20
    assert default_max_sessions(cpus=2, available=22_000 * mb) == 2  # CPU-bound
    assert default_max_sessions(cpus=16, available=2_100 * mb) == 4  # memory-bound: 500 MB a session
    assert default_max_sessions(cpus=8, available=100 * mb) == 1  # never 0
    assert default_max_sessions(cpus=3, available=None) == 3
    assert default_max_sessions() >= 1


def test_a_refusal_is_logged_once_per_key(caplog):
    once = OnceLog(logging.getLogger("vgtui.test"), limit=2)
    with caplog.at_level(logging.WARNING, "vgtui.test"):
        for _ in range(5):
            once("origin a", "refused a")
        once("origin b", "refused b")
        for key in "cdef":
            once(key, "refused " + key)
    texts = [r.getMessage() for r in caplog.records]
    assert sum("refused a" in t for t in texts) == 1 and sum("refused b" in t for t in texts) == 1
    assert len(texts) == 3 and "no longer logging" in texts[-1]


async def test_a_resize_is_clamped_before_it_reaches_the_app():
    server = VgtuiServer([], host="127.0.0.1", port=8000, guard=loopback_guard(), max_sessions=1)
    calls = []

    class App:
        async def set_terminal_size(self, width, height):
            calls.append((width, height))

        async def send_bytes(self, data):
            calls.append(data)

    class Socket:
        def __init__(self, texts):
            self.messages = [SimpleNamespace(type=aiohttp.WSMsgType.TEXT, data=t) for t in texts]

        def __aiter__(self):
            return self

        async def __anext__(self):
            if not self.messages:
                raise StopAsyncIteration
            return self.messages.pop(0)

    texts = [
        '["resize", {"width": 4000, "height": 4000}]',
        '["resize", {"width": 100, "height": 30}]',
        "not json",
        '["resize", "big"]',
        '["resize", {"width": "x"}]',
        "{}",
        '["stdin", "q"]',
    ]
    await server._process_messages(Socket(texts), App())
    assert calls == [(500, 200), (100, 30), b"q"]


# ---------------------------------------------------------------- a real server


async def first_frame(ws: aiohttp.ClientWebSocketResponse, timeout: float = 60) -> bytes:
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            if msg.type == aiohttp.WSMsgType.BINARY:
                return msg.data
            assert msg.type == aiohttp.WSMsgType.TEXT, f"the WebSocket ended: {msg}"


@needs_proc
async def test_foreign_origin_and_host_get_403_and_start_nothing():
    with serving() as srv:
        async with aiohttp.ClientSession() as http:
            for _ in range(3):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await http.ws_connect(f"{srv.base}/ws", origin="http://evil.example")
                assert refused.value.status == 403
            with pytest.raises(aiohttp.WSServerHandshakeError) as no_origin:
                await http.ws_connect(f"{srv.base}/ws")
            assert no_origin.value.status == 403
            for path in ("/", "/ws", "/static/js/textual.js"):
                async with http.get(srv.base + path, headers={"Host": f"evil.example:{srv.port}"}) as resp:
                    assert resp.status == 403, path
            async with http.get(srv.base + "/") as resp:
                assert resp.status == 200 and resp.headers["X-Frame-Options"] == "DENY"
            await asyncio.sleep(0.5)
            assert srv.sessions() == set(), "a refused request started a session"
    lines = srv.stderr
    assert sum("Origin 'http://evil.example'" in line for line in lines) == 1, lines  # 3 refusals, 1 line
    assert sum("Host 'evil.example" in line for line in lines) == 1, lines


@needs_proc
async def test_token_is_needed_before_anything_starts():
    token = "s3cret-token-for-tests"
    with serving("--token", token) as srv:
        origin = f"http://127.0.0.1:{srv.port}"
        async with aiohttp.ClientSession() as http:
            for query in ("", "?token=wrong-token-xx", f"?token={token[:-1]}"):
                async with http.get(f"{srv.base}/{query}") as resp:
                    assert resp.status == 403, query
            async with http.get(f"{srv.base}/?token={token}") as resp:
                assert resp.status == 200 and f"/ws/{token}" in await resp.text()
            for path in ("/ws", "/ws/wrong-token-xx", "/ws?token=nope-nope-nope"):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await http.ws_connect(srv.base + path, origin=origin)
                assert refused.value.status == 403, path
            await asyncio.sleep(0.5)
            assert srv.sessions() == set()


@needs_proc
async def test_session_cap_then_kill_9_ends_every_session():
    """--max-sessions 1: a second tab is told the server is full; then SIGKILL to the server ends the first."""
    with serving("--max-sessions", "1") as srv:
        origin = f"http://127.0.0.1:{srv.port}"
        async with aiohttp.ClientSession() as http:
            first = await http.ws_connect(f"{srv.base}/ws?width=100&height=30", origin=origin)
            await first_frame(first)
            second = await http.ws_connect(f"{srv.base}/ws", origin=origin)
            text = (await first_frame(second, 10)).decode()
            assert "server is full" in text and "1 of 1 sessions" in text
            async with http.get(f"{srv.base}/") as resp:
                assert resp.status == 503 and "1 of 1 sessions" in await resp.text()
            sessions = srv.sessions()
            assert len(sessions) == 1, "the full tab started a process"
            group = session_group(srv.proc.pid)  # the dashboard, its trainer, multiprocessing's tracker
            os.kill(srv.proc.pid, signal.SIGKILL)
            srv.proc.wait(5)
            left, took = wait_until_gone(group, 10)
            assert not left, f"still running {took:.1f} s after kill -9: {left}"
            print(f"kill -9: {len(group)} session processes gone in {took:.2f} s")


@needs_proc
async def test_a_huge_resize_is_clamped_and_a_tab_that_leaves_ends_its_processes():
    with serving() as srv:
        origin = f"http://127.0.0.1:{srv.port}"
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"{srv.base}/ws?width=100&height=30", origin=origin)
            await first_frame(ws)
            group = session_group(srv.proc.pid)
            await ws.send_json(["resize", {"width": 4000, "height": 4000}])
            biggest, end = 0, time.monotonic() + 8
            while time.monotonic() < end:
                try:
                    msg = await asyncio.wait_for(ws.receive(), 1)
                except TimeoutError:
                    continue
                if msg.type == aiohttp.WSMsgType.BINARY:
                    biggest = max(biggest, len(msg.data))
            memory = {pid: round(rss_mb(pid)) for pid in group}
            print(f"after a 4000x4000 resize: biggest frame {biggest} bytes, RSS MB {memory}")
            assert 0 < biggest < 2_000_000  # 500x200 cells; unclamped it was 19.7 MB
            await ws.close()
            left, took = wait_until_gone(group, 10)
            assert not left, f"still running {took:.1f} s after the tab left: {left}"
            print(f"tab left: {len(group)} processes gone in {took:.2f} s")


@needs_proc
async def test_a_session_that_cannot_start_shows_its_error_in_the_page(tmp_path):
    scene = tmp_path / "scene.toml"
    scene.write_text((PRESETS / "deep-sigmoid.toml").read_text())
    with serving(preset=str(scene)) as srv:
        scene.unlink()  # checked when serving started; gone when the tab opens
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"{srv.base}/ws", origin=f"http://127.0.0.1:{srv.port}")
            page = (await first_frame(ws)).decode()
            assert "could not start" in page and "scene.toml" in page, page
            await ws.close()
    assert "could not start" in "".join(srv.stderr)


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["--host", "256.1.1.1"], "not an IPv4 address"),
        (["--set", "model.depth=5"], "--set needs a preset"),
        (["deep-sigmoid", "--set", "model.nope=1"], "unknown key"),
        (["deep-sigmoid", "--max-sessions", "0"], "--max-sessions"),
        (["deep-sigmoid", "--token", "short"], "--token"),
        (["deep-sigmoid", "--device", "tpu"], "--device"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(args, expect):
    proc = run_serve(*args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and expect in proc.stderr and "Traceback" not in proc.stderr


def test_a_busy_port_is_one_line_and_exit_2():
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        proc = run_serve("deep-sigmoid", "--port", str(busy.getsockname()[1]))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "in use" in proc.stderr, proc.stderr


def test_a_missing_gpu_fails_before_serving():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():  # pragma: no cover - this machine would serve
        pytest.skip("CUDA is available here")
    proc = run_serve("deep-sigmoid", "--device", "cuda", timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "cuda" in proc.stderr, proc.stderr
