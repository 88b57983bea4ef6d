"""`vgtui present`, driven by Pilot on the deterministic FakeSession (no torch, no thread): n / p move between the
lesson's steps, a question pauses the run for the room's guess, the guess presses the step's keys, and the
measured answer appears beside the guess. Every other dashboard key still works."""

from __future__ import annotations

from vgtui.contract import Pause, Resume, Toggle
from vgtui.lesson import Lesson, parse_lesson
from vgtui.tui.narration import NarrationPanel
from vgtui.tui.present import PresentApp

try:
    from tui_fakes import FakeSession, fake_config
except ImportError:  # tests/ imported as a package
    from tests.tui_fakes import FakeSession, fake_config

LESSON = """
title = "a test lesson"
[[step]]
title = "The problem"
preset = "deep-sigmoid"
text = "The loss sits at chance."
[[step]]
title = "The signs"
preset = "deep-sigmoid"
continue = true
text = "The bars fall by ten decades."
[[step]]
title = "Leaky ReLU and He"
preset = "deep-sigmoid"
keys = "aaaii"
at = 300
text = "a three times, i twice."
[step.question]
ask = "What will layer 1's gradient do?"
measure = "grad1"
after = 100
answer = "up"
[[step]]
title = "Clipping"
preset = "exploding"
keys = "c"
at = 20
text = "c turns clipping on."
"""


def lesson() -> Lesson:
    return parse_lesson(LESSON, "test.toml")


class Sessions:
    """The session factory: a FakeSession per preset loaded, all kept for the asserts."""

    def __init__(self) -> None:
        self.made: list[FakeSession] = []

    def __call__(self, config) -> FakeSession:
        self.made.append(FakeSession(config))
        return self.made[-1]

    @property
    def last(self) -> FakeSession:
        return self.made[-1]


def make_app(start: int = 1) -> tuple[PresentApp, Sessions]:
    sessions = Sessions()
    app = PresentApp(lesson(), sessions, refresh_hz=0.5, start=start, load_preset=fake_config)
    return app, sessions


def panel(app: PresentApp) -> str:
    widget = app.query_one(NarrationPanel)
    return "\n".join(line.text for line in widget.render_lines(widget.region.reset_offset))


async def tick(app: PresentApp, pilot) -> None:
    app.poll()
    await pilot.pause()


async def test_n_and_p_move_between_steps_each_loading_its_preset():
    app, sessions = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert "1/4" in panel(app) and "The loss sits at chance." in panel(app)
        assert [s.config.name for s in sessions.made] == ["deep-sigmoid"]
        await pilot.press("n")  # "continue = true": the same run goes on
        assert "2/4" in panel(app) and "The bars fall by ten decades." in panel(app)
        assert len(sessions.made) == 1 and not sessions.last.stopped
        await pilot.press("n", "n")  # a fresh run of each step's preset; the one before is stopped
        assert "4/4" in panel(app) and "Clipping" in panel(app)
        assert [s.config.name for s in sessions.made] == ["deep-sigmoid", "deep-sigmoid", "exploding"]
        assert all(s.stopped for s in sessions.made[:-1]) and app.config.name == "exploding"
        await pilot.press("n")  # past the end: a note, nothing else
        assert "4/4" in panel(app) and len(sessions.made) == 3
        await pilot.press("p")
        assert "3/4" in panel(app) and sessions.last.config.name == "deep-sigmoid"
        assert app.original_config.name == "deep-sigmoid"  # R restores the step's preset


async def test_a_question_pauses_for_the_guess_presses_the_keys_and_shows_the_measured_answer():
    app, sessions = make_app(start=3)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        fake = sessions.last
        text = panel(app)
        assert "What will layer 1's gradient do?" in text
        assert "1  ↑" in text and "2  ↓" in text and "3  =" in text
        fake.advance(310)
        await tick(app, pilot)
        assert fake.commands == [Pause()]  # the run reached step 300: it waits for the room
        assert fake.status == "paused"
        await pilot.press("1")  # the room says ↑
        assert fake.commands[1:] == [Toggle("activation", "tanh"), Toggle("activation", "relu"),
                                     Toggle("activation", "leaky_relu"), Toggle("init", "xavier"),
                                     Toggle("init", "he"), Resume()]  # fmt: skip
        await tick(app, pilot)
        assert "the room says  ↑ " in panel(app) and "measuring: 0 of 100 steps" in panel(app)
        fake.advance(60)
        await tick(app, pilot)
        assert "measuring: 60 of 100 steps" in panel(app)
        fake.advance(40)
        await tick(app, pilot)
        text = panel(app)
        assert "layer 1: ×" in text and "— you said ↑ ✓" in text, text
        assert "(at step 410)" in text
        await pilot.press("2")  # the guess is in: another key changes nothing
        assert "you said ↑ ✓" in panel(app) and fake.commands[-1] == Resume()


