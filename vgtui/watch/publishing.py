"""The hand-over of a watched run's pending numbers to the hub: a publish every >= publish_every seconds, and the
hub's flush of a run that went idle (a mixin of vgtui.watch.core.StepHooks)."""

from __future__ import annotations

import time

import numpy as np

from vgtui.watch.handover import CpuPack, CudaTransfer, pack
from vgtui.watch.light import LightRows
from vgtui.watch.report import Batch, LayerInfo


class Publishing:
    """Relies on StepHooks for hub, rows, info, status, the pending lists and the clip/lr/skip state."""

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
            layers=self.info or LayerInfo.unknown(),
            status=status or self.status,
            lr=self._step_lr if self._step_lr is not None else self.effective_lr(),
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
