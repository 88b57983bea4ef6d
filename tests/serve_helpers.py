"""Start a real `vgtui serve` on a free loopback port and look at its processes through /proc."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HAS_PROC = Path("/proc/self/stat").exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of a process, None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2 :].split()
    return int(rest[1]), rest[0]


def descendants(pid: int) -> set[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            parents[int(entry)] = stat[0]
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found.add(child)
                todo.append(child)
    return found


def living(pids: set[int]) -> set[int]:
    """The pids still running (a zombie nobody reaped counts as ended)."""
    return {pid for pid in pids if (stat := _stat(pid)) is not None and stat[1] != "Z"}


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def session_group(server_pid: int, timeout: float = 60) -> set[int]:
    """The server's descendants once a trainer runs beside the dashboard (the tether, the trainer, a tracker)."""
    end = time.monotonic() + timeout
    while len(group := descendants(server_pid)) < 2 and time.monotonic() < end:
        time.sleep(0.1)
    assert len(group) >= 2, f"no trainer started within {timeout} s: {group}"
    return group


def wait_until_gone(pids: set[int], timeout: float) -> tuple[set[int], float]:
    start = time.monotonic()
    while living(pids) and time.monotonic() - start < timeout:
        time.sleep(0.05)
    return living(pids), time.monotonic() - start


@dataclass
class Served:
    proc: subprocess.Popen
    port: int
    stderr: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sessions(self) -> set[int]:
        return {pid for pid in descendants(self.proc.pid) if "vgtui.serve.tether" in cmdline(pid)}


def run_serve(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "vgtui.cli", "serve", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


@contextlib.contextmanager
def serving(*args: str, preset: str | None = "deep-sigmoid") -> Iterator[Served]:
    """`vgtui serve PRESET --port P ARGS` until it answers; killed (with anything it started) afterwards.
    `preset=None`: no preset (e.g. ARGS has --attach NAME)."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "vgtui.cli", "serve", *([preset] if preset else []), "--port", str(port), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    served = Served(proc, port)
    reader = threading.Thread(target=lambda: served.stderr.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    started: set[int] = set()
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"vgtui serve exited {proc.returncode}: {''.join(served.stderr)}")
            try:
                urllib.request.urlopen(f"{served.base}/static/js/textual.js", timeout=1).close()
                break
            except (OSError, urllib.error.HTTPError):
                if time.monotonic() > deadline:
                    raise AssertionError("vgtui serve did not answer within 30 s") from None
                time.sleep(0.1)
        yield served
        started = descendants(proc.pid)
    finally:
        started |= descendants(proc.pid) if proc.poll() is None else set()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for pid in living(started):  # never leave a trainer behind, whatever the test did
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
