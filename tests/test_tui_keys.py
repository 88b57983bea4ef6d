"""The dashboard's keys as a workshop uses them: a footer that always shows ? help and q quit, R and x, S saves a
screenshot and the charts' data, help opens from a cache and q quits from anywhere, replay has its own keys."""

from __future__ import annotations

import csv
import json
import threading

import pytest
from textual.widgets import Input
from textual.widgets._footer import FooterKey, FooterLabel

from vgtui.contract import NextEvent, Pause, Reset, Seek, SetSpeed, Toggle
from vgtui.replay import ReplaySession
from vgtui.tui.app import VgtuiApp
from vgtui.tui.charts import LossChart
from vgtui.tui.help import HelpScreen
from vgtui.tui.panels import StatusBar
from vgtui.tui.picker import ClipPrompt, PresetPicker

try:
    from tui_fakes import FakeSession, fake_config, write_recording
except ImportError:  # tests/ imported as a package
    from tests.tui_fakes import FakeSession, fake_config, write_recording

SIZES = [(80, 24), (100, 30), (120, 36), (160, 50)]


def make_app(steps: int = 50, **kw) -> tuple[VgtuiApp, FakeSession]:
    fake = FakeSession(fake_config())
    fake.advance(steps)
    return VgtuiApp(fake.config, lambda cfg: fake, refresh_hz=0.5, **kw), fake


def text_of(widget) -> str:
    return "\n".join(line.text for line in widget.render_lines(widget.region.reset_offset))


def footer_keys(app: VgtuiApp) -> dict[str, str]:
    """The footer entries of the screen on top that are on screen: description -> key ('group' for the word of
    a group of keys, e.g. '+- speed')."""
    width, height = app.size

    def visible(w) -> bool:
        r = w.region
        return bool(w.display and r.width and r.x >= 0 and r.right <= width and r.y == height - 1)

    out = {key.description: key.key_display for key in app.screen.query(FooterKey) if visible(key) and key.description}
    out.update({str(label.render()): "group" for label in app.screen.query(FooterLabel) if visible(label)})
    return out


@pytest.mark.asyncio
@pytest.mark.parametrize("size", SIZES)
async def test_footer_always_shows_help_and_quit(size):
    app, _ = make_app()
    async with app.run_test(size=size) as pilot:
        for _ in range(50):  # a loaded box may need more than one refresh to lay the footer out
            await pilot.pause(0.1)
            keys = footer_keys(app)
            if "help" in keys and "pause" in keys:
                break
        assert keys.get("help") == "?" and keys.get("quit") == "q", keys
        assert "pause" in keys and "act" in keys  # then the most used keys, as many as fit
        assert "seek" not in keys and "play/pause" not in keys  # replay keys only in a replay


@pytest.mark.asyncio
async def test_picker_help_and_prompt_show_their_own_keys_and_q_quits_from_each():
    for opener in ("p", "question_mark", "C"):
        app, fake = make_app()
        app.presets_loader = lambda: [fake_config()]
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press(opener)
            await pilot.pause()
            assert isinstance(app.screen, (PresetPicker, HelpScreen, ClipPrompt))
            keys = footer_keys(app)
            assert keys.get("quit") == "q" and not {"act", "BN", "pause"} & set(keys), (opener, keys)
            await pilot.press("q")
            await pilot.pause()
        assert app.return_code == 0 and fake.stopped, opener


@pytest.mark.asyncio
async def test_help_is_built_once_and_escape_question_mark_f1_close_it():
    app, _ = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        seen = []
        for key in ("escape", "question_mark", "f1"):
            await pilot.press("f1")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            seen.append(app.screen)
            assert not app.screen.query("Markdown")  # pre-rendered text, not a widget per block
            await pilot.press(key)
            await pilot.pause()
            assert not isinstance(app.screen, HelpScreen), key
        assert seen[0] is seen[1] is seen[2]  # the same screen, shown again


@pytest.mark.asyncio
async def test_capital_r_restores_the_presets_settings_with_fresh_weights():
    made: list[FakeSession] = []

    def factory(cfg):
        made.append(FakeSession(cfg))
        made[-1].advance(20)
        return made[-1]

    original = fake_config()
    app = VgtuiApp(original, factory, refresh_hz=0.5)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.press("a", "b", "plus")
        assert made[0].model.activation == "tanh" and made[0].model.batchnorm and made[0].model.lr == 0.2
        await pilot.press("r")  # fresh weights, the settings kept: the same session
        assert made[0].commands[-1] == Reset() and len(made) == 1
        await pilot.press("R")
        await pilot.pause()
        assert len(made) == 2 and made[0].stopped and made[1].config is original
        assert (made[1].model.activation, made[1].model.batchnorm, made[1].model.lr) == ("sigmoid", False, 0.1)
        assert "sigmoid" in text_of(app.query_one(StatusBar))


