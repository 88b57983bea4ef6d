"""The dashboard driving the real engine: a keypress really changes the model, pause really stops it,
quit really joins the worker thread."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from pilot_helpers import small_config, until

from vgtui.engine.session import Session
from vgtui.presets import resolve
from vgtui.tui.app import VgtuiApp
from vgtui.tui.charts import LossChart
from vgtui.tui.panels import StatusBar


def status_text(app: VgtuiApp) -> str:
    bar = app.query_one(StatusBar)
    return "\n".join(line.text for line in bar.render_lines(bar.region.reset_offset))


@pytest.mark.asyncio
async def test_keys_change_the_real_model_and_quit_joins_the_worker():
    sessions: list[Session] = []

    def factory(cfg):
        sessions.append(Session(cfg, device="cpu"))
        return sessions[-1]

    app = VgtuiApp(small_config(), factory, refresh_hz=10)
    async with app.run_test(size=(160, 50)) as pilot:
        assert await until(lambda: (s := sessions[0].latest()) is not None and s.step > 20, pilot)
        trainer = sessions[0].trainer
        await pilot.press("a")  # sigmoid -> tanh
        assert await until(lambda: trainer.model.activation == "tanh", pilot)
        await pilot.press("b")
        assert await until(lambda: trainer.model.blocks[0].bn is not None, pilot)
        bn = trainer.model.blocks[0].bn.weight
        assert any(p is bn for p in trainer.optimizer_params())
        assert await until(lambda: "tanh" in status_text(app) and "BN on" in status_text(app), pilot)
        assert "cpu" in status_text(app)  # the device the model runs on
        assert await until(lambda: any(m.startswith("tanh @ ") for m in app.query_one(LossChart).markers), pilot)

        await pilot.press("space")
        assert await until(lambda: sessions[0].latest().status == "paused", pilot)
        step = sessions[0].latest().step
        await asyncio.sleep(0.4)
        assert sessions[0].latest().step == step
        await pilot.press("n")
        assert await until(lambda: sessions[0].latest().step == step + 1, pilot)

        t0 = time.monotonic()
        await pilot.press("q")
    assert time.monotonic() - t0 < 1.5
    assert not sessions[0].alive
    assert not [t for t in threading.enumerate() if t.name == "vgtui-worker"]


@pytest.mark.asyncio
async def test_divergence_in_the_dashboard_recovers_with_clip_and_reset():
    sessions: list[Session] = []

    def factory(cfg):
        sessions.append(Session(cfg, device="cpu"))
        return sessions[-1]

    app = VgtuiApp(resolve("exploding"), factory, refresh_hz=10)
    async with app.run_test(size=(120, 36)) as pilot:
        assert await until(lambda: (s := sessions[0].latest()) is not None and s.status == "diverged", pilot)
        assert await until(lambda: "diverged" in status_text(app), pilot)
        await pilot.press("c")  # clipping on (1.0)
        assert await until(lambda: sessions[0].latest().model.clip == 1.0, pilot)
        await pilot.press("r")
        assert await until(lambda: sessions[0].latest().status == "running", pilot)
        step = sessions[0].latest().step
        assert await until(lambda: sessions[0].latest().step > step + 100, pilot, timeout=30)
        snap = sessions[0].latest()
        assert snap.status == "running" and snap.loss == snap.loss  # finite, not NaN
        await pilot.press("q")
    assert not sessions[0].alive


@pytest.mark.asyncio
@pytest.mark.parametrize("worker", ["thread", "process"])
@pytest.mark.parametrize("moment", ["training", "paused", "reset"])
async def test_quit_joins_the_worker_quickly(worker, moment):
    from vgtui.engine.process import ProcessSession

    sessions: list = []

    def factory(cfg):
        cls = Session if worker == "thread" else ProcessSession
        sessions.append(cls(cfg, device="cpu"))
        return sessions[-1]

    app = VgtuiApp(small_config(), factory, refresh_hz=10)
    async with app.run_test(size=(120, 36)) as pilot:
        assert await until(lambda: (s := sessions[0].latest()) is not None and s.step > 10, pilot, timeout=60)
        if moment == "paused":
            await pilot.press("space")
            assert await until(lambda: sessions[0].latest().status == "paused", pilot)
        elif moment == "reset":
            await pilot.press("r")  # quit while the reset is being applied
        t0 = time.monotonic()
        await pilot.press("q")
    assert time.monotonic() - t0 < 1.0
    assert not sessions[0].alive
    assert not [t for t in threading.enumerate() if t.name in ("vgtui-worker", "vgtui-reader") and t.is_alive()]


@pytest.mark.asyncio
async def test_worker_fault_is_shown_and_reset_keeps_the_dashboard_usable(monkeypatch):
    from vgtui.engine.trainer import Trainer
    from vgtui.tui.panels import DiagnosisPanel

    original = Trainer.train_step
    calls = {"n": 0}

    def flaky(self):
        calls["n"] += 1
        if calls["n"] == 30:
            raise RuntimeError("injected fault")
        return original(self)

    monkeypatch.setattr(Trainer, "train_step", flaky)
    sessions: list[Session] = []

    def factory(cfg):
        sessions.append(Session(cfg, device="cpu"))
        return sessions[-1]

    app = VgtuiApp(small_config(), factory, refresh_hz=10)
    async with app.run_test(size=(120, 36)) as pilot:
        assert await until(lambda: (s := sessions[0].latest()) is not None and s.status == "error", pilot)
        assert await until(lambda: "error" in status_text(app), pilot)
        panel = app.query_one(DiagnosisPanel)
        shown = "\n".join(line.text for line in panel.render_lines(panel.region.reset_offset))
        assert "injected fault" in shown
        await pilot.press("r")
        assert await until(lambda: sessions[0].latest().status == "running" and sessions[0].latest().step > 40, pilot)
        await pilot.press("q")
    assert not sessions[0].alive
