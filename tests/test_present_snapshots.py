"""Snapshot tests of `vgtui present`: a lesson step asking the room its question (120x36), and the measured answer
beside the room's guess (80x24), on the deterministic FakeSession.

Update the baselines with `pytest tests/test_present_snapshots.py --snapshot-update` and look at the report.
"""

from __future__ import annotations

from pilot_helpers import settle
from test_present import Sessions, lesson

from vgtui.tui.app import PENDING_SHOWN
from vgtui.tui.present import PresentApp

try:
    from tui_fakes import fake_config
except ImportError:  # tests/ imported as a package
    from tests.tui_fakes import fake_config


def question_step() -> tuple[PresentApp, Sessions]:
    sessions = Sessions()
    return PresentApp(lesson(), sessions, refresh_hz=0.5, start=3, load_preset=fake_config), sessions


def test_present_asks_the_room_120x36(snap_compare):
    app, sessions = question_step()

    async def run_to_the_question(pilot) -> None:
        await pilot.pause()
        sessions.last.advance(300)
        await settle(pilot)

    assert snap_compare(app, terminal_size=(120, 36), run_before=run_to_the_question)


def test_present_shows_the_answer_beside_the_guess_80x24(snap_compare):
    app, sessions = question_step()

    async def guess_and_measure(pilot) -> None:
        await pilot.pause()
        sessions.last.advance(300)
        await settle(pilot)
        await pilot.press("1")
        sessions.last.advance(100)
        await settle(pilot)
        await pilot.pause(PENDING_SHOWN + 0.3)  # the status bar's '✓ … applied' note is gone: the same frame always
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=guess_and_measure)
