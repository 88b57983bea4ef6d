"""The heavy-statistics cadence: a pure function of the step number that follows what heavy steps cost here."""

from __future__ import annotations

import pytest

from vgtui.watch import cadence as cadence_module
from vgtui.watch.cadence import BUDGET, DEFAULT, Cadence


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run(c: Cadence, clock: Clock, steps: int, light: float, heavy_extra: float, paused_at: int = -1) -> list[int]:
    """Steps 1..steps, each `light` seconds long plus `heavy_extra` on heavy ones; returns the heavy steps."""
    heavy = []
    c.resumed()
    for step in range(1, steps + 1):
        clock.now += light + (heavy_extra if c.due(step) else 0.0)
        if c.due(step):
            heavy.append(step)
        c.step_done(step)
        if step == paused_at:
            clock.now += 60.0  # an hour-long pause is not a slow step
        c.resumed()
    return heavy


@pytest.fixture(name="clock")
def clock_fixture(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(cadence_module.time, "perf_counter", clock)
    return clock


def test_cheap_heavy_steps_keep_the_default(clock: Clock) -> None:
    c = Cadence(None)
    heavy = run(c, clock, 400, light=0.01, heavy_extra=0.01 * 0.1)  # a tenth of a step: 0.2 % at every 50
    assert c.every == DEFAULT and heavy == [1, 2, *range(50, 401, 50)]


def test_costly_heavy_steps_come_rarer_and_stay_within_the_budget(clock: Clock) -> None:
    c = Cadence(None)
    heavy = run(c, clock, 3000, light=0.014, heavy_extra=0.0065, paused_at=30)  # about the 8x512 MLP
    assert c.every == 100  # 0.46 of a step extra every 100 steps: 0.46 %
    assert 0.0065 / (0.014 * c.every) <= BUDGET
    assert heavy[:4] == [1, 2, 50, 100] and all(s % 100 == 0 for s in heavy[3:])


def test_a_cadence_the_user_sets_is_kept(clock: Clock) -> None:
    c = Cadence(5)
    heavy = run(c, clock, 100, light=0.01, heavy_extra=0.05)
    assert c.every == 5 and heavy == [1, 2, *range(5, 101, 5)]


def test_one_slow_heavy_step_does_not_make_the_statistics_rare(clock: Clock) -> None:
    c = Cadence(None)
    c.resumed()
    extras = iter([0.5] + [0.001] * 50)  # the first heavy step after warm-up is 50 light steps long, then cheap

    for step in range(1, 2001):
        clock.now += 0.01 + (next(extras) if c.due(step) and step > 2 else 0.0)
        c.step_done(step)
        c.resumed()
        if step == 50:
            assert c.every == 100  # one notch, not the 5000 that step alone would ask for
    assert c.every == 50  # the median of what heavy steps cost is back within the budget at every 50
