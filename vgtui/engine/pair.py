"""Two trainers from one config and seed, stepped in lockstep: A (the baseline) and B (A with some toggles).

B is a fork of A: a deep copy of its model, optimizer state and batch generator, with the toggles applied at
A's current step. Forked at step 0 it is the preset with those toggles from the start. Both draw their batches
from their own generator seeded alike, so until the fork (and for B's first batch after it) they see the same
data; their losses are bitwise equal until the toggle takes effect (tests/test_engine_pair.py).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch

from vgtui.contract import Event, Toggle
from vgtui.engine.toggles import ToggleError, compare_label, parse_compare  # noqa: F401 (parse_compare: re-export)
from vgtui.engine.trainer import Trainer


def fork_trainer(trainer: Trainer, toggles: Sequence[Toggle] = ()) -> tuple[Trainer, list[Event]]:
    """A copy of `trainer` at its current step (model, optimizer state, batch generator; the dataset is shared,
    read-only) with `toggles` applied now. Telemetry still pending on `trainer` is not copied: collect it first.
    Raises ToggleError (and leaves `trainer` unchanged) if a toggle does not apply."""
    memo = {id(trainer.data): trainer.data}
    pending = trainer._pending, trainer._pending_steps, trainer._heavies
    trainer._pending, trainer._pending_steps, trainer._heavies = [], [], []
    rng = torch.get_rng_state()
    try:
        fork = copy.deepcopy(trainer, memo)
    finally:
        trainer._pending, trainer._pending_steps, trainer._heavies = pending
    events = [fork.apply(t) for t in toggles]  # (an init toggle draws from the global generator: put it back)
    torch.set_rng_state(rng)
    return fork, events


class TrainerPair:
    """A and B stepped alternately in one thread. `fork(toggles)` makes B from A at A's current step."""

    def __init__(self, a: Trainer, toggles: Sequence[Toggle] | None = None) -> None:
        self.a = a
        self.b: Trainer | None = None
        self.toggles: tuple[Toggle, ...] = ()
        self.fork_step: int | None = None
        if toggles is not None:
            self.fork(toggles)

    def fork(self, toggles: Sequence[Toggle]) -> list[Event]:
        """B := a copy of A now, with `toggles`. Raises ToggleError if one does not apply."""
        b, events = fork_trainer(self.a, toggles)
        self.b, self.toggles, self.fork_step = b, tuple(toggles), self.a.step
        return events

    @property
    def label(self) -> str:
        return compare_label(self.toggles, self.fork_step or 0) if self.b is not None else ""

    def train_step(self) -> None:
        """One step of A, then one of B (the same batch: each draws from its own generator, seeded alike)."""
        self.a.train_step()
        if self.b is not None:
            self.b.train_step()

    def end(self, keep: str) -> Trainer:
        """End the comparison, keeping run 'A' or 'B' as the one trainer."""
        if keep not in ("A", "B"):
            raise ToggleError(f"keep {keep!r}: allowed: A or B")
        if keep == "B" and self.b is not None:
            self.a = self.b
        self.b, self.toggles, self.fork_step = None, (), None
        return self.a
