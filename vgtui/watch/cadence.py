"""Which steps take vgtui.watch's heavy statistics: steps 1 and 2, then every `every` steps.

The heavy statistics (weight norms, a copy of the weights for the update size, the activation probes, the gradient
histogram) cost far more than a light step's few ops: on the 8x512 MLP a heavy step took ~7 ms more than a ~14 ms
light one, so every 50 steps was 1 % of the run. Unless the user fixes `heavy_every`, the cadence follows what the
heavy steps really cost here: each heavy step after the second measures its own extra time against the median
light step, and `every` moves towards the smallest of NICE that keeps the median of those at or under BUDGET of the
run (never below the default): down at once, up one notch per heavy step, so that one slow heavy step (a
collection, another process) does not make the statistics rare. Between changes heavy steps stay a pure function
of the step number.
"""

from __future__ import annotations

import statistics
import time
from collections import deque

DEFAULT = 50
BUDGET = 0.005  # of the run's time, for the heavy statistics
NICE = (50, 100, 200, 500, 1000, 2000, 5000)


class Cadence:
    """Times the steps (end of one post-hook to the end of the next, the pause gate left out) and sets `every`."""

    def __init__(self, every: int | None) -> None:
        self.fixed = every is not None
        self.every = max(1, int(every)) if every is not None else DEFAULT
        self._last: float | None = None
        self._light: deque[float] = deque(maxlen=64)
        self._heavy: deque[float] = deque(maxlen=5)

    def due(self, step: int) -> bool:
        """Whether `step` (1-based) takes the heavy statistics."""
        return step <= 2 or step % self.every == 0

    def step_done(self, step: int, light: bool = False) -> None:
        """At the end of `step`'s post-hook, before the pause gate (`light`: known not to be a heavy step)."""
        now = time.perf_counter()
        last, self._last = self._last, None
        if last is None or step <= 2:
            return
        took = now - last
        if light or not self.due(step):
            self._light.append(took)
        elif len(self._light) >= 8:
            self._heavy.append(max(took - statistics.median(self._light), 0.0))
            if not self.fixed:
                self._adapt()

    def resumed(self) -> None:
        """After the pause gate: the next step is timed from here."""
        self._last = time.perf_counter()

    def _adapt(self) -> None:
        light, heavy = statistics.median(self._light), statistics.median(self._heavy)
        want = heavy / (BUDGET * light) if light > 0 else NICE[-1]
        target = next((n for n in NICE if n >= want), NICE[-1])
        notch = NICE.index(self.every) if self.every in NICE else 0
        self.every = min(target, NICE[min(notch + 1, len(NICE) - 1)])
