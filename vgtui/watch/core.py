"""Watch: the optimizer step hooks that measure a user's model, apply viewers' commands and hand publishes to the hub.

Every step (register_step_pre_hook): one light row of gradient norms (a couple of fused ops, no sync), vgtui's
clip after measuring, lr x k saved and scaled. After the step (register_step_post_hook): lr restored, heavy statistics
on heavy steps, probes armed for the next heavy step, the viewers' commands applied (so a command's event names the
steps done when it took effect, and it acts from the next step on), a publish every >= publish_every seconds (one cat
and one device-to-host transfer; on CUDA non-blocking into pinned memory, the hub thread waits on the event), then
the pause gate. A plain step (light, one process, running, no vgtui clipping or lr factor, no command waiting) takes
a short path through both hooks: the norms, the row filed, the publish when due. Heavy steps are a pure function of
the step number (1, 2, then every `heavy_every`). Any error in vgtui's own code is caught here: the statistic is
switched off and the viewers are told; it never reaches the user's loop (a KeyboardInterrupt while paused does: it is
the user's).
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from typing import Any

import torch

from vgtui.contract import Event
from vgtui.watch.cadence import DEFAULT as DEFAULT_EVERY
from vgtui.watch.cadence import Cadence
from vgtui.watch.control import Controls
from vgtui.watch.dist import several_ranks
from vgtui.watch.first_step import setup
from vgtui.watch.layers import (
    ForwardOrder,
    Layer,
    find_activations,
    optimizer_params,
)
from vgtui.watch.light import LightRows
from vgtui.watch.overlap import NormHelper
from vgtui.watch.probes import Probes
from vgtui.watch.publishing import Publishing
from vgtui.watch.report import LayerInfo
from vgtui.watch.skips import GradResets
from vgtui.watch.stats import HeavyMeta, Meter, PendingHeavy
from vgtui.watch.swap import Swapper
from vgtui.watch.userclip import UserClip


class StepHooks(Controls, Publishing):
    """The training-thread half of vgtui.watch (see vgtui.watch.Watch for the user-facing face)."""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        blocks: list[torch.nn.Module],
        keep: Any,
        heavy_every: int | None,
        publish_every: float,
        hist_layer: int,
        copy_limit: int,
        allow_swap: Any = False,
        dist: Any = None,
    ) -> None:
        self.model, self.optimizer = model, optimizer
        self.dist = dist  # vgtui.watch.dist.DistSync under torchrun, else None
        self.params = optimizer_params(optimizer)
        if not self.params:
            raise ValueError("vgtui.watch: the optimizer has no parameters that require grad")
        self.order = ForwardOrder(model, self.params, ndim=dist.ndim if dist is not None else None)
        self.acts = find_activations(model)
        self.swap = Swapper(model, allow_swap)
        self.resets = GradResets(self.params)
        self.userclip = UserClip(next((p for p in self.params if p.dim() >= 2), self.params[0]))
        self.blocks = blocks
        self.keep = keep
        # ranks of a process group must agree on the heavy steps (their collectives): the cadence stays fixed there
        self.cadence = Cadence(heavy_every if heavy_every is not None or not several_ranks() else DEFAULT_EVERY)
        self.publish_every = publish_every
        self.hist_layer = hist_layer
        self.copy_limit = copy_limit
        self.hub: Any = None  # set by Watch
        self.step = 0
        self.status = "running"
        self.clip: float | None = None
        self.lr_factor = 1.0
        self.skipped = 0
        self.off = False
        self._disabled: set[str] = set()
        self.layers: list[Layer] | None = None
        self.info: LayerInfo | None = None
        self.meter: Meter | None = None
        # armed now, so that step 1 (a heavy step) has activation statistics and the user's clipping is checked
        self.probes = Probes.before_first_step([c[1] for c in self.order.candidates], self.acts, blocks)
        self.probes.arm()
        self.userclip.arm()
        self._steps_left = 0
        self._saved_lr: list[Any] | None = None
        self._step_lr: float | None = None  # in the full post-hook: the lr the step used (a command may change it)
        self._row: tuple | None = None
        self._heavy: PendingHeavy | None = None
        self._loss: Any = None
        self._acc: Any = None
        self._logs = 0
        self._logged = False
        self._metric_tensors: dict[str, torch.Tensor] = {}
        self._metric_floats: dict[str, float] = {}
        self.rows: LightRows | None = None  # the every-step numbers since the last publish (after the first step)
        self._steps: list[int] = []
        self._heavies: list[tuple[int, torch.Tensor, HeavyMeta]] = []
        self._events: list[Event] = []
        self._notices: list[tuple[str, str]] = []
        self._next_publish = time.monotonic() + publish_every
        self._last_post = time.monotonic()
        # the pending lists are the training thread's, except when the hub flushes an idle run (flush_if_idle)
        self._lock = threading.RLock()
        self._train_thread: int | None = None  # the thread that runs optimizer.step()
        self._in_step = False
        self._plain = False  # the next step is a plain light step (set after each step)
        self._fast = False  # this step took the plain path in pre (see _post_fast)
        self.helper: NormHelper | None = None
        self._pending = False  # this step's norms are being taken by the helper
        self._cuda = self.params[0].is_cuda
        self._handles = [optimizer.register_step_pre_hook(self.pre), optimizer.register_step_post_hook(self.post)]

    # ------------------------------------------------------------------ user calls

    def log(self, loss: Any = None, acc: Any = None, **metrics: Any) -> None:
        """Values for this step (tensors stay on the device: no sync). Call once per optimizer step."""
        if self.off:
            return
        logs = self._logs
        if self.resets.seen(logs > 0) or logs == 0:  # a second log() counts where zero_grad ran
            self._logs = logs + 1
        if loss is not None:
            self._loss = loss.detach() if isinstance(loss, torch.Tensor) else float(loss)
            self._logged = True
        if acc is not None:
            self._acc = acc.detach() if isinstance(acc, torch.Tensor) else float(acc)
        for name, value in metrics.items():
            if isinstance(value, torch.Tensor):
                self._metric_tensors[name] = value.detach()
            else:
                self._metric_floats[name] = float(value)

    @property
    def heavy_every(self) -> int:
        return self.cadence.every

    def heavy_due(self, step: int) -> bool:
        """Whether `step` (1-based) takes the heavy statistics (see vgtui.watch.cadence)."""
        return self.cadence.due(step)

    # ------------------------------------------------------------------ hooks

    def pre(self, _optimizer: Any, _args: Any, _kwargs: Any) -> None:
        self._in_step = True
        if self.off:
            return
        self._train_thread = threading.get_ident()
        if self._plain and self._logs <= 1 and self.clip is None and self.lr_factor == 1.0:
            # the usual step: the gradient norms, nothing else (a gradient that is None takes the full path); a big
            # CPU model's on the helper thread during the step (vgtui.watch.overlap). No lock: publish() (the hub's
            # idle flush included) touches none of what this writes
            meter, helper = self.meter, self.helper
            grads = [w.grad for w in meter.weights]
            try:
                if helper is None:
                    self._row = (meter.plan.norms(grads), self._loss, self._acc, None)
                elif any(g is None for g in grads):
                    raise TypeError("a gradient is None")
                else:
                    helper.submit(grads)
                    self._row, self._pending = (None, self._loss, self._acc, None), True
            except TypeError:
                pass
            except Exception as exc:  # noqa: BLE001 - never into the user's loop
                self._core_failed(exc)
                return
            else:
                self._loss = self._acc = None
                self._logs = 0
                self._fast = True
                return
        self._fast = False  # (where a step() raised after a plain pre-hook, its flag is stale)
        with self._lock:
            self._pre()

    def _pre(self) -> None:
        self._pending = False  # (the helper's last result, where a step() raised before its post-hook, is stale)
        try:
            if self.layers is None:
                self._setup()
            if self.userclip.armed:
                self.userclip.measure()
            meter = self.meter
            assert meter is not None
            if self._logs > 1:
                self._skipped(self._logs - 1)
            self._logs = 0
            norms, clipped = meter.light(meter.grads(), self.clip)
            self._row = (norms, self._loss, self._acc, clipped)
            self._loss = self._acc = None
            if self.heavy_due(self.step + 1) and "heavy" not in self._disabled:
                self._heavy = meter.before_step(self.hist_layer, True)
            if self.lr_factor != 1.0:
                self._saved_lr = [g["lr"] for g in self.optimizer.param_groups]
                for g in self.optimizer.param_groups:
                    g["lr"] = g["lr"] * self.lr_factor
        except Exception as exc:  # noqa: BLE001 - never into the user's loop
            self._core_failed(exc)

    def post(self, _optimizer: Any, _args: Any, _kwargs: Any) -> None:
        try:
            if self.off:
                return
            if self._fast:
                try:
                    if self._post_fast():
                        return
                except Exception as exc:  # noqa: BLE001 - never into the user's loop
                    self._core_failed(exc)
                    return
            with self._lock:
                self._post()
            cadence = self.cadence
            cadence.step_done(self.step)
            if self.dist is not None:
                self.dist.gate(self)
            elif self.status == "paused":
                self._gate()
            cadence.resumed()
            # whether the next step is a plain one: a light step of a single-process run (see pre)
            self._plain = self.dist is None and self.meter is not None and not cadence.due(self.step + 1)
        finally:
            self._in_step = False

    def _post_fast(self) -> bool:
        """The post-hook of a plain step (see pre), where no command waits and the run is not paused: the row filed,
        the next step's plainness and the publish checked, nothing else. False: nothing done, take the full path."""
        self._fast = False
        hub = self.hub
        if hub is None or not hub.commands.empty() or self.status != "running" or self.userclip.factor is not None:
            return False
        with self._lock:
            step, now = self._file_row()
            cadence = self.cadence
            due = cadence.due(step + 1)
            if due:
                self._finish_heavy()  # arms the probes for the heavy step
            if now >= self._next_publish:
                self._publish(None)
        cadence.step_done(step, light=True)
        cadence.resumed()
        self._plain = not due
        return True

    def _post(self) -> None:
        try:
            if self._saved_lr is not None:
                self._restore_lr()
            self._step_lr = self.effective_lr()  # what a publish of this step shows, whatever _drain() sets now
            step, now = self._file_row()
            probes = self.probes
            if self._heavy is not None or probes.armed or probes.failures or self.heavy_due(step + 1):
                self._finish_heavy()
            if self.dist is not None:
                self.dist.sync(self)
            elif self.hub is not None and not self.hub.commands.empty():
                self._drain()
            if self.status == "paused" and self._steps_left > 0:
                self._steps_left -= 1
            if now >= self._next_publish or (self.status == "paused" and self._steps_left == 0):
                self.publish()
        except Exception as exc:  # noqa: BLE001
            self._core_failed(exc)
        finally:
            self._step_lr = None

    # ------------------------------------------------------------------ internals

    def _file_row(self) -> tuple[int, float]:
        """In the post-hook: count the step and file its light row (the helper's norms, where it took them) with the
        user's clip factor, if measured: (the step, the time)."""
        step = self.step = self.step + 1
        self._last_post = now = time.monotonic()
        row, rows = self._row, self.rows
        if self._pending and row is not None:
            self._pending = False
            row = (self.helper.take(), *row[1:])
        if row is not None and rows is not None:
            rows.add(*row)
            self._steps.append(step)
            self._row = None
            if self.userclip.factor is not None:
                self.userclip.file(len(self._steps) - 1)
        return step, now

    def _setup(self) -> None:
        setup(self)

    def _finish_heavy(self) -> None:
        pending, probes, meter = self._heavy, self.probes, self.meter
        self._heavy = None
        assert probes is not None and meter is not None
        if pending is not None:
            try:
                flat, meta = meter.after_step(pending, probes if probes.armed else None)
                self._heavies.append((len(self._steps) - 1, flat, meta))
            except Exception as exc:  # noqa: BLE001
                self._stat_failed("heavy", exc)
        probes.disarm()
        for what, error in probes.failures:
            self._notices.append(("error", f"{what} statistics switched off after an error in their hook: {error}"))
        probes.failures.clear()
        if self.heavy_due(self.step + 1):
            probes.arm()
            self.userclip.arm()

    def _skipped(self, n: int) -> None:
        first = self.skipped == 0
        self.skipped += n
        if first:
            self._notices.append(
                (
                    "warn",
                    "an optimizer step was skipped (log() ran again after zero_grad, without step() in between: "
                    "GradScaler skips step() on inf/NaN gradients); skipped steps are counted",
                )
            )

    def _stat_failed(self, what: str, exc: BaseException) -> None:
        if what not in self._disabled:
            self._disabled.add(what)
            self._notices.append(
                ("error", f"{what} statistics switched off after an error: {type(exc).__name__}: {exc}")
            )

    def _core_failed(self, exc: BaseException) -> None:
        """vgtui's every-step path failed: stop watching (one warning), tell the viewers, leave the loop alone."""
        if self.off:
            return
        self.off = True
        self._restore_lr()
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        print(f"vgtui.watch: stopped watching after an error in vgtui (your training goes on): {text}", file=sys.stderr)
        self.remove_hooks()
        self._notices.append(("error", f"vgtui stopped watching after an error: {text}"))
        self.status = "error"
        try:
            if self.hub is not None and self.hub.alive:
                self.publish(status="error")
        except Exception:  # noqa: BLE001, S110 - the warning above was the one warning
            pass

    def remove_hooks(self) -> None:
        """Unregister vgtui's hooks. The optimizer's step hooks stay registered (and inert: `off`) where this runs
        inside optimizer.step() or on another thread than the training loop's: removing them while torch iterates
        over them would raise in the user's loop."""
        if not self._in_step and self._train_thread in (None, threading.get_ident()):
            for h in self._handles:
                h.remove()
            self._handles.clear()
        self.order.finish()
        self.swap.finish()
        self.userclip.disarm()
        if self.helper is not None:
            self.helper.close()
        if self.probes is not None:
            self.probes.disarm()
