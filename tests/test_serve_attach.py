"""`vgtui serve --attach NAME`: a watched run's dashboard in the browser, read-only unless --control. A target that
is not there is one line and exit 2 before anything is served; over a real WebSocket the page shows the run, a
read-only tab refuses commands, a --control tab steers the run, and a tab that leaves takes its processes along
(the watched run trains on). Where Chromium and Playwright are installed, a real browser shows it too."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from serve_helpers import HAS_PROC, run_serve, serving, wait_until_gone
from watch_helpers import SCRIPTS, spawn, wait_for, watch_dir_fixture  # noqa: F401 - fixtures

from vgtui.attach import connect, list_watches
from vgtui.cli import main
from vgtui.watchdir import socket_path

needs_proc = pytest.mark.skipif(not HAS_PROC, reason="reads processes from /proc (Linux)")
NAME = "served-run"
ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>78]")


# ---------------------------------------------------------------- refused before serving


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["--attach", "nope"], "no watched run named nope"),
        (["--attach", "unix:/nonexistent/x.sock"], "no socket at /nonexistent/x.sock"),
        (["--attach", "bad name;rm -rf ~"], "allowed: letters, digits"),
        (["--attach", "tcp://127.0.0.1"], "expected tcp://HOST:PORT"),
        (["--attach", "tcp://127.0.0.1:9"], "needs its token"),
        (["deep-sigmoid", "--attach", "x"], "not a preset"),
        (["--attach", "x", "--set", "model.depth=3"], "--set"),
        (["--attach", "x", "--theme", "light"], "--theme"),
        (["deep-sigmoid", "--control"], "--control goes with --attach"),
        (["deep-sigmoid", "--token-file", "t"], "--token-file goes with --attach"),
    ],
)
def test_a_bad_target_is_one_line_and_exit_2(watch_dir, capsys, args, expect):
    assert main(["serve", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expect in err and "Traceback" not in err, err


def test_a_run_that_is_not_running_is_named_with_what_is_allowed(watch_dir, tmp_path, capsys):
    watch_dir.mkdir(mode=0o700)
    left = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    left.bind(str(watch_dir / "old.sock"))  # bound, never listening: what a killed run leaves
    left.close()
    assert main(["serve", "--attach", "old"]) == 2
    assert "not running (its socket was left by a run that ended); vgtui attach --list" in capsys.readouterr().err
    assert main(["serve", "--attach", "nope"]) == 2
    assert "watched runs here now: old" in capsys.readouterr().err
    token = tmp_path / "tok"
    token.write_text("s3cret-token\n")
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    assert main(["serve", "--attach", f"tcp://127.0.0.1:{port}", "--token-file", str(token)]) == 2
    assert "nothing listens" in capsys.readouterr().err
    # the real command line: one line, exit 2, nothing served
    proc = run_serve("--attach", "nope", "--port", "1")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "vgtui attach --list" in proc.stderr


# ---------------------------------------------------------------- a real server on a real watched run


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen]:
    """A watched training script that trains until the test ends (its own socket directory)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VGTUI_DIR", str(tmp_path_factory.mktemp("served") / "w"))
        proc = spawn([str(SCRIPTS / "steady_train.py"), "--name", NAME, "--steps", "1000000", "--pace", "0.02",
                      "--hold", "0"])  # fmt: skip
        try:
            wait_for(lambda: socket_path(NAME).exists() or proc.poll() is not None, 90, "the watch socket")
            assert proc.poll() is None, proc.communicate()[1]
            wait_for(lambda: any(w.get("step", 0) >= 20 for w in list_watches()), 90, "20 steps")
            yield proc
        finally:
            proc.kill()
            proc.wait(10)


def _text(data: bytes) -> str:
    """What a terminal stream says, without its escape sequences."""
    return ANSI.sub(b"", data).decode("utf-8", "replace")


async def _read_until(ws: aiohttp.ClientWebSocketResponse, words: tuple[str, ...], timeout: float) -> str:
    """The tab's output until every word has appeared (or the time is up)."""
    data = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end and not all(w in _text(data) for w in words):
        try:
            msg = await asyncio.wait_for(ws.receive(), 1)
        except TimeoutError:
            continue
        if msg.type == aiohttp.WSMsgType.BINARY:
            data += msg.data
        elif msg.type != aiohttp.WSMsgType.TEXT:
            break
    return _text(data)


def _status(snap_timeout: float = 30) -> tuple[str, list[str]]:
    """The run's status and its event names, as a separate read-only viewer sees them."""
    s = connect(NAME, read_only=True)
    try:
        wait_for(lambda: s.latest() is not None, snap_timeout, "a snapshot")
        snap = s.latest()
        return snap.status, [e.name for e in snap.events]
    finally:
        s.stop()


@contextlib.asynccontextmanager
async def _tab(port: int):
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"http://127.0.0.1:{port}/ws?width=140&height=45", origin=f"http://127.0.0.1:{port}")
        try:
            yield http, ws
        finally:
            await ws.close()


