"""Watch: the optimizer step hooks that measure a user's model, apply viewers' commands and hand publishes to the hub.

Every step (register_step_pre_hook): one light row of gradient norms (a couple of fused ops, no sync), vgtui's
clip after measuring, lr x k saved and scaled. After the step (register_step_post_hook): lr restored, heavy statistics
on heavy steps, probes armed for the next heavy step, the viewers' commands applied (so a command's event names the
steps done when it took effect, and it acts from the next step on), a publish every >= publish_every seconds (one cat
and one device-to-host transfer; on CUDA non-blocking into pinned memory, the hub thread waits on the event), then
the pause gate. Heavy steps are a pure function of the step number (1, 2, then every `heavy_every`). Any error
in vgtui's own code is caught here: the statistic is switched off and the viewers are told; it never reaches the
user's loop (a KeyboardInterrupt while paused does: it is the user's).
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from typing import Any

import numpy as np
import torch

from vgtui.contract import Event
from vgtui.watch.cadence import DEFAULT as DEFAULT_EVERY
from vgtui.watch.cadence import Cadence
from vgtui.watch.control import Controls
from vgtui.watch.dist import several_ranks
from vgtui.watch.handover import CpuPack, CudaTransfer, pack
from vgtui.watch.layers import (
    ForwardOrder,
    Layer,
    dominant_activation,
    find_activations,
    module_path,
    optimizer_params,
    select,
)
from vgtui.watch.light import LightRows
from vgtui.watch.probes import Probes
from vgtui.watch.remedies import CAPABILITIES
from vgtui.watch.report import Batch, LayerInfo
from vgtui.watch.skips import GradResets
from vgtui.watch.stats import HeavyMeta, Meter, PendingHeavy
from vgtui.watch.swap import Swapper
from vgtui.watch.userclip import UserClip


class StepHooks(Controls):
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
        self._cuda = self.params[0].is_cuda
        self._handles = [optimizer.register_step_pre_hook(self.pre), optimizer.register_step_post_hook(self.post)]

    # ------------------------------------------------------------------ user calls

    def log(self, loss: Any = None, acc: Any = None, **metrics: Any) -> None:
        """Values for this step (tensors stay on the device: no sync). Call once per optimizer step."""
        if self.off:
            return
        if self.resets.seen(self._logs > 0) or self._logs == 0:  # a second log() counts where zero_grad ran
            self._logs += 1
        if loss is not None:
            self._loss, self._logged = _kept(loss), True
        if acc is not None:
            self._acc = _kept(acc)
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
        with self._lock:
            self._pre()

    def _pre(self) -> None:
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
            singles, groups, clipped = meter.light(meter.grads(), self.clip)
            self._row = ((singles, groups), self._loss, self._acc, clipped)
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
            with self._lock:
                self._post()
            self.cadence.step_done(self.step)
            self._gate() if self.dist is None else self.dist.gate(self)
            self.cadence.resumed()
        finally:
            self._in_step = False

    def flush_if_idle(self, idle_s: float = 0.5) -> None:
        """From the hub thread: publish steps that wait while the training loop does something else for a while
        (evaluation, data loading, the end of the loop without close())."""
        if self.off or not self._lock.acquire(blocking=False):
            return
        try:
            if self.rows is not None and len(self.rows) and time.monotonic() - self._last_post >= idle_s:
                self.publish()
        finally:
            self._lock.release()

    def _post(self) -> None:
        try:
            self._restore_lr()
            self.step += 1
            self._last_post = time.monotonic()
            if self._row is not None and self.rows is not None:
                self.rows.add(*self._row)
                self._steps.append(self.step)
                self._row = None
                self.userclip.file(len(self._steps) - 1)
            self._finish_heavy()
            self._drain() if self.dist is None else self.dist.sync(self)
            if self.status == "paused" and self._steps_left > 0:
                self._steps_left -= 1
            if time.monotonic() >= self._next_publish or (self.status == "paused" and self._steps_left == 0):
                self.publish()
        except Exception as exc:  # noqa: BLE001
            self._core_failed(exc)

    # ------------------------------------------------------------------ internals

    def _setup(self) -> None:
        found = self.order.finish()
        self.swap.finish()
        keep = self.keep
        if keep is not None and not callable(keep):
            wanted = {k if isinstance(k, str) else id(k) for k in keep}

            def keep_fn(name: str) -> bool:
                return name in wanted or any(id(la.module) in wanted for la in found if la.name == name)

        else:
            keep_fn = keep
        self.layers, note = select(found, keep_fn)
        if note:
            self._notices.append(("info", note))
        if self.dist is None:
            self.meter = Meter(self.params, self.layers, self.copy_limit)
        else:
            self.meter = self.dist.meter(self, self.params, self.layers, self.copy_limit)
        self.rows = LightRows(self.meter.plan)
        if not self.meter.copy_on:
            mb = self.meter.copy_bytes / 2**20
            self._notices.append(
                (
                    "info",
                    f"update size off: the shown weights take {mb:.0f} MiB (limit "
                    f"{self.copy_limit / 2**20:.0f} MiB, copy_limit_mb= raises it)",
                )
            )
        self.probes.relayer(self.layers)
        block_names = tuple(module_path(self.model, b) for b in self.blocks)
        self.info = LayerInfo(
            tuple(la.name for la in self.layers),
            self.meter.layer_cols,
            self.meter.numel,
            dominant_activation(self.acts),
            type(self.optimizer).__name__,
            block_names,
            tuple(self.probes.block_layer),
            CAPABILITIES + self.swap.capabilities,
        )
        if not self.acts:
            self._notices.append(
                ("info", "no activation modules found (F.* calls?): slope, saturation and dead units are not measured")
            )
        if self.heavy_due(2):
            self.probes.arm()

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

    def publish(self, status: str | None = None) -> None:
        """Hand everything since the last publish to the hub: one cat, one device-to-host transfer."""
        with self._lock:
            self._publish(status)

    def _publish(self, status: str | None) -> None:
        self._next_publish = time.monotonic() + self.publish_every
        if self.hub is None:
            return
        metrics = list(self._metric_tensors.items())
        clip_factors, user_clip = self.userclip.pack()
        scalars = [t for _, t in metrics] + clip_factors  # the user's clip factors follow the metrics' values
        batch = Batch(
            flat=np.zeros(0, np.float32),
            steps=list(self._steps),
            light=None,
            heavies=[(row, meta) for row, _, meta in self._heavies],
            metrics=[name for name, _ in metrics],
            layers=self.info or LayerInfo((), np.zeros(0, int), np.zeros(0), "none", "?"),
            status=status or self.status,
            lr=self.effective_lr(),
            clip=self.clip,
            hist_layer=self.hist_layer,
            skipped=self.skipped,
            heavy_every=self.heavy_every,
            logged=self._logged,
            events=self._events,
            notices=self._notices,
            metric_floats=dict(self._metric_floats),
            user_clip=user_clip,
        )
        rows, heavies = self.rows, [h[1] for h in self._heavies]
        if rows is not None:
            self.rows = LightRows(rows.plan)
        self._steps, self._heavies = [], []
        self._events, self._notices = [], []
        self._metric_tensors = {}
        if not self._cuda:  # the hub thread packs it
            self.hub.publish(CpuPack(rows, heavies, scalars, batch))
            return
        flat = pack(rows, heavies, scalars, batch)  # on this thread: the copy is queued on the training stream
        self.hub.publish(CudaTransfer(flat, batch) if flat is not None else batch)

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
        if self.probes is not None:
            self.probes.disarm()


def _kept(value: Any) -> Any:
    """A logged value as vgtui keeps it until the step: a detached tensor (no copy, no sync) or a float."""
    if isinstance(value, torch.Tensor):
        return value.detach()
    return float(value)