async def test_a_guess_before_the_step_is_reached_waits_for_it_and_a_wrong_guess_is_marked():
    app, sessions = make_app(start=3)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        fake = sessions.last
        fake.advance(100)
        await tick(app, pilot)
        await pilot.press("2")  # ↓, before step 300
        await tick(app, pilot)
        assert fake.commands == [] and "keys a a a i i at step 300 (now 100)" in panel(app)
        fake.advance(200)
        await tick(app, pilot)
        assert fake.commands[0] == Toggle("activation", "tanh") and Pause() not in fake.commands
        fake.advance(100)
        await tick(app, pilot)
        assert "— you said ↓ ✗" in panel(app)


async def test_every_dashboard_key_still_works_and_enter_presses_a_steps_keys():
    app, sessions = make_app(start=4)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        fake = sessions.last
        assert "enter" in panel(app) and "presses c at step 20" in panel(app)
        fake.advance(5)
        await tick(app, pilot)
        await pilot.press("b")  # the presenter leaves the script: BatchNorm, as in vgtui launch
        assert fake.commands == [Toggle("batchnorm", "on")]
        fake.advance(20)
        await tick(app, pilot)
        assert fake.commands[-1] == Pause()  # step 20 reached: the keys wait for enter
        await pilot.press("enter")
        assert fake.commands[-2:] == [Toggle("clip", "1"), Resume()]
        await pilot.press("space")
        assert fake.commands[-1] == Pause()


def test_present_loads_without_torch():
    """The presenter's process never imports torch: the trainer runs in a child process, as in vgtui launch."""
    import subprocess
    import sys

    code = ("import sys, vgtui.tui.present, vgtui.present_cli, vgtui.lesson, vgtui.lesson_measure; "
            "vgtui.lesson.load_lesson(vgtui.lesson.default_lesson_path()); "
            "assert 'torch' not in sys.modules, 'torch was imported by the presenter side'")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_present_serve_runs_the_lesson_in_each_tab_at_a_projector_font_size():
    """`vgtui present --serve`: vgtui serve's page (font size 26 by default), each tab running `vgtui present`."""
    import os
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    from serve_helpers import free_port

    from vgtui.cli import build_parser
    from vgtui.present_cli import served_args
    from vgtui.serve.tether import COMMANDS

    args = build_parser().parse_args(["present", "--serve", "--start", "4", "--theme", "light"])
    assert served_args(args, "/l/workshop.toml") == ["/l/workshop.toml", "--start", "4", "--device", "auto",
                                                     "--theme", "light"]  # fmt: skip
    assert "present" in COMMANDS  # the tether runs `vgtui present ARGS` in each tab
    root = Path(__file__).resolve().parent.parent
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "vgtui.cli", "present", "--serve", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=root,
                            env={**os.environ, "PYTHONPATH": str(root)})  # fmt: skip
    try:
        deadline, page = time.monotonic() + 60, ""
        while not page and time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    page = response.read().decode()
            except OSError:
                time.sleep(0.2)
        assert 'data-font-size="26"' in page, proc.poll()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_a_diverged_run_takes_the_keys_with_the_guess():
    """The run went NaN before the step's `at` and paused itself: it will never get there, so the guess (or enter)
    sends the keys at once, as `vgtui run` takes the next scheduled toggles of a diverged run."""
    app, sessions = make_app(start=4)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        fake = sessions.last
        fake.advance(5)
        fake.diverge()
        await tick(app, pilot)
        assert "the run has stopped" not in panel(app)  # (no question here: enter presses the keys)
        assert "presses c\n" in panel(app) or "presses c " in panel(app)
        await pilot.press("enter")
        assert fake.commands == [Toggle("clip", "1")]


async def test_the_help_of_a_lesson_says_what_n_and_p_do_there():
    from vgtui.tui.help import HelpScreen, help_markdown

    step_line = next(line for line in help_markdown().splitlines() if line.startswith("- `n`"))
    app, _ = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen) and app.screen.lesson
    lesson = help_markdown(lesson=True)
    assert "`n` the lesson's next step" in lesson and "`p` the step before" in lesson
    assert step_line not in lesson  # the dashboard's own n (one step) is not claimed where n moves the lesson
    assert "the lesson's next step" not in help_markdown()
