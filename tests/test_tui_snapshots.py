"""Snapshot tests of the dashboard at several terminal sizes, fed by the deterministic FakeSession.

Update the baselines with `pytest tests/test_tui_snapshots.py --snapshot-update` and look at the report.
"""

from __future__ import annotations

from dataclasses import replace

from vgtui.contract import Pause, Seek, Toggle
from vgtui.replay import ReplaySession
from vgtui.tui.app import VgtuiApp

try:
    from tui_fakes import FakeSession, fake_config, write_recording
except ImportError:  # tests/ imported as a package
    from tests.tui_fakes import FakeSession, fake_config, write_recording


RELU = Toggle("activation", "relu")


def scene(kind: str = "mlp", toggle: Toggle | None = RELU, theme: str | None = None) -> VgtuiApp:
    """200 sigmoid steps, a toggle, 150 more steps: a marker, a plateau, then learning."""
    fake = FakeSession(fake_config("rnn-long" if kind == "rnn" else "deep-sigmoid", kind=kind))
    fake.advance(200)
    if toggle is not None:
        fake.send(toggle)
    fake.advance(150)
    # A slow timer: nothing changes between polls, so every frame is the same.
    return VgtuiApp(fake.config, lambda cfg: fake, refresh_hz=0.5, theme=theme)


async def settle(pilot) -> None:
    await pilot.pause()
    pilot.app.poll()
    await pilot.pause()


def test_dashboard_80x24(snap_compare):
    assert snap_compare(scene(), terminal_size=(80, 24), run_before=settle)


def test_dashboard_160x50(snap_compare):
    assert snap_compare(scene(), terminal_size=(160, 50), run_before=settle)


def test_dashboard_vanishing_200x60(snap_compare):
    assert snap_compare(scene(toggle=None), terminal_size=(200, 60), run_before=settle)


def test_dashboard_rnn_160x50(snap_compare):
    assert snap_compare(scene("rnn", Toggle("cell", "lstm")), terminal_size=(160, 50), run_before=settle)


def test_too_small_40x12(snap_compare):
    assert snap_compare(scene(), terminal_size=(40, 12), run_before=settle)


def test_help_screen_80x24(snap_compare):
    async def open_help(pilot) -> None:
        await settle(pilot)
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(scene(), terminal_size=(80, 24), run_before=open_help)


def test_dashboard_120x36(snap_compare):
    assert snap_compare(scene(), terminal_size=(120, 36), run_before=settle)


def test_dashboard_light_theme_120x36(snap_compare):
    assert snap_compare(scene(theme="light"), terminal_size=(120, 36), run_before=settle)


def test_dashboard_rnn_80x24(snap_compare):
    assert snap_compare(scene("rnn", Toggle("cell", "lstm")), terminal_size=(80, 24), run_before=settle)


def test_picker_80x24(snap_compare):
    presets = [fake_config("deep-sigmoid"), fake_config("rnn-long", kind="rnn")]
    long = "A description long enough to scroll: " + " ".join(["each layer multiplies the gradient."] * 20)
    presets[0] = replace(presets[0], description=long, suggest=("activation=relu", "init=he"))

    async def shown(pilot) -> None:  # the highlighted preset's description and Try line have arrived
        for _ in range(50):
            await pilot.pause()
            tries = pilot.app.screen.query("#picker-try")
            if tries and str(tries.first().render()).startswith("Try"):
                break
        await pilot.pause()

    app = VgtuiApp(None, FakeSession, presets=lambda: presets, refresh_hz=0.5)
    assert snap_compare(app, terminal_size=(80, 24), run_before=shown)


def test_replay_120x36(snap_compare, tmp_path):
    replay = ReplaySession(write_recording(tmp_path / "lesson.jsonl"))
    replay.handle(Pause())
    replay.handle(Seek(29))  # record 30 of 40, after the recorded relu toggle
    assert snap_compare(VgtuiApp(replay.config, lambda cfg: replay, refresh_hz=0.5), terminal_size=(120, 36),
                        run_before=settle)  # fmt: skip
