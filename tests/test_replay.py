"""Record and replay: `vgtui launch --record` and `vgtui run --out` logs play back in the dashboard."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from vgtui.cli import main
from vgtui.contract import NextEvent, Pause, Reset, Seek, SetSpeed, Step, Toggle
from vgtui.replay import ReplaySession
from vgtui.runlog import read_runlog
from vgtui.tui.app import VgtuiApp
from vgtui.tui.charts import LossChart

SMALL = ["--set", "model.depth=6", "--set", "model.width=16", "--set", "train.log_every=5"]


@pytest.fixture(scope="module")
def run_log(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("replay") / "run.jsonl"
    code = main(["run", "deep-sigmoid", *SMALL, "--steps", "200", "--toggle", "100:activation=relu",
                 "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    return out


def test_replay_reproduces_the_recorded_snapshots(run_log: Path):
    r = ReplaySession(run_log)
    steps = [rec for rec in read_runlog(run_log) if rec["type"] == "step"]
    r.handle(Pause())
    assert r.latest().step == steps[0]["step"]
    r.handle(Step(10))
    snap, rec = r.latest(), steps[10]
    assert snap.step == rec["step"] and snap.loss == rec["loss"]
    assert list(snap.grad_norm) == rec["grad_norm"]
    assert snap.model.activation == rec["model_state"]["activation"]
    assert len(r.history) == 11


def test_next_toggle_seek_speed_and_reset(run_log: Path):
    r = ReplaySession(run_log)
    r.handle(Pause())
    r.handle(NextEvent())
    snap = r.latest()
    assert snap.step > 100 and snap.model.activation == "relu"
    assert [e.label for e in snap.events] == ["relu @ 100"]
    n = len(r.history)
    r.handle(Seek(-5))
    assert r.latest().step < snap.step and len(r.history) == n - 5  # going back rebuilds the history
    r.handle(SetSpeed(100))
    assert r.speed == 8.0
    r.handle(Reset())
    assert r.pos == 0 and r.latest().events == ()
    r.handle(Toggle("activation", "tanh"))
    assert "cannot be changed" in r.latest().notices[-1].text


def test_playback_runs_to_the_end_and_stops(run_log: Path):
    r = ReplaySession(run_log, speed=8).start()
    try:
        for _ in range(200):
            if r.latest().status == "done":
                break
            asyncio.run(asyncio.sleep(0.02))
        assert r.latest().status == "done" and r.pos == len(r.steps) - 1
    finally:
        r.stop()
    assert not r.alive


@pytest.mark.parametrize(
    "content, fragment",
    [(None, "cannot read"), ("not json\n{}\n", "not a vgtui run log"), ('{"type":"step"}\n', "meta")],
)
def test_bad_logs_exit_2_with_one_line(tmp_path: Path, capsys, content, fragment):
    path = tmp_path / "bad.jsonl"
    if content is not None:
        path.write_text(content)
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and len(err.splitlines()) == 1


@pytest.mark.asyncio
async def test_dashboard_replays_with_keys(run_log: Path):
    r = ReplaySession(run_log)
    app = VgtuiApp(r.config, lambda cfg: r, refresh_hz=10)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("space")  # pause
        await pilot.press("r")  # back to the start
        await pilot.pause()
        await asyncio.sleep(0.2)
        start = r.pos
        await pilot.press("full_stop")
        await asyncio.sleep(0.2)
        assert r.pos == start + 1
        await pilot.press("t")  # jump to the recorded toggle: the marker is drawn
        for _ in range(40):
            app.poll()
            await pilot.pause()
            if "relu @ 100" in app.query_one(LossChart).markers:
                break
            await asyncio.sleep(0.05)
        assert "relu @ 100" in app.query_one(LossChart).markers
        await pilot.press("q")
    assert not r.alive


@pytest.mark.asyncio
async def test_a_recorded_dashboard_session_replays(tmp_path: Path):
    from vgtui.config import apply_sets
    from vgtui.engine.session import Session
    from vgtui.presets import resolve

    log = tmp_path / "rec.jsonl"
    sessions = []

    def factory(cfg):
        sessions.append(Session(cfg, device="cpu", record=str(log)))
        return sessions[-1]

    cfg = apply_sets(resolve("deep-sigmoid"), ["model.depth=6", "model.width=16", "train.log_every=5"])
    app = VgtuiApp(cfg, factory, refresh_hz=10)
    async with app.run_test(size=(120, 36)) as pilot:
        while sessions[0].latest() is None or sessions[0].latest().step < 50:
            await asyncio.sleep(0.02)
        await pilot.press("a")
        while sessions[0].latest().model.activation != "tanh":
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        await pilot.press("q")
    lines = log.read_text().splitlines()
    for line in lines:
        json.loads(line)
    assert any('"type":"event"' in line and "tanh" in line for line in lines)
    r = ReplaySession(log)
    r.handle(NextEvent())
    assert r.latest().model.activation == "tanh"
