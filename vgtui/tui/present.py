"""`vgtui present`: the dashboard with a lesson's narration panel. `n` / `p` move between the lesson's steps (each
loads its preset), a question pauses the run at its step until the presenter enters the room's guess (1, 2, 3),
then the step's keys are pressed and, `after` steps later, the measured answer appears beside the guess.

Every other key of the dashboard still works (`space` pauses); the single step and the preset picker, whose keys
`n` and `p` the lesson takes, stay in the command palette. The answer is measured from the snapshots this
dashboard polls, nothing else (vgtui/lesson_measure.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from textual.binding import Binding, BindingType

from vgtui.config import RunConfig
from vgtui.contract import Pause, Resume
from vgtui.lesson import LESSON_KEYS, Lesson, LessonStep
from vgtui.lesson_measure import Measurement
from vgtui.tui.app import VgtuiApp, run_app
from vgtui.tui.narration import CHOICE_KEYS, NarrationPanel, StepView

ConfigLoader = Callable[[str], RunConfig]


def _load_preset(name: str) -> RunConfig:
    from vgtui.presets import resolve

    return resolve(name)


class PresentApp(VgtuiApp):
    """The dashboard, driven by a lesson."""

    LESSON = True

    CSS_PATH: ClassVar = [VgtuiApp.CSS_PATH, Path(__file__).with_name("narration.tcss")]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "lesson_next", "next", id="vgtui.lesson_next", tooltip="The lesson's next step"),
        Binding("p", "lesson_back", "back", id="vgtui.lesson_back", tooltip="The lesson's step before"),
        Binding("enter", "lesson_go", "go", show=False, id="vgtui.lesson_go", tooltip="Press the step's keys"),
        *[Binding(k, f"guess({i})", f"guess {k}", show=False, id=f"vgtui.guess_{k}")
          for i, k in enumerate(CHOICE_KEYS)],
    ]  # fmt: skip

    def __init__(self, lesson: Lesson, session_factory, refresh_hz: float | None = None, theme: str | None = None,
                 start: int = 1, load_preset: ConfigLoader = _load_preset) -> None:  # fmt: skip
        self.lesson = lesson
        self.load_preset = load_preset
        self.index = max(0, min(len(lesson.steps) - 1, start - 1))
        super().__init__(load_preset(lesson.steps[self.index].preset), session_factory, refresh_hz, theme=theme)
        self._step_state()

    def _step_state(self) -> None:
        self.guess: str | None = None
        self.go = False  # the guess is in (or enter pressed): the keys go out once the run reaches `at`
        self.sent_at: int | None = None
        self.auto_paused = False
        step = self.step
        self.measurement = Measurement(step.question) if step.question else None
        self._fed: object = None
        self._shown: StepView | None = None

    @property
    def step(self) -> LessonStep:
        return self.lesson.steps[self.index]

    def compose(self):
        yield from super().compose()
        self.narration = NarrationPanel(id="narration")
        yield self.narration

    def on_mount(self) -> None:
        """(Textual runs VgtuiApp.on_mount after this one: it starts the first step's session.)"""
        self.call_later(self._enter_step, False)

    # ------------------------------------------------------------------ moving through the lesson

    def action_lesson_next(self) -> None:
        self._move(1)

    def action_lesson_back(self) -> None:
        self._move(-1)

    def _move(self, delta: int) -> None:
        index = self.index + delta
        if not 0 <= index < len(self.lesson.steps):
            self.notify("the lesson's last step" if delta > 0 else "the lesson's first step", title="lesson")
            return
        self.index = index
        self._step_state()
        self._enter_step(fresh=True)

    def _enter_step(self, fresh: bool) -> None:
        """A fresh run of the step's preset (unless it continues the run on screen), paused at once when its keys
        or question wait for step 0."""
        step = self.step
        config = self.load_preset(step.preset) if fresh else None
        same = config is not None and self.config is not None and self.config.name == config.name
        if config is not None and not (step.keep and self.session is not None and same):
            self.original_config = config
            self.start_session(config)
        if step.at == 0 and self._waits() and self.session is not None:
            self._pause()
        self._show()

    def _waits(self) -> bool:
        return bool(self.step.question or self.step.keys)

    def _pause(self) -> None:
        self.send(Pause())
        self.auto_paused = True

    # ------------------------------------------------------------------ the question

    def action_guess(self, index: int) -> None:
        q = self.step.question
        if q is None or self.sent_at is not None or index >= len(q.choices):
            return
        self.guess = q.choices[index]
        self.go = True
        self._advance()

    def action_lesson_go(self) -> None:
        if self.step.question is None and self.step.keys and self.sent_at is None:
            self.go = True
            self._advance()

    def poll(self) -> None:
        super().poll()
        if getattr(self, "narration", None) is not None and self.session is not None:
            self._advance()

    def _advance(self) -> None:
        """Feed the newest snapshot to the measurement; pause at `at` for the guess; press the keys."""
        snap, step = self.snap, self.step
        if snap is not None and snap is not self._fed and self.measurement is not None:
            self._fed = snap
            self.measurement.see(snap)
        if self.sent_at is None and self._waits() and snap is not None:
            reached = snap.step >= step.at or snap.status in ("diverged", "error", "done")
            if reached and self.go:
                self._press(snap.step)
            elif reached and not self.auto_paused and snap.status == "running":
                self._pause()
        self._show()

    def _press(self, now: int) -> None:
        """The step's keys, as if the presenter pressed them, then the run goes on."""
        for key in self.step.keys:
            action = LESSON_KEYS[key]
            if action == "reset":
                self.action_reset()
            else:
                self.action_toggle(action)
        self.sent_at = now
        if self.measurement is not None:
            self.measurement.mark(now)
        if self.auto_paused:
            self.send(Resume())
            self.auto_paused = False
            self._paused_local = None

    def _phase(self) -> str:
        if not self._waits():
            return "narrate"
        if self.sent_at is None:
            return "wait" if self.go else "ask"
        if self.measurement is not None and self.measurement.answer is not None:
            return "answered"
        return "measure"

    def _show(self) -> None:
        snap = self.snap
        answer = self.measurement.answer if self.measurement is not None else None
        phase = self._phase()
        now = snap.step if snap is not None and phase in ("wait", "measure") else None  # shown in these only
        stopped = snap is not None and snap.status in ("diverged", "error")
        view = StepView(self.step, len(self.lesson.steps), phase, self.guess, now, self.sent_at, answer, stopped)
        if view != self._shown:  # (a new text re-lays the screen out: only when it changed)
            self._shown = view
            self.narration.show(view)


def run_present(lesson: Lesson, session_factory, refresh_hz: float | None = None, theme: str | None = None,
                start: int = 1) -> int:  # fmt: skip
    """Run the lesson until the presenter quits; the session is always stopped. Returns an exit code."""
    return run_app(PresentApp(lesson, session_factory, refresh_hz, theme=theme, start=start))
