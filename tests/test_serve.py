"""`vgtui serve`: the dashboard in a web page, on loopback by default. The page loads over HTTP here; where
Chromium and Playwright are installed, a real browser starts the app and a screenshot shows the dashboard."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from vgtui.cli import build_parser, main, serve_command


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_command_runs_launch_with_the_options():
    args = build_parser().parse_args(["serve", "deep-sigmoid", "--set", "model.depth=5", "--refresh-hz", "2"])
    cmd = serve_command(args)
    assert "-m vgtui.cli launch deep-sigmoid --set model.depth=5 --device auto --refresh-hz 2.0" in cmd
    assert args.host == "127.0.0.1"  # loopback unless asked


def test_bad_preset_is_refused_before_serving(capsys):
    assert main(["serve", "no-such-scene"]) == 2
    assert "unknown preset" in capsys.readouterr().err


@pytest.fixture
def server():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vgtui.cli", "serve", "deep-sigmoid", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    yield url, resp.read().decode()
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("vgtui serve did not answer")
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_the_page_is_served_on_loopback(server):
    url, html = server
    assert "<html" in html.lower() and "textual" in html.lower()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (apt-get install chromium)")
def test_a_real_browser_shows_the_dashboard(server, tmp_path: Path):
    playwright = pytest.importorskip("playwright.sync_api")
    url, _ = server
    shot = Path(os.environ.get("VGTUI_SCREENSHOT", tmp_path / "browser.png"))
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(url)
        page.click("body")  # the splash screen starts the app on a click
        page.wait_for_timeout(12000)
        text = page.inner_text("body")
        page.screenshot(path=str(shot))
        browser.close()
    assert "deep-sigmoid" in text or shot.stat().st_size > 50_000
