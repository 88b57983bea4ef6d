"""What a Session last heard from its Trainer: the newest per-step numbers, the newest per-layer statistics
and the steps/s rate, turned into the Snapshot fields that carry them."""

from __future__ import annotations

import math
import time

import numpy as np

from vgtui.engine.telemetry import HIST_BINS, HeavyStats
from vgtui.engine.trainer import Published

RATE_WINDOW_S = 0.5  # steps/s is measured over at least this long, then smoothed


def heavy_dict(pub: Published) -> dict[str, np.ndarray] | None:
    """The per-layer heavy statistics of a publish as plain arrays (what History stores)."""
    h = pub.heavy
    if h is None:
        return None
    return {
        "weight_norm": h.weight_norm,
        "update_ratio": h.update_ratio,
        "weight_mean_abs": h.weight_mean_abs,
        "saturation": h.saturation,
        "dead": h.dead,
        "negative": h.negative,
        "slope": h.slope,
        "gain": h.gain,
        "gain_product": h.gain_product,
    }


class Latest:
    """The newest values of a run and its training speed."""

    def __init__(self) -> None:
        self.step = 0
        self.loss = math.nan
        self.acc = math.nan
        self.grad_total = math.nan
        self.clipped = False
        self.grad_norm: np.ndarray | None = None
        self.grad_step = 0  # the step grad_norm was measured at (earlier than `step` only after a divergence)
        self.heavy: HeavyStats | None = None
        self.heavy_step = 0
        self.rate = 0.0
        self._rate_mark: tuple[float, int] | None = None

    def absorb(self, pub: Published) -> None:
        """Take the last row (and the statistics, if any) of a publish."""
        self.step = int(pub.steps[-1])
        self.loss, self.acc, self.grad_total, clipped = pub.light[-1, :4].tolist()
        self.clipped = clipped > 0.5
        # per-layer numbers: the newest finite ones, so that a diverged run keeps showing the explosion that led
        # to it (its last finite gradients and chain rule) rather than a screen of NaN
        grads = pub.light[:, 4:]
        finite = np.isfinite(grads).all(axis=1)
        if finite[-1] or self.grad_norm is None or len(self.grad_norm) != grads.shape[1]:
            self.grad_norm, self.grad_step = grads[-1].copy(), self.step
        elif finite.any():
            row = np.flatnonzero(finite)[-1]
            self.grad_norm, self.grad_step = grads[row].copy(), int(pub.steps[row])
        h = pub.heavy  # taken at the last row's step: kept only while that step's loss and gradients are finite
        if h is not None and (
            self.heavy is None
            or len(h.weight_norm) != len(self.heavy.weight_norm)
            or np.isfinite(pub.light[-1, :3:2]).all()
            and finite[-1]
        ):
            self.heavy, self.heavy_step = h, pub.heavy_step

    def update_rate(self, running: bool) -> None:
        """Steps/s since the last mark, smoothed; the measurement restarts after a pause."""
        now = time.perf_counter()
        if self._rate_mark is not None:
            t0, s0 = self._rate_mark
            if now - t0 >= RATE_WINDOW_S:
                inst = (self.step - s0) / (now - t0)
                self.rate = inst if self.rate == 0 else 0.5 * self.rate + 0.5 * inst
                self._rate_mark = (now, self.step)
        else:
            self._rate_mark = (now, self.step)
        if not running:
            self._rate_mark = None

    def snapshot_fields(self, n_layers: int) -> dict:
        """The Snapshot fields of the newest values for a model of `n_layers` shown layers (NaN where unknown,
        e.g. statistics taken before a depth change)."""
        heavy = self.heavy if self.heavy is not None and len(self.heavy.weight_norm) == n_layers else None
        grad = self.grad_norm if self.grad_norm is not None and len(self.grad_norm) == n_layers else None
        nan = np.full(n_layers, np.nan)
        return {
            "loss": self.loss,
            "acc": self.acc,
            "grad_total": self.grad_total,
            "clipped": self.clipped,
            "grad_norm": grad if grad is not None else nan,
            "weight_norm": heavy.weight_norm if heavy else nan,
            "update_ratio": heavy.update_ratio if heavy else nan,
            "weight_mean_abs": heavy.weight_mean_abs if heavy else nan,
            "saturation": heavy.saturation if heavy else nan,
            "dead": heavy.dead if heavy else nan,
            "negative": heavy.negative if heavy else nan,
            "slope": heavy.slope if heavy else nan,
            "gain": heavy.gain if heavy else nan,
            "gain_product": heavy.gain_product if heavy else nan,
            "hist_counts": heavy.hist_counts if heavy else np.zeros(HIST_BINS),
            "time_grad_norm": heavy.time_grad_norm if heavy else None,
            "time_cell_grad_norm": heavy.time_cell_grad_norm if heavy else None,
            "stats_step": self.heavy_step,
            "grad_step": self.grad_step if grad is not None else self.step,
        }
