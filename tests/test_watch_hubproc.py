"""The hub process: vgtui.watch serves its viewers from a child process that imports no torch, ends with the run
whichever way the run ends (close, Ctrl-C, SIGKILL) and tells the viewers; where no child can start, a thread."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import sigint_as_from_a_terminal
from serve_helpers import living
from torch import nn
from watch_helpers import (  # noqa: F401 - fixtures
    ROOT,
    SCRIPTS,
    child_env,
    one_torch_thread_fixture,
    train_steps,
    wait_for,
    watch_dir_fixture,
)

import vgtui
from vgtui.attach import connect
from vgtui.watch.hub import Hub
from vgtui.watch.hubproc import GONE
from vgtui.watch.hubproxy import HubProcess

pytestmark = pytest.mark.usefixtures("watch_dir", "one_torch_thread")


def _model() -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Sigmoid(), nn.Linear(8, 2))
    return model, torch.optim.SGD(model.parameters(), 0.1)


def test_the_hub_process_imports_neither_torch_nor_textual():
    code = (
        "import sys, vgtui.watch.hubproc; print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'textual'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=child_env(), capture_output=True, text=True,
                         timeout=60, check=True)  # fmt: skip
    assert out.stdout.strip() == "[]"


def test_a_watch_serves_from_its_own_process_and_leaves_nothing_running(watch_dir):
    model, opt = _model()
    w = vgtui.watch(model, opt, name="own", publish_every=0.01, heavy_every=5, quiet=True)
    assert isinstance(w.hub, HubProcess) and w.hub.pid not in (None, os.getpid())
    viewer = connect("own")
    viewer.start()
    wait_for(lambda: len(w.viewer_stats()) == 1, 30, "the viewer")
    train_steps(model, opt, w, 30)
    wait_for(lambda: viewer.latest() is not None and viewer.latest().step == 30, 30, "step 30 at the viewer")
    assert viewer.history.view().steps.tolist() == list(range(1, 31))
    pid = w.hub.pid
    w.close()
    wait_for(viewer.ended.is_set, 30, "the viewer told the run ended")
    assert viewer.latest().status == "done"
    assert not living({pid}) and not w.socket.exists()
    viewer.stop()


@contextlib.contextmanager
def _watched_script(name: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen, int, Any]]:
    """steady_train.py under vgtui.watch, in a process group of its own, with a viewer that sees its live steps:
    (the trainer, its hub process's pid, the viewer)."""
    pid_file = tmp_path / "hub.pid"
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "steady_train.py"), "--name", name, "--steps", "100000",
                             "--ready", "20", "--hub-pid", str(pid_file)], cwd=ROOT, env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=sigint_as_from_a_terminal)  # fmt: skip
    viewer = None
    try:
        assert proc.stdout.readline().strip() == "ready"
        viewer = connect(name)
        viewer.start()
        wait_for(lambda: viewer.latest() is not None and viewer.latest().step > 20, 30, "live steps")
        yield proc, int(pid_file.read_text()), viewer
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        if viewer is not None:
            viewer.stop()


def test_a_killed_trainer_tells_its_viewers_and_its_hub_process_ends(watch_dir, tmp_path):
    with _watched_script("killed", tmp_path) as (proc, hub_pid, viewer):
        proc.kill()
        proc.wait(10)
        wait_for(viewer.ended.is_set, 30, "the viewer told the run ended")
        last = viewer.latest()
        assert last.status == "error" and any(GONE in n.text for n in last.notices), last.notices
        wait_for(lambda: not living({hub_pid}), 10, "the hub process to exit")
        assert not (watch_dir / "killed.sock").exists()


def test_ctrl_c_in_the_terminal_reaches_the_trainer_not_the_hub_process(watch_dir, tmp_path):
    """The terminal sends SIGINT to its whole foreground process group; the hub process is in a session of its own,
    so it is still there to tell the viewers how the run ended."""
    with _watched_script("ctrlc", tmp_path) as (proc, hub_pid, viewer):
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(30)
        wait_for(viewer.ended.is_set, 30, "the viewer told the run ended")
        assert viewer.latest().status == "done"  # the `with` block closed the watch on the way out
        wait_for(lambda: not living({hub_pid}), 10, "the hub process to exit")


def test_where_no_process_can_start_the_hub_runs_in_a_thread(watch_dir, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(watch_dir / "no-such-python"))
    model, opt = _model()
    with vgtui.watch(model, opt, name="fallback", publish_every=0.01, quiet=True) as w:
        assert isinstance(w.hub, Hub)
        viewer = connect("fallback")
        viewer.start()
        train_steps(model, opt, w, 10)
        wait_for(lambda: viewer.latest() is not None and viewer.latest().step == 10, 30, "step 10 at the viewer")
    viewer.stop()


def test_a_record_file_that_cannot_be_written_is_one_line_and_the_training_goes_on(tmp_path, capfd):
    model, opt = _model()
    target = tmp_path / "missing" / "run.jsonl"
    w = vgtui.watch(model, opt, name="norecord", record=target, quiet=True)
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vgtui.watch: not watching (") and "run.jsonl" in lines[0]
    assert lines[0].endswith("your training goes on") and "Traceback" not in lines[0]
    train_steps(model, opt, w, 5)
    assert w.hooks.off and w.step == 0
    w.close()


def test_the_hub_option_names_what_it_allows():
    model, opt = _model()
    with pytest.raises(ValueError, match="allowed: 'process' .* or 'thread'"):
        vgtui.watch(model, opt, hub="fork")


def test_a_hub_process_that_dies_stops_the_watch_with_one_line_and_the_loop_goes_on(watch_dir, capfd):
    model, opt = _model()
    w = vgtui.watch(model, opt, name="dies", publish_every=0.01, quiet=True)
    train_steps(model, opt, w, 5)
    os.kill(w.hub.pid, signal.SIGKILL)
    wait_for(lambda: not w.hub.alive, 10, "the watch to see its hub process gone")
    before = [p.detach().clone() for p in model.parameters()]
    for _ in range(300):  # the next publish (due every 0.01 s) finds the hub gone
        train_steps(model, opt, w, 1)
        if w.hooks.off:
            break
        time.sleep(0.01)
    assert w.hooks.off
    train_steps(model, opt, w, 5)  # the user's loop goes on, and trains
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))
    w.close()
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("vgtui.watch: stopped watching"), lines
    assert "your training goes on" in lines[0] and "the vgtui hub process ended" in lines[0]
