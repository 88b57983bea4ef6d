"""Skipped optimizer steps: told apart from gradient accumulation by whether the gradients were reset.

GradScaler skips optimizer.step() on inf/NaN gradients, so vgtui's step hooks do not run: the only trace is a
second log() before the next step(). Gradient accumulation that logs every micro-batch looks the same, so a second
log() counts as a skipped step only where the gradients were reset in between (zero_grad), read off one parameter
without touching its values (no device op, no sync):

- set_to_none (the default): the gradient is another tensor object than at the previous log() (a weak reference,
  so no memory is kept alive), or None again;
- zero_grad(set_to_none=False) zeroes it in place: its version counter moved by 2 or more (zero_ + backward)
  where one backward of accumulation moves it by exactly 1;
- no gradient at the previous log() (log() before backward()) and none now: counted as a skip (unknown);
  none then, one now: a backward since, accumulating.

A second log() with no backward in between (e.g. one log() per metric) is no skip. Limits: a backward with
create_graph=True replaces the gradient tensor (counted as a reset); other in-place edits of the gradients between
two log() calls count like a zero_grad.
"""

from __future__ import annotations

import weakref

import torch


class GradResets:
    """Watches one parameter's gradient object across log() calls."""

    def __init__(self, params: list[torch.Tensor]) -> None:
        self.params = params[:16]
        self.param: torch.Tensor | None = None
        self._ref: weakref.ref | None = None
        self._version = 0

    def _grad(self) -> torch.Tensor | None:
        if self.param is None:
            self.param = next((p for p in self.params if p.grad is not None), None)
            if self.param is None:
                return None
        return self.param.grad

    def seen(self, compare: bool) -> bool:
        """At a log(): whether the gradients were reset since the previous log() (when `compare`); remembers now."""
        g = self._grad()
        reset = False
        if compare:
            if self._ref is not None:
                reset = g is None or self._ref() is not g or g._version - self._version > 1
            else:
                reset = g is None
        self._ref = weakref.ref(g) if g is not None else None
        self._version = g._version if g is not None else 0
        return reset
