"""The every-step gradient norms of a big CPU model, taken on a helper thread while optimizer.step() runs.

On CPU the norms read every shown gradient once more: on the 8x512 MLP (1.8 M weights, 7 MB of gradients, one torch
thread) ~0.4 ms from cache and ~0.9 ms from memory, 4-5 % of a ~20 ms step. torch lets go of the GIL inside an op,
so a helper thread can read the gradients while the optimizer updates the weights on the training thread; the
step post-hook waits for it, so nothing else touches the gradients meanwhile. Measured on a 2-core box (interleaved
pairs of blocks, wall time, the norms alone): bare / with the norms on the training thread 0.958x, on the helper
0.975x. On a small model the hand-over (two thread wake-ups) costs more than it saves (20x64: 0.952x against
0.918x), so only from MIN_BYTES of gradients on.

Only where step() does not write into the gradients: torch.optim.SGD without nesterov (its foreach path adds the
momentum into them), Adam and AdamW, none `differentiable` or `fused`; and only where torch leaves a core free
(fewer intra-op threads than cores: with one per core both threads' ops would share them, and the norms are
parallel already). Other optimizers, vgtui's own clipping (it scales the gradients after measuring), heavy steps
and several ranks take the norms on the training thread.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import torch

from vgtui.watch.light import LightPlan

MIN_BYTES = 4 << 20  # of shown weights' gradients, for the helper to pay off


def overlap_ok(optimizer: torch.optim.Optimizer, weights: list[torch.Tensor]) -> bool:
    """Whether the norms may be taken on a helper during this optimizer's step (see the module docstring)."""
    if type(optimizer) not in (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW):
        return False
    if any(w.is_cuda for w in weights) or sum(w.numel() * w.element_size() for w in weights) < MIN_BYTES:
        return False
    if torch.get_num_threads() >= (os.cpu_count() or 1):
        return False
    return not any(g.get(k) for g in optimizer.param_groups for k in ("nesterov", "differentiable", "fused"))


class NormHelper:
    """A daemon thread that takes one step's norms (LightPlan.norms) between submit() and take()."""

    def __init__(self, plan: LightPlan) -> None:
        self.plan = plan
        self._go = threading.Event()
        self._done = threading.Event()
        self._done.set()
        self._grads: list[torch.Tensor] | None = None
        self._result: torch.Tensor | None = None
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="vgtui-norms", daemon=True)
        self._thread.start()

    def submit(self, grads: list[torch.Tensor]) -> None:
        """Start on this step's gradients (after the previous ones were taken)."""
        self._done.wait()
        self._grads, self._result, self._error = grads, None, None
        self._done.clear()
        self._go.set()

    def take(self) -> torch.Tensor | None:
        """Wait for the norms (the gradients are free again when this returns); an error in the helper is raised."""
        while not self._done.wait(0.5):
            if not self._thread.is_alive():
                raise RuntimeError("vgtui's norms thread ended")
        self._grads = None
        if self._error is not None:
            raise self._error
        return self._result

    def close(self) -> None:
        self._closed = True
        self._go.set()

    def _run(self) -> None:
        while True:
            self._go.wait()
            self._go.clear()
            if self._closed:
                self._done.set()
                return
            try:
                with torch.no_grad():
                    self._result = self.plan.norms(self._grads or [])
            except BaseException as exc:  # noqa: BLE001 - handed to the training thread at take()
                self._error = exc
            finally:
                self._done.set()


def helper_for(optimizer: torch.optim.Optimizer, weights: list[torch.Tensor], plan: LightPlan, dist: Any) -> Any:
    """A NormHelper where it pays off and is safe, else None."""
    return NormHelper(plan) if dist is None and overlap_ok(optimizer, weights) else None
