"""The narration panel of `vgtui present`: the lesson step's title and text, its question with a key per choice,
the room's guess, and the measured answer beside it. Bold, high-contrast and roomy, for a projector (the text
size itself is the terminal's, or the page's with `vgtui serve --font-size`)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from vgtui.lesson import CHOICE_LABELS, LESSON_KEYS, LessonStep
from vgtui.lesson_measure import Answer, verdict_line

CHOICE_KEYS = "123"  # the presenter enters the room's guess with these: 1 = the first choice, ...


@dataclass(frozen=True)
class StepView:
    """Everything the panel shows about the current step."""

    step: LessonStep
    total: int
    phase: str  # "narrate" | "ask" | "wait" (guess in, keys wait for step `at`) | "measure" | "answered"
    guess: str | None = None
    now: int | None = None  # the run's step
    sent_at: int | None = None  # the run's step when the keys went out
    answer: Answer | None = None
    stopped: bool = False  # the run diverged (or failed): it will not reach `at`, the keys go out with the guess


def keys_text(keys: str) -> str:
    """'a a a i i' → as the presenter would press them."""
    return " ".join(keys)


def narration_text(view: StepView) -> Text:
    s, q = view.step, view.step.question
    t = Text()
    t.append(f" {s.number}/{view.total} ", "bold reverse")
    t.append(f" {s.title}", "bold")
    t.append("   n next · p back\n", "dim")
    paragraphs = [" ".join(p.split()) for p in s.text.split("\n\n") if p.strip()]
    t.append("\n".join(paragraphs) + "\n", "bold")
    if q is not None:
        t.append("\n? ", "bold yellow")
        t.append(q.ask, "bold yellow")
        if view.phase == "ask":
            t.append("   ")
            for key, choice in zip(CHOICE_KEYS, q.choices, strict=False):
                t.append(f" {key} ", "bold reverse")
                t.append(f" {CHOICE_LABELS[choice]}   ", "bold")
            t.append("\n")
            t.append(_when(view), "dim")
        elif view.guess is not None:
            t.append("   the room says ", "bold")
            t.append(f" {CHOICE_LABELS[view.guess]} ", "bold reverse")
            t.append("\n")
    elif s.keys and view.phase == "ask":
        t.append("\n")
        t.append(" enter ", "bold reverse")
        at = f" at step {s.at}" if s.at and not view.stopped else ""
        t.append(f" presses {keys_text(s.keys)}{at}\n", "bold")
    if view.phase == "wait":
        now = f" (now {view.now})" if view.now is not None else ""
        t.append(f"keys {keys_text(s.keys) or '–'} at step {s.at}{now}…\n", "dim")
    elif view.phase == "measure" and q is not None:
        done = max(0, (view.now or 0) - (view.sent_at or 0))
        pressed = f"{keys_text(s.keys)} pressed at step {view.sent_at} · " if s.keys else ""
        t.append(f"{pressed}measuring: {min(done, q.after)} of {q.after} steps\n", "dim")
    elif view.phase == "answered" and view.answer is not None and q is not None:
        right = view.guess is None or view.guess == view.answer.choice
        t.append("→ " + verdict_line(view.answer, view.guess, q), "bold green" if right else "bold red")
        t.append(f"   (at step {view.answer.at_step})\n", "dim")
    elif view.phase == "measure" and s.keys:
        t.append(f"{keys_text(s.keys)} pressed at step {view.sent_at}\n", "dim")
    return t


def _when(view: StepView) -> str:
    """'the room's guess: a key above · the run waits at step 300 · then a a a i i (activation, init)'."""
    s = view.step
    if view.stopped:
        waits = "the run has stopped: the keys go out with the guess"
    else:
        waits = f"the run waits at step {s.at}" if s.at else "the run waits"
    parts = ["the room's guess: a key above", waits]
    if s.keys:
        parts.append(f"then {keys_text(s.keys)} ({', '.join(dict.fromkeys(LESSON_KEYS[k] for k in s.keys))})")
    return " · ".join(parts) + "\n"


class NarrationPanel(Static):
    """The lesson's narration, question, guess and measured answer."""

    def show(self, view: StepView) -> None:
        self.border_title = f"lesson · step {view.step.number} of {view.total}"
        self.update(narration_text(view))
