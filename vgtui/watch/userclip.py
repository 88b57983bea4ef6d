"""The user's own gradient clipping (clip_grad_norm_ between backward() and step()), detected on heavy steps.

The step pre-hook sees the gradients after whatever the user's code did to them (pitfall 4 in shared/ATTACH.md), so
the norms shown are the clipped ones. On heavy steps only, a post-accumulate-grad hook on one watched weight keeps,
at the end of backward, its gradient's norm (one device op, no sync), the tensor object (weakly) and its version
counter. At step() the pre-hook (before vgtui's own clipping) compares:

- same tensor, same version: nothing touched the gradients in between: factor 1, no device op at all;
- else the norm now over the norm then (one more device op; the host reads it with the publish): global-norm
  clipping scales every gradient alike, so this is the clip factor. Under torch.amp.GradScaler the gradients were
  scaled at backward and unscaled before step(); the scaler is found on the call stack (GradScaler.step calls
  optimizer.step) and its scale multiplied back in, on the device. A factor that is an exact power of two below
  1/2 (an unscale vgtui did not find) is not taken for clipping (report.user_clip_factor).

One weight stands for all (global-norm clipping scales them alike): clipping that leaves that weight out goes
unseen, and per-element clipping (clip_grad_value_) shows as that weight's norm ratio. Off under
torch.distributed with several ranks: the hook there sees the rank's local gradient before the
all-reduce (pitfall 3), so the ratio would mean nothing. Ordinary steps pay one attribute check.
"""

from __future__ import annotations

import sys
import weakref
from typing import Any

import torch

from vgtui.watch.dist import several_ranks

F32 = torch.float32
STACK_DEPTH = 16  # frames searched for the GradScaler whose step() called optimizer.step()


class UserClip:
    """Measures by how much the user's code scaled one weight's gradient between backward() and step()."""

    def __init__(self, weight: torch.Tensor) -> None:
        self.weight = weight
        self.off = several_ranks()
        self._handle: Any = None
        self._end: torch.Tensor | None = None  # the gradient's norm at the end of backward
        self._ref: weakref.ref | None = None
        self._version = 0
        self.factor: torch.Tensor | float | None = None  # this step's, until the post-hook files it under its row
        self.rows: list[tuple[int, torch.Tensor | float]] = []  # since the last publish

    @property
    def armed(self) -> bool:
        return self._handle is not None

    def arm(self) -> None:
        """Before a heavy step's backward (idempotent)."""
        if self.off or self._handle is not None:
            return
        self._end = None
        self._handle = self.weight.register_post_accumulate_grad_hook(self._accumulated)

    def disarm(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _accumulated(self, param: torch.Tensor) -> None:
        try:
            g = param.grad
            if g is None:
                return
            with torch.no_grad():
                self._end = torch.linalg.vector_norm(g.detach(), dtype=F32)
            self._ref, self._version = weakref.ref(g), g._version
        except Exception:  # noqa: BLE001 - never into the user's backward pass; this step goes unmeasured
            self._end = None

    def measure(self) -> None:
        """In the step pre-hook, before vgtui's own clipping: this step's factor (1.0, a device tensor, or None)."""
        self.disarm()
        end, self._end = self._end, None
        g = self.weight.grad
        if end is None or g is None or self._ref is None:
            self.factor = None
        elif self._ref() is g and g._version == self._version:
            self.factor = 1.0
        else:
            with torch.no_grad():
                factor = torch.linalg.vector_norm(g.detach(), dtype=F32) / end
                scale = _scaler_scale(sys._getframe(1))
                self.factor = factor * scale.to(factor.device, F32) if scale is not None else factor

    def file(self, row: int) -> None:
        """In the post-hook: this step's factor belongs to light row `row` of the next publish."""
        if self.factor is not None:
            self.rows.append((row, self.factor))
            self.factor = None

    def pack(self) -> tuple[list[torch.Tensor], list[tuple[int, float | None]]]:
        """The device factors (0-d, in order) and (row, host value, or None: the next of those factors)."""
        tensors = [f for _, f in self.rows if isinstance(f, torch.Tensor)]
        layout = [(row, None if isinstance(f, torch.Tensor) else float(f)) for row, f in self.rows]
        self.rows = []
        return tensors, layout


def _scaler_scale(frame: Any) -> torch.Tensor | None:
    """The scale of the torch.amp.GradScaler whose step() is on the call stack (None where there is none)."""
    scaler_type = getattr(torch.amp, "GradScaler", None)
    for _ in range(STACK_DEPTH):
        if frame is None or scaler_type is None:
            return None
        owner = frame.f_locals.get("self")
        if isinstance(owner, scaler_type):
            scale = getattr(owner, "_scale", None)
            return scale if isinstance(scale, torch.Tensor) else None
        frame = frame.f_back
    return None
