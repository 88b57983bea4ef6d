"""Snapshot tests of the dashboard at several terminal sizes, fed by the deterministic FakeSession.

Update the baselines with `pytest tests/test_tui_snapshots.py --snapshot-update` and look at the report.
"""

from __future__ import annotations

from vgtui.contract import Toggle
from vgtui.tui.app import VgtuiApp

try:
    from tui_fakes import FakeSession, fake_config
except ImportError:  # tests/ imported as a package
    from tests.tui_fakes import FakeSession, fake_config


RELU = Toggle("activation", "relu")


def scene(kind: str = "mlp", toggle: Toggle | None = RELU) -> VgtuiApp:
    """200 sigmoid steps, a toggle, 150 more steps: a marker, a plateau, then learning."""
    fake = FakeSession(fake_config("rnn-long" if kind == "rnn" else "deep-sigmoid", kind=kind))
    fake.advance(200)
    if toggle is not None:
        fake.send(toggle)
    fake.advance(150)
    # A slow timer: nothing changes between polls, so every frame is the same.
    return VgtuiApp(fake.config, lambda cfg: fake, refresh_hz=0.5)


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
