"""`vgtui attach TARGET --out FILE.jsonl` records the whole run a viewer can see: the backfill of the steps before it
joined, then every live step, each step exactly once, in the run-log format that `vgtui replay` (its checker,
vgtui/logcheck.py) and `vgtui plot` read; it ends when the watched run closes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn
from watch_helpers import (  # noqa: F401 - fixtures
    ROOT,
    SCRIPTS,
    child_env,
    one_torch_thread_fixture,
    spawn,
    train_steps,
    wait_for,
    watch_dir_fixture,
)

import vgtui
from vgtui.attach import list_watches
from vgtui.attach_record import RecordingSession, RunRecorder
from vgtui.cli import main
from vgtui.logreader import RunLogIndex, iter_records
from vgtui.replay import ReplaySession
from vgtui.runlog import RunLogWriter
from vgtui.watchdir import socket_path


def _step_lines(path) -> list[dict]:
    """Every record, checked as `vgtui replay` checks them; the step lines."""
    records = list(iter_records(path))
    assert records[0]["type"] == "meta"
    return [r for r in records if r["type"] == "step"]


def test_a_recorder_that_joins_late_logs_every_step_once_and_replay_reads_it(watch_dir, tmp_path):
    steps, heavy_every = 300, 5
    out = tmp_path / "late.jsonl"
    proc = spawn([str(SCRIPTS / "steady_train.py"), "--name", "late", "--steps", str(steps), "--hold", "250",
                  "--heavy-every", str(heavy_every)])  # fmt: skip
    recorder = None
    try:
        wait_for(lambda: socket_path("late").exists() or proc.poll() is not None, 90, "the watch socket")
        assert proc.poll() is None, proc.communicate()[1]
        wait_for(lambda: any(w.get("step", 0) >= 40 for w in list_watches()), 90, "40 steps before the recorder")
        recorder = subprocess.Popen([sys.executable, "-m", "vgtui.cli", "attach", "late", "--out", str(out)],
                                    cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)  # fmt: skip
        _, err = recorder.communicate(timeout=180)
        assert recorder.returncode == 0, err
        assert proc.wait(timeout=60) == 0
    finally:
        for p in (proc, recorder):
            if p is not None and p.poll() is None:
                p.kill()
    assert f"{steps} steps recorded" in err and "the run is done" in err
    lines = _step_lines(out)
    assert [r["step"] for r in lines] == list(range(1, steps + 1))  # the backfill, then live: no gap, no repeat
    assert lines[-1]["status"] == "done" and lines[0]["layers"] == ["[0]", "[2]", "[4]"]
    heavy = {r["step"] for r in lines if r["stats_step"] == r["step"]}
    assert set(range(heavy_every, steps + 1, heavy_every)) <= heavy  # every heavy step's statistics, before and after
    assert all(np.isfinite(r["weight_norm"]).all() for r in lines if r["step"] in heavy)
    assert all(np.isfinite(r["grad_norm"]).all() and r["loss"] is not None for r in lines)
    index = RunLogIndex(out)
    assert len(index) == steps and all(index.record(i)["step"] == i + 1 for i in range(steps))
    index.close()
    replay = ReplaySession(out)
    last = replay.snapshot(len(replay.steps) - 1)
    assert last.step == steps and last.status == "done" and replay.config.name == "late"
    assert main(["plot", str(out), "--width", "60", "--height", "20", "--color", "never"]) == 0


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("seed", range(3))
def test_a_resync_mid_run_repeats_no_step_and_the_end_says_done(watch_dir, tmp_path, seed):
    """A viewer that fell behind gets the whole backfill again: the recorder keeps each step once."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), 0.1)
    out = tmp_path / "resync.jsonl"
    writer = RunLogWriter(out)
    with vgtui.watch(model, opt, name="rs", quiet=True, publish_every=0.01, heavy_every=3, hub="thread") as w:
        train_steps(model, opt, w, 20)
        wait_for(lambda: w.hub.step == 20, 30, "the first 20 steps published")
        session = RecordingSession(w.target, read_only=True)
        recorder = RunRecorder(writer)
        session.on_frame = recorder.frame
        session.start()
        train_steps(model, opt, w, 20)
        wait_for(lambda: session.latest() is not None and session.latest().step == 40, 30, "step 40")
        viewer = next(iter(w.hub.viewers.values()))
        w.hub._loop.call_soon_threadsafe(w.hub._sync, viewer)  # as after dropped frames: the history again
        train_steps(model, opt, w, 20)
    wait_for(lambda: session.ended.is_set(), 30, "the end of the run")
    session.stop()
    recorder.flush()
    writer.close()
    lines = _step_lines(out)
    assert [r["step"] for r in lines] == list(range(1, 61))
    assert lines[-1]["status"] == "done" and recorder.records == 60


@pytest.mark.usefixtures("one_torch_thread")
def test_a_long_run_before_the_join_comes_thinned_evenly_then_every_live_step(watch_dir, tmp_path):
    """The README's promise: every step of a run up to 2,048 steps; a longer one thinned evenly to 2,048 lines."""
    from vgtui.watch.hub import RESYNC_ROWS

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))
    opt = torch.optim.SGD(model.parameters(), 0.05)
    before, after = RESYNC_ROWS + 500, 30
    out = tmp_path / "long.jsonl"
    writer = RunLogWriter(out)
    with vgtui.watch(model, opt, name="long", quiet=True, publish_every=0.05, heavy_every=50) as w:
        train_steps(model, opt, w, before)
        wait_for(lambda: w.hub.step == before, 60, "the steps before the join published")
        session = RecordingSession(w.target, read_only=True)
        recorder = RunRecorder(writer)
        session.on_frame = recorder.frame
        session.start()
        train_steps(model, opt, w, after)
    wait_for(lambda: session.ended.is_set(), 30, "the end of the run")
    session.stop()
    recorder.flush()
    writer.close()
    steps = [r["step"] for r in _step_lines(out)]
    assert steps == sorted(set(steps)) and steps[0] == 1
    assert len([s for s in steps if s <= before]) == RESYNC_ROWS
    assert steps[-after:] == list(range(before + 1, before + after + 1))
    gaps = np.diff([s for s in steps if s <= before])
    assert gaps.max() <= 2  # evenly: 2,548 steps in 2,048 lines
