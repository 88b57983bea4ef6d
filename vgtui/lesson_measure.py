"""A lesson question's measured answer, read from the Snapshots a dashboard receives. No torch, no textual.

The same code answers the question live (the presenter's dashboard feeds it the snapshots it polls) and in
`vgtui present --check` (fed every snapshot the headless session publishes). Values are averaged over the last
WINDOW steps before the keys and over the last WINDOW steps up to `after` steps after them, so a dashboard that
sees one snapshot in fifty steps and a check that sees every tenth read the same thing within noise; the
thresholds (×10 for a gradient, 0.1 for the loss) are wider than that noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vgtui.contract import Snapshot
from vgtui.lesson import CHOICE_LABELS, DOWN, MEASURES, NO, SAME, UP, YES, Question

WINDOW = 50  # steps averaged on each side
FACTOR = 10.0  # a gradient "goes up" from ×10, "down" below ×0.1
# The loss "falls" when it ends at least this far below where it was: wider than what one snapshot's loss strays
# from its 50-step mean on the shipped scenes (skips on deep-sigmoid, seeds 0-4: up to 0.09; lessons/workshop.toml)
LOSS_MARGIN = 0.1
CHANCE = math.log(2)  # the loss of a two-class network that has learnt nothing, when the snapshot does not say


@dataclass(frozen=True)
class Reading:
    """What a question may measure, taken from one Snapshot."""

    step: int
    loss: float
    grad1: float
    ratio: float
    time1: float
    diverged: bool
    chance: float

    @classmethod
    def of(cls, snap: Snapshot) -> Reading:
        g, tg = snap.grad_norm, snap.time_grad_norm
        grad1 = float(g[0]) if len(g) else math.nan
        time1 = float(tg[0] / tg[-1]) if tg is not None and len(tg) > 1 and tg[-1] > 0 else math.nan
        chance = snap.extra.get("baseline_loss", CHANCE) if isinstance(snap.extra, dict) else CHANCE
        diverged = snap.status == "diverged" or not math.isfinite(snap.loss)
        return cls(snap.step, snap.loss, grad1, snap.first_last_ratio, time1, diverged, float(chance))


@dataclass(frozen=True)
class Answer:
    choice: str  # one of the question's choices ("" when it cannot be told: "–")
    text: str  # e.g. "layer 1: ×3e15", "loss 0.69 → 0.21"
    at_step: int

    @property
    def label(self) -> str:
        return CHOICE_LABELS.get(self.choice, "–")


class Measurement:
    """One question's answer: `see()` every snapshot, `mark(step)` when the keys go out, then `answer`."""

    def __init__(self, question: Question) -> None:
        self.question = question
        self.before: list[Reading] = []
        self.after: list[Reading] = []
        self.marked_at: int | None = None
        self.answer: Answer | None = None

    def see(self, snap: Snapshot) -> Answer | None:
        """Take one snapshot; returns the answer once it is known (and keeps it)."""
        if self.answer is not None:
            return self.answer
        r = Reading.of(snap)
        if self.marked_at is None:
            self.before = [b for b in self.before if b.step != r.step and b.step > r.step - WINDOW] + [r]
            return None
        if r.step <= self.marked_at:  # the keys' own step: its numbers may already show them; 'before' is kept
            return None
        if self.after and r.step == self.after[-1].step:
            self.after[-1] = r
        else:
            self.after.append(r)
        end = self.marked_at + self.question.after
        if r.step >= end or (r.diverged and self.question.measure in ("diverges", "loss")):
            self.answer = self._answer(r.step)
        return self.answer

    def mark(self, step: int) -> None:
        """The keys went out when the run was at `step` (readings up to it are 'before')."""
        self.marked_at = step

    def _answer(self, step: int) -> Answer:
        q = self.question
        after = [a for a in self.after if a.step > step - WINDOW] or self.after[-1:]
        label = MEASURES[q.measure].label
        if q.measure == "diverges":
            bad = next((a for a in self.after if a.diverged), None)
            if bad is not None:
                return Answer(YES, f"loss NaN/Inf by step {bad.step}", step)
            return Answer(NO, f"loss finite up to step {step} ({after[-1].loss:.2f})", step)
        if q.measure == "loss":
            return self._loss_answer(after, step)
        name = q.measure
        was = _geo([getattr(b, name) for b in self.before])
        now = _geo([getattr(a, name) for a in after])
        if not (math.isfinite(was) and math.isfinite(now)) or was <= 0:
            return Answer("", f"{label}: –", step)
        factor = now / was
        choice = UP if factor >= FACTOR else DOWN if factor <= 1 / FACTOR else SAME
        return Answer(choice, f"{label}: ×{fmt_factor(factor)}", step)

    def _loss_answer(self, after: list[Reading], step: int) -> Answer:
        was = _mean([b.loss for b in self.before])
        chance = (self.before or after)[-1].chance
        blown = not self.before or self.before[-1].diverged  # a NaN loss (or none yet): compare with chance
        reference = chance if blown or not math.isfinite(was) else was
        shown = "–" if not self.before else "NaN" if blown else fmt_loss(was)
        if any(a.diverged for a in after):
            return Answer(NO, f"loss {shown} → NaN", step)
        now = _mean([a.loss for a in after])
        falls = now <= reference - LOSS_MARGIN
        return Answer(YES if falls else NO, f"loss {shown} → {fmt_loss(now)}", step)


def fmt_factor(x: float) -> str:
    """3e15 → '3e15', 2e-6 → '2e-6'; from 0.01 to 100: '1.3', '0.05'; not a number: '–'."""
    if not math.isfinite(x):
        return "–"
    if 0.01 <= x < 100:
        return f"{x:.2g}"
    mantissa, exponent = f"{x:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def fmt_loss(x: float) -> str:
    return f"{x:.2f}" if math.isfinite(x) else "NaN"


def _geo(values: list[float]) -> float:
    x = np.abs(np.asarray(values, dtype=float))
    x = x[np.isfinite(x) & (x > 0)]
    return float(np.exp(np.log(x).mean())) if len(x) else math.nan


def _mean(values: list[float]) -> float:
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else math.nan


def verdict_line(answer: Answer, guess: str | None, question: Question) -> str:
    """'layer 1: ×3e15 — you said ↑ ✓' (or ✗, or no guess)."""
    if guess is None:
        return f"{answer.text}: {answer.label}"
    mark = "✓" if guess == answer.choice else "✗"
    return f"{answer.text} — you said {CHOICE_LABELS[guess]} {mark}"


__all__ = ["Answer", "Measurement", "Reading", "SAME", "verdict_line"]
