"""`vgtui present --check LESSON`: run every lesson step headless and check each question's measured answer.

Each step runs as `vgtui run` runs a preset: a Session with a step limit and its keys scheduled at the step's `at`
(turned into Toggles by the dashboard's own key functions, from the model the preset describes). Every snapshot
the session publishes goes through the same Measurement the live dashboard uses. One line per step and seed;
exit 0 when every answer is the one the lesson states, 1 otherwise.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable

from vgtui.config import RunConfig, apply_sets, model_state
from vgtui.contract import Command, ModelState, Reset, Snapshot
from vgtui.lesson import CHOICE_LABELS, LESSON_KEYS, Lesson, LessonStep
from vgtui.lesson_measure import Answer, Measurement

NARRATION_STEPS = 10  # a step with nothing to measure only has to load and train


def commands_for_keys(keys: str, model: ModelState) -> list[Command]:
    """The Commands the dashboard sends for these keys pressed in a row, starting from `model`."""
    from vgtui.tui.keys import apply_toggle, toggle_for

    commands: list[Command] = []
    for key in keys:
        action = LESSON_KEYS[key]
        if action == "reset":
            commands.append(Reset())
            continue
        toggle = toggle_for(action, model)
        if toggle is not None:
            commands.append(toggle)
            model = apply_toggle(model, toggle)
    return commands


def step_config(step: LessonStep, seed: int | None) -> RunConfig:
    from vgtui.presets import resolve

    config = resolve(step.preset)
    return apply_sets(config, [f"train.seed={seed}"]) if seed is not None else config


def run_step(step: LessonStep, seed: int | None, device: str = "auto") -> tuple[Answer | None, str | None]:
    """Train the step's preset headless with its keys at `at`; (the measured answer or None, an error or None)."""
    from vgtui.engine.session import Session

    config = step_config(step, seed)
    commands = commands_for_keys(step.keys, model_state(config))
    after = step.question.after if step.question else NARRATION_STEPS
    snaps: list[Snapshot] = []
    lock = threading.Lock()

    def collect(record) -> None:
        with lock:
            snaps.append(record.snapshot)

    session = Session(config, device=device, max_steps=step.at + after, schedule=[(step.at, c) for c in commands],
                      on_publish=collect)  # fmt: skip
    session.start()
    try:
        while not session.done.wait(0.1) and session.alive:
            pass
    finally:
        session.stop(timeout=5.0)
    last = session.latest()
    if last is not None and last.status == "error":
        return None, last.error or "the training step failed"
    if step.question is None:
        return None, None
    return measure(step, snaps), None


def measure(step: LessonStep, snaps: Iterable[Snapshot]) -> Answer | None:
    """Feed the snapshots in order; the keys count as sent at the step of the first event they made (a diverged
    run takes them at once), or at `at` for a question with no keys."""
    assert step.question is not None
    m = Measurement(step.question)
    events_before: int | None = None
    for snap in snaps:
        if events_before is None:
            events_before = len(snap.events)
        if m.marked_at is None:
            if step.keys and len(snap.events) > events_before:
                m.mark(snap.events[events_before].step)
            elif not step.keys and snap.step > step.at:
                m.mark(step.at)
        m.see(snap)
    return m.answer


def check_lesson(lesson: Lesson, seeds: list[int | None], device: str = "auto",
                 say: Callable[[str], None] = print) -> int:  # fmt: skip
    """Every step on every seed; a line each; 0 when every measured answer is the lesson's, else 1."""
    failed = 0
    for step in lesson.steps:
        for seed in seeds:
            where = f"step {step.number} ({step.title}; {step.preset}" + (f", seed {seed})" if seed is not None
                                                                           else ")")  # fmt: skip
            answer, error = run_step(step, seed, device)
            q = step.question
            if error is not None:
                failed += 1
                say(f"FAIL {where}: training failed: {error}")
            elif q is None:
                say(f"ok   {where}: runs" + (f" with keys {step.keys} at step {step.at}" if step.keys else ""))
            elif answer is None:
                failed += 1
                say(f"FAIL {where}: no answer was measured by step {step.at + q.after}")
            elif answer.choice != q.answer:
                failed += 1
                say(f"FAIL {where}: {answer.text} → {answer.label}; the lesson says {CHOICE_LABELS[q.answer]}")
            else:
                say(f"ok   {where}: {answer.text} → {answer.label}, as the lesson says")
    total = len(lesson.steps) * len(seeds)
    say(f"{lesson.source}: {total - failed} of {total} step runs as the lesson says" if failed else
        f"{lesson.source}: every step runs and every answer is the one the lesson states ({total} runs)")  # fmt: skip
    return 1 if failed else 0


def main_check(lesson: Lesson, seeds: list[int | None], device: str) -> int:
    import torch

    torch.set_num_threads(1)  # as the dashboard's worker trains
    return check_lesson(lesson, seeds, device, say=lambda line: print(line, flush=True, file=sys.stdout))