@needs_proc
async def test_the_page_shows_the_watched_run_read_only_and_a_tab_that_leaves_ends_its_processes(watched):
    with serving("--attach", NAME, preset=None) as srv:
        assert any(f"watched run {NAME}" in line and "read-only" in line for line in srv.stderr), srv.stderr
        async with _tab(srv.port) as (http, ws):
            async with http.get(srv.base + "/") as resp:
                assert resp.status == 200 and f"vgtui: {NAME}" in await resp.text()
            shown = await _read_until(ws, (NAME, "[0]", "[2]"), 90)
            assert NAME in shown and "[0]" in shown and "[2]" in shown, shown[-2000:]
            tabs = srv.sessions()
            assert len(tabs) == 1 and all("--read-only" in Path(f"/proc/{p}/cmdline").read_text() for p in tabs)
            await ws.send_json(["stdin", " "])  # space: pause, a command
            said = await _read_until(ws, ("read-only",), 30)
            assert "read-only" in said and "--control" in said, said[-2000:]
        status, events = _status()
        assert status == "running" and "pause" not in events
        left, took = wait_until_gone(tabs, 15)
        assert not left, f"the tab's processes still run {took:.1f} s after it left"
        assert watched.poll() is None, "the watched run must train on when a viewer leaves"


@needs_proc
async def test_with_control_a_tab_steers_the_run(watched):
    with serving("--attach", NAME, "--control", preset=None) as srv:
        async with _tab(srv.port) as (_, ws):
            await _read_until(ws, (NAME, "[0]"), 90)
            await ws.send_json(["stdin", " "])  # pause
            wait_for(lambda: _status()[0] == "paused", 60, "the run to pause")
            await ws.send_json(["stdin", " "])  # resume
            wait_for(lambda: _status()[0] == "running", 60, "the run to resume")
        assert "pause" in _status()[1]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (apt-get install chromium)")
def test_a_real_browser_shows_the_watched_run(watched, tmp_path: Path):
    playwright = pytest.importorskip("playwright.sync_api")
    shot = Path(os.environ.get("VGTUI_SCREENSHOT", tmp_path / "attach.png"))
    with serving("--attach", NAME, preset=None) as srv, playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(srv.base + "/")
        page.click("body")  # the splash screen starts the app on a click
        page.wait_for_timeout(15000)
        text = page.inner_text("body")
        page.screenshot(path=str(shot))
        browser.close()
    assert NAME in text or shot.stat().st_size > 50_000


def test_each_tab_runs_an_argument_list_with_the_checked_target(watched):
    """No shell and no option from the user's text: `python -m vgtui.serve.tether attach unix:PATH --read-only`."""
    from vgtui.cli import build_parser
    from vgtui.serve.attach_target import attach_tab
    from vgtui.serve.guard import Guard
    from vgtui.serve.options import READ_ONLY_ENV
    from vgtui.serve.server import VgtuiServer
    from vgtui.serve.tether import main as tether

    tab, banner = attach_tab(build_parser().parse_args(["serve", "--attach", NAME, "--refresh-hz", "2"]))
    assert tab.args == (f"unix:{socket_path(NAME)}", "--read-only", "--refresh-hz", "2.0")
    assert tab.env == {READ_ONLY_ENV: "1"} and tab.title == f"vgtui: {NAME}"
    server = VgtuiServer(tab, host="127.0.0.1", port=8000, guard=Guard(frozenset({"127.0.0.1"}), 8000), max_sessions=1)
    assert server.argv == [sys.executable, "-m", "vgtui.serve.tether", "attach", *tab.args]
    control, _ = attach_tab(build_parser().parse_args(["serve", "--attach", NAME, "--control"]))
    assert "--read-only" not in control.args and READ_ONLY_ENV not in control.env
    assert tether(["--out=/etc/passwd"]) == 2  # a tab runs launch or attach, nothing else of the command line


def test_a_tcp_run_needs_its_token_which_goes_to_the_tab_in_its_environment(watch_dir, tmp_path, capsys):
    import torch

    import vgtui
    from vgtui.cli import build_parser
    from vgtui.serve.attach_target import attach_tab

    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), 0.1)
    with vgtui.watch(model, opt, name="tcp", tcp=("127.0.0.1", 0), token="right-token-123", quiet=True) as w:
        target = f"tcp://127.0.0.1:{w.tcp_port}"
        tab, _ = attach_tab(build_parser().parse_args(["serve", "--attach", target, "--token-file", str(w.token_file)]))
        assert tab.args[0] == target and tab.env["VGTUI_TOKEN"] == "right-token-123"
        assert not any("right-token" in arg for arg in tab.args)  # not on a command line `ps` shows to every user
        wrong = tmp_path / "wrong.token"
        wrong.write_text("wrong-token-456\n")
        assert main(["serve", "--attach", target, "--token-file", str(wrong)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "refused: not authenticated" in err, err
