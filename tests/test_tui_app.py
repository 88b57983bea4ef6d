"""Pilot tests of the dashboard, driven by the deterministic FakeSession (no thread, no torch)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from textual.widgets import Input, Label

from vgtui.contract import Pause, Reset, Resume, SelectLayer, Step, Toggle
from vgtui.tui.app import VgtuiApp
from vgtui.tui.charts import Chart, LossChart
from vgtui.tui.help import HelpScreen
from vgtui.tui.panels import DiagnosisPanel, StatusBar
from vgtui.tui.picker import ClipPrompt, PresetPicker

try:
    from tui_fakes import FakeSession, fake_config
except ImportError:  # tests/ imported as a package
    from tests.tui_fakes import FakeSession, fake_config


def make_app(steps: int = 50, kind: str = "mlp", refresh_hz: float = 1.0) -> tuple[VgtuiApp, FakeSession]:
    fake = FakeSession(fake_config(kind=kind))
    fake.advance(steps)
    return VgtuiApp(fake.config, lambda cfg: fake, refresh_hz=refresh_hz), fake


def text_of(widget) -> str:
    """The plain text a Static-like widget shows now."""
    return "\n".join(line.text for line in widget.render_lines(widget.region.reset_offset))


def status(app: VgtuiApp) -> str:
    return text_of(app.query_one(StatusBar))


@pytest.mark.asyncio
async def test_toggle_sends_command_updates_status_and_draws_marker():
    app, fake = make_app(steps=50)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        assert fake.started
        assert "sigmoid" in status(app)
        await pilot.press("a")
        assert fake.commands == [Toggle("activation", "tanh")]
        fake.advance(10)
        app.poll()
        await pilot.pause()
        assert "tanh" in status(app) and "step 60" in status(app)
        assert "tanh @ 50" in app.query_one(LossChart).markers
        assert "tanh @ 50" in app.query_one("#grad-history", Chart).markers
        # The next press walks on from the new model, and the optimistic state prevents a repeat.
        await pilot.press("a", "a")
        assert fake.commands[-2:] == [Toggle("activation", "relu"), Toggle("activation", "leaky_relu")]


@pytest.mark.asyncio
async def test_every_toggle_key_sends_the_value_from_the_model():
    app, fake = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        for key in ("i", "b", "s", "c", "plus", "minus", "left_square_bracket", "right_square_bracket"):
            await pilot.press(key)
            app.poll()
        assert fake.commands == [
            Toggle("init", "xavier"),
            Toggle("batchnorm", "on"),
            Toggle("skip", "on"),
            Toggle("clip", "1"),
            Toggle("lr", "0.2"),
            Toggle("lr", "0.1"),
            Toggle("depth", "19"),
            Toggle("depth", "20"),
        ]
        await pilot.press("c")  # clip is on now: the key turns it off
        assert fake.commands[-1] == Toggle("clip", "off")


@pytest.mark.asyncio
async def test_space_pauses_and_resumes_n_steps_r_resets():
    app, fake = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        await pilot.press("space")
        assert fake.commands == [Pause()]
        app.poll()
        await pilot.pause()
        assert "paused" in status(app)
        await pilot.press("space")
        assert fake.commands[-1] == Resume()
        await pilot.press("n")
        assert fake.commands[-1] == Step(1)
        app.poll()
        assert "step 51" in status(app)
        await pilot.press("r")
        assert fake.commands[-1] == Reset()


@pytest.mark.asyncio
async def test_q_stops_the_session_promptly():
    app, fake = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        t0 = time.perf_counter()
        await pilot.press("q")
        assert fake.stopped
        assert time.perf_counter() - t0 < 1.0
    assert app.return_code == 0
    assert fake.stop_calls == 1  # on_unmount does not stop it twice


@pytest.mark.asyncio
async def test_refused_toggle_notice_is_shown():
    app, fake = make_app()
    async with app.run_test(size=(160, 50), notifications=True) as pilot:
        await pilot.pause()
        await pilot.press("l")  # cell on an MLP: the engine refuses with a Notice
        assert fake.commands == [Toggle("cell", "lstm")]
        app.poll()
        await pilot.pause()
        assert app.notices_shown == ["cell applies only to RNN presets; this one is mlp"]
        toasts = [text_of(t) for t in app.screen.query("Toast")]
        assert any("RNN presets" in t for t in toasts)
        app.poll()  # shown once, not on every poll
        assert len(app.notices_shown) == 1


@pytest.mark.asyncio
async def test_clip_prompt_rejects_bad_value_and_accepts_good():
    app, fake = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        await pilot.press("C")
        await pilot.pause()
        assert isinstance(app.screen, ClipPrompt)
        app.screen.query_one(Input).value = "abc"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ClipPrompt)
        assert "not a number" in str(app.screen.query_one("#clip-error", Label).render())
        assert fake.commands == []
        app.screen.query_one(Input).value = "0.5"
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, ClipPrompt)
        assert fake.commands == [Toggle("clip", "0.5")]


@pytest.mark.asyncio
async def test_error_and_divergence_are_shown_not_a_dead_screen():
    app, fake = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        fake.fail("RuntimeError: boom in the worker")
        app.poll()
        await pilot.pause()
        assert "error" in status(app)
        assert "boom in the worker" in text_of(app.query_one(DiagnosisPanel))
        fake.diverge()
        app.poll()
        await pilot.pause()
        assert "diverged" in status(app)
        assert "diverged" in text_of(app.query_one(DiagnosisPanel))


@pytest.mark.asyncio
async def test_factory_failure_is_shown():
    def broken(cfg):
        raise RuntimeError("no device")

    app = VgtuiApp(fake_config(), broken)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "no device" in text_of(app.query_one(DiagnosisPanel))


@pytest.mark.asyncio
async def test_no_config_opens_picker_and_switching_stops_the_old_session():
    made: list[FakeSession] = []

    def factory(cfg):
        fake = FakeSession(cfg)
        fake.advance(5)
        made.append(fake)
        return fake

    presets = [fake_config("deep-sigmoid"), fake_config("rnn-long", kind="rnn")]
    app = VgtuiApp(None, factory, presets=lambda: presets)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, PresetPicker)
        await pilot.press("enter")
        await pilot.pause()
        assert [f.config.name for f in made] == ["deep-sigmoid"] and made[0].started
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, PresetPicker)
        await pilot.press("down", "enter")
        await pilot.pause()
        assert [f.config.name for f in made] == ["deep-sigmoid", "rnn-long"]
        assert made[0].stopped and not made[1].stopped
        assert "rnn-long" in status(app)
        assert app.query_one("#time-grad").display and app.query_one("#root").has_class("-rnn")


@pytest.mark.asyncio
async def test_picker_cancel_without_a_run_quits():
    app = VgtuiApp(None, FakeSession, presets=lambda: [fake_config()])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_code == 0


@pytest.mark.asyncio
async def test_help_opens_on_question_mark_and_f1():
    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        for key in ("question_mark", "f1"):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, HelpScreen)


@pytest.mark.asyncio
async def test_layer_selection_asks_for_its_histogram():
    app, fake = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        await pilot.press("k", "k", "j")
        assert app.selected == 1
        assert fake.commands == [SelectLayer(2), SelectLayer(3), SelectLayer(2)]
        await pilot.press("j", "j")
        assert app.selected == 0


@pytest.mark.asyncio
async def test_command_palette_lists_the_actions():
    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert any(t.startswith("Cycle the activation") for t in titles)
        assert any("clipping threshold" in t for t in titles)


@pytest.mark.asyncio
async def test_sizes_switch_layout_classes():
    app, _ = make_app()
    async with app.run_test(size=(40, 12)) as pilot:
        await pilot.pause()
        root = app.query_one("#root")
        assert root.has_class("-tiny")
        assert "too small" in text_of(app.query_one("#too-small"))
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert root.has_class("-compact") and not root.has_class("-tiny")
        assert not app.query_one("#row-mid").display
        await pilot.resize_terminal(160, 50)
        await pilot.pause()
        assert not root.has_class("-compact")


@pytest.mark.asyncio
async def test_unchanged_data_is_not_redrawn(monkeypatch):
    app, fake = make_app()
    calls: list[str] = []
    original = Chart.begin

    def counting(self, title):
        calls.append(self.id)
        original(self, title)

    monkeypatch.setattr(Chart, "begin", counting)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        app.poll()
        calls.clear()
        app.poll()
        assert calls == []
        fake.advance(1)
        app.poll()  # one tick redraws every chart whose data changed, each once
        assert sorted(calls) == sorted(["loss", "grad-history", "weights", "update-ratio", "grad-bars", "histogram"])
        calls.clear()
        app.poll()
        assert calls == []


@pytest.mark.asyncio
async def test_extreme_values_do_not_break_the_charts():
    app, fake = make_app(steps=5)
    for k in range(5):
        n = fake.model.depth
        layers = {name: np.full(n, 1e-30) for name in ("grad_norm", "update_ratio", "gain", "gain_product")}
        layers["grad_norm"][-1] = 1e3
        fake.history.append(100 + k, {"loss": float("inf") if k == 2 else 1e6, "acc": float("nan")}, layers)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        app.poll()
        await pilot.pause()
        for chart in app.query(Chart):
            if chart.display:
                assert "could not be drawn" not in chart.rendered_text()