@pytest.mark.asyncio
async def test_x_clears_the_time_window_and_capital_x_shows_the_whole_run():
    app, fake = make_app(steps=100)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        await pilot.press("a")  # tanh @ 100
        fake.advance(100)
        app.poll()
        assert "tanh @ 100" in app.query_one(LossChart).markers
        await pilot.press("x")  # from step 200 on
        await pilot.press("a")  # relu @ 200
        fake.advance(50)
        app.poll()
        await pilot.pause()
        chart = app.query_one(LossChart)
        assert app.since_step == 200 and app._view is not None and app._view.steps.min() >= 200
        assert chart.markers == ["relu @ 200"] and "since step 200" in str(chart.border_title)
        assert "relu @ 200" in chart.rendered_text()  # a marker inside the window keeps its label
        await pilot.press("X")
        app.poll()
        assert app.since_step is None and chart.markers == ["tanh @ 100", "relu @ 200"]


@pytest.mark.asyncio
async def test_capital_s_saves_a_screenshot_and_the_charts_data_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app, fake = make_app(steps=30)
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        await pilot.pause()
        await pilot.press("S")
        await pilot.pause()
        svgs, csvs = list(tmp_path.glob("*.svg")), list(tmp_path.glob("*.csv"))
        assert len(svgs) == 1 and len(csvs) == 1
        toast = " ".join(text_of(t) for t in app.screen.query("Toast"))
        assert svgs[0].name in toast and csvs[0].name in toast
        rows = list(csv.reader(csvs[0].open()))
        header = rows[0]
        assert header[:3] == ["step", "loss", "acc"]
        for column in ("grad_norm_L1", "grad_norm_L20", "mean_abs_w_L1", "update_ratio_L20"):
            assert column in header
        assert [int(r[0]) for r in rows[1:]] == list(range(1, 31))
        assert float(rows[-1][1]) == pytest.approx(fake.loss, rel=1e-6)
        # the palette's Screenshot goes to the working directory too, not ~/Downloads
        app.deliver_screenshot(filename="palette.svg")
        for _ in range(50):
            if (tmp_path / "palette.svg").exists():
                break
            await pilot.pause(0.05)
        assert (tmp_path / "palette.svg").exists()

        def delivering() -> bool:  # Textual's delivery thread, still to report back to the app (not a daemon)
            return any(t.name.endswith("(save_file_thread)") and t.is_alive() for t in threading.enumerate())

        for _ in range(200):  # if the app ended first, that thread would wait forever and pytest would never exit
            if not delivering():
                break
            await pilot.pause(0.05)
        assert not delivering()


def test_the_csv_leaves_unmeasured_values_empty():
    from vgtui.tui.data import view_csv

    fake = FakeSession(fake_config(depth=3))
    fake.advance(2)
    fake.history.append(3, {"loss": float("nan"), "acc": 0.5}, {"grad_norm": [1.0, float("nan"), 2.0]})
    rows = list(csv.reader(view_csv(fake.history.view()).splitlines()))
    last = dict(zip(rows[0], rows[-1], strict=True))
    assert last["loss"] == "" and last["grad_norm_L2"] == "" and last["mean_abs_w_L1"] == "" and last["acc"] == "0.5"


@pytest.mark.asyncio
async def test_replay_has_its_own_footer_keys_and_status(tmp_path):
    replay = ReplaySession(write_recording(tmp_path / "lesson.jsonl"))
    replay.handle(Pause())  # paused at the start; the keys are handled at once (not through the player thread)
    sent = []
    replay.send = lambda command: (sent.append(command), replay.handle(command))  # type: ignore[method-assign]
    app = VgtuiApp(replay.config, lambda cfg: replay, refresh_hz=0.5)
    async with app.run_test(size=(120, 36)) as pilot:
        for _ in range(50):  # a loaded box may need more than one refresh to lay the footer out
            await pilot.pause(0.1)
            keys = footer_keys(app)
            if "play/pause" in keys:
                break
        assert app.replaying
        for word in ("help", "quit", "play/pause", "seek", "speed", "next toggle", "restart"):
            assert word in keys, (word, keys)
        assert not {"act", "BN", "reset", "step", "presets"} & set(keys)
        await pilot.press("a", "b")  # toggles mean nothing in a recording: nothing is sent
        assert sent == []
        await pilot.press("right", "plus", "n", "left", "minus", "r")
        assert sent == [Seek(1), SetSpeed(2.0), NextEvent(), Seek(-1), SetSpeed(0.5), Reset()]
        await pilot.press("right", "right", "plus")
        app.poll()
        status = text_of(app.query_one(StatusBar))
        assert "record 3/40 · x2" in status and "lesson.jsonl" in status and "steps/s" not in status
        assert "loss" in status


def test_a_recording_says_it_is_one(tmp_path):
    replay = ReplaySession(write_recording(tmp_path / "r.jsonl", steps=5))
    info = replay.latest().extra["replay"]
    assert replay.kind == "replay" and info == {"file": "r.jsonl", "speed": 1.0, "record": 1, "records": 5}
    assert json.loads((tmp_path / "r.jsonl").read_text().splitlines()[0])["type"] == "meta"


@pytest.mark.asyncio
async def test_clip_prompt_still_takes_numbers():
    app, fake = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("C")
        await pilot.pause()
        app.screen.query_one(Input).value = ""
        await pilot.press("0", "full_stop", "5", "enter")
        await pilot.pause()
        assert fake.commands == [Toggle("clip", "0.5")]
