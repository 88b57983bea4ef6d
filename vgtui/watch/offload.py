"""The every-step gradient norms of a CPU run, taken on a thread of vgtui's own instead of the training thread.

On the CPU the norms are real work on the training thread (the 21 weight gradients of the 20x64 MLP: ~95 us of a
~2.4 ms step; the 8x512's 7 MB of gradients: ~450 us of ~14 ms). After `optimizer.step()` the training thread hands
this step's gradient tensors to the "vgtui-norms" thread (a list append; every few steps and at each publish one
queue put, so the thread wakes rarely) and goes on; the gradients stay alive while
they wait, so the next backward writes new tensors. That holds only where each step's gradients are new tensors
(`zero_grad(set_to_none=True)`, the default) and nothing writes into them after the step: `Offload.safe` checks
the storage of one gradient against the previous step's on every step, and a run that reuses it (set_to_none=False,
DDP bucket views) keeps the norms on the training thread. At most MAX_PENDING steps wait; beyond that the training
thread takes its own norms (it never waits). The hub thread, packing a publish, waits for the tickets it needs.
"""

from __future__ import annotations

import queue
import threading

import torch

from vgtui.engine.telemetry import Scratch
from vgtui.watch.light import LightPlan

MAX_PENDING = 4  # steps whose gradients may wait (and stay alive) for the norms thread
MAX_BYTES = 256 << 20  # gradients held while waiting, at most: above it the norms stay on the training thread
OPTIMIZERS = "torch.optim."  # built-in optimizers leave the gradients as they found them


class Offload:
    """A thread that takes gradient norms for the training thread; tickets are consecutive integers."""

    def __init__(self, plan: LightPlan, grad_bytes: int) -> None:
        self.plan = plan
        self.max_pending = max(0, min(MAX_PENDING, MAX_BYTES // max(grad_bytes, 1)))
        self._scratch = Scratch()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._waiting: list[tuple[int, list[torch.Tensor]]] = []  # submitted, not yet handed to the thread
        self._done = threading.Condition()
        self._results: dict[int, tuple[list[torch.Tensor], list[torch.Tensor]] | BaseException] = {}
        self._submitted = 0  # written by the training thread only
        self._finished = 0  # written by the norms thread only
        self._last_ptr: int | None = None
        self._last_grad: torch.Tensor | None = None  # kept alive until the next step's check
        self.reuses_storage = False
        self.failed: BaseException | None = None  # the norms thread's error: the training thread takes over
        self._thread: threading.Thread | None = None

    @classmethod
    def wanted(cls, optimizer: torch.optim.Optimizer, params: list[torch.Tensor]) -> bool:
        """Whether a run may take its norms off the training thread: CPU tensors and a built-in optimizer."""
        return bool(params) and not params[0].is_cuda and type(optimizer).__module__.startswith(OPTIMIZERS)

    def safe(self, grads: list[torch.Tensor]) -> bool:
        """Whether this step's gradients are new tensors (not last step's storage, written over in place)."""
        if self.reuses_storage or self.failed is not None or not grads:
            return False
        first = grads[0]
        ptr, known = first.untyped_storage().data_ptr(), self._last_ptr is not None
        if ptr == self._last_ptr:
            self.reuses_storage = True
            return False
        self._last_ptr, self._last_grad = ptr, first
        return known  # not on the first step: nothing to compare with yet

    def submit(self, grads: list[torch.Tensor]) -> int | None:
        """A ticket for this step's norms, or None when too many steps wait (the caller takes them itself)."""
        if self._submitted - self._finished >= self.max_pending:
            return None
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="vgtui-norms", daemon=True)
            self._thread.start()
        ticket = self._submitted
        self._submitted += 1
        self._waiting.append((ticket, grads))
        if len(self._waiting) >= self.max_pending:
            self.flush()
        return ticket

    def flush(self) -> None:
        """Hand the submitted steps to the thread (the training thread, before a publish that needs them)."""
        if self._waiting:
            self._queue.put(self._waiting)
            self._waiting = []

    def take(self, ticket: int, timeout: float = 30.0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The norms of a ticket (waits for them: call from the hub thread, never the training thread); NaN where
        the norms thread failed (it is then off: the training thread sees `failed` and reports the error)."""
        with self._done:
            if not self._done.wait_for(lambda: ticket in self._results, timeout):
                self.failed = self.failed or TimeoutError("the vgtui-norms thread did not answer")
                got: tuple | BaseException = self.failed
            else:
                got = self._results.pop(ticket)
        if isinstance(got, BaseException):
            nan = float("nan")
            return [torch.full((), nan)] * len(self.plan.singles), [torch.full((n,), nan) for n in self.plan.sizes]
        return got

    def close(self, wait: bool = True) -> None:
        if self._thread is not None:
            self._queue.put(None)
            if wait:
                self._thread.join(2.0)

    def _run(self) -> None:
        while (items := self._queue.get()) is not None:
            results: dict[int, tuple | BaseException] = {}
            for ticket, grads in items:
                try:
                    with torch.no_grad():
                        results[ticket] = self.plan.norms(grads, self._scratch)
                except BaseException as exc:  # noqa: BLE001 - the training thread takes over (and reports it)
                    results[ticket] = self.failed = exc
            items = grads = None  # type: ignore[assignment]  # let go of the gradients before waiting again
            with self._done:
                self._results.update(results)
                self._finished += len(results)
                self._done.notify_all()
