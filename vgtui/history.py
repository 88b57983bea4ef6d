"""Bounded run history in numpy ring buffers (no torch).

Every step appends one row. When the buffer is full, every other row is dropped and the
stride doubles, so the whole run stays visible at a coarser resolution and memory never
grows past `capacity` rows.

The per-layer statistics other than the gradient norm arrive only every `log_every` steps. So that
decimation cannot drop them all (at a stride of 2 every heavy step can fall on a dropped row), a
dropped row's statistics move to the kept row beside it, and a decimated view takes them from the
last row that has them within each sampled stretch.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

SCALARS = ("loss", "acc", "lr", "grad_total", "clipped")
LAYERWISE = (
    "grad_norm",
    "weight_norm",
    "update_ratio",
    "weight_mean_abs",
    "saturation",
    "dead",
    "gain",
    "gain_product",
    "negative",
    "slope",
)
MAX_LAYERS = 64
_ROW = {name: j for j, name in enumerate(LAYERWISE)}
STATS = slice(1, None)  # the LAYERWISE rows measured every log_every steps (all but grad_norm)


@dataclass(frozen=True)
class HistoryView:
    """A copy of (part of) the history. Layerwise arrays are (rows, n_layers); missing values are NaN."""

    steps: np.ndarray
    scalars: dict[str, np.ndarray]
    layers: dict[str, np.ndarray]
    n_layers: int

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.scalars[name] if name in self.scalars else self.layers[name]


class History:
    """Thread-safe bounded history: the worker appends, the UI takes decimated copies."""

    def __init__(self, capacity: int = 4096, max_layers: int = MAX_LAYERS) -> None:
        if capacity < 4 or capacity % 2:
            raise ValueError("capacity must be an even number >= 4")
        self.capacity = capacity
        self.max_layers = max_layers
        self._lock = threading.Lock()
        self._steps = np.zeros(capacity, dtype=np.int64)
        self._scalars = np.full((capacity, len(SCALARS)), np.nan, dtype=np.float32)
        self._layers = np.full((capacity, len(LAYERWISE), max_layers), np.nan, dtype=np.float32)
        self._has_stats = np.zeros(capacity, dtype=bool)
        self._carry: np.ndarray | None = None  # the statistics of a row the stride skipped
        self._n = 0
        self._stride = 1
        self._seen = 0
        self._n_layers = 0
        self.version = 0  # grows on every change; a UI redraws only when it moved

    @property
    def stride(self) -> int:
        return self._stride

    def __len__(self) -> int:
        return self._n

    def clear(self) -> None:
        with self._lock:
            self._n = 0
            self._stride = 1
            self._seen = 0
            self._n_layers = 0
            self._carry = None
            self.version += 1

    def append(
        self,
        step: int,
        scalars: dict[str, float],
        layers: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Add one step. Layerwise arrays may be shorter than max_layers (extra layers are cut)."""
        given = [(_ROW[name], v) for name, v in (layers or {}).items() if name in _ROW and v is not None]
        with self._lock:
            r = self._slot()
            if r is None:
                self._skip([(j, v) for j, v in given if j])
                return
            self._steps[r] = step
            row = self._scalars[r]
            row[:] = np.nan
            for j, name in enumerate(SCALARS):
                if name in scalars:
                    row[j] = scalars[name]
            self._layers[r] = np.nan
            self._write(r, given)

    def add_rows(
        self,
        steps: np.ndarray,
        light: np.ndarray,
        heavy: dict[str, np.ndarray] | None,
        heavy_step: int,
        lr: float,
    ) -> None:
        """Add a publish worth of steps: light rows are (loss, acc, grad_total, clipped, grad_norm...);
        the heavy per-layer arrays belong to `heavy_step`. Same rows as append() per step, written directly
        (the engine calls this at every publish, up to every step)."""
        extra = [(_ROW[k], v) for k, v in heavy.items() if k in _ROW and v is not None] if heavy else []
        steps = np.asarray(steps)
        with self._lock:
            if self._add_block(steps, light, extra, heavy_step, lr):
                return
            for i, step in enumerate(steps.tolist()):
                stats = extra if extra and step == heavy_step else []
                r = self._slot()
                if r is None:
                    self._skip(stats)
                    continue
                row = light[i]
                self._steps[r] = step
                self._scalars[r] = (row[0], row[1], lr, row[2], row[3])  # SCALARS order
                self._layers[r] = np.nan
                self._write(r, [(0, row[4:]), *stats])

    def _add_block(self, steps: np.ndarray, light: np.ndarray, extra: list[tuple[int, np.ndarray]],
                   heavy_step: int, lr: float) -> bool:  # fmt: skip
        """add_rows' rows written a block at a time, where no compaction falls among them (False: nothing done).
        The same rows as the step-by-step loop: the stride's kept steps, the statistics of a skipped heavy step
        (or of one skipped before) on the next kept row."""
        k = len(steps)
        kept = np.flatnonzero((self._seen + np.arange(k)) % self._stride == 0)
        n_k = len(kept)
        if self._n + n_k > self.capacity:
            return False
        dst = slice(self._n, self._n + n_k)
        rows = light[kept]
        self._steps[dst] = steps[kept]
        self._scalars[dst, 2] = lr
        self._scalars[dst, [0, 1, 3, 4]] = rows[:, :4]  # SCALARS order: loss, acc, (lr), grad_total, clipped
        layers = self._layers[dst]
        layers[:] = np.nan
        nl = min(rows.shape[1] - 4, self.max_layers) if n_k else 0
        layers[:, 0, :nl] = rows[:, 4 : 4 + nl]
        self._has_stats[dst] = False
        hits = np.flatnonzero(steps == heavy_step) if extra else []
        carry, h = self._carry, (int(hits[0]) if len(hits) else None)
        if carry is not None and n_k and (h is None or kept[0] < h):
            layers[0, STATS] = carry[STATS]  # a step skipped before this publish: on its first kept row
            self._has_stats[self._n] = True
        carry_out = carry if not n_k else None
        if h is not None:
            j = int(np.searchsorted(kept, h))  # h itself, or the next kept step after it
            if j < n_k:
                nl = max(nl, _fill(layers[j], extra, self.max_layers))
                self._has_stats[self._n + j] = True
            else:
                carry_out = np.full((len(LAYERWISE), self.max_layers), np.nan, dtype=np.float32)
                nl = max(nl, _fill(carry_out, extra, self.max_layers))
        self._carry = carry_out
        self._n_layers = max(self._n_layers, nl)
        self._seen += k
        self._n += n_k
        self.version += 1
        return True

    def _slot(self) -> int | None:
        """The row for the next step, or None where the stride skips it (compacting first when full)."""
        keep = self._seen % self._stride == 0
        self._seen += 1
        if not keep:
            return None
        if self._n == self.capacity:
            self._compact()
        return self._n

    def _skip(self, stats: list[tuple[int, np.ndarray]]) -> None:
        """A skipped step: keep its statistics for the next kept row."""
        if stats:
            carry = np.full((len(LAYERWISE), self.max_layers), np.nan, dtype=np.float32)
            self._n_layers = max(self._n_layers, _fill(carry, stats, self.max_layers))
            self._carry = carry

    def _write(self, r: int, values: list[tuple[int, np.ndarray]]) -> None:
        """Fill row r's layerwise values (already NaN) and make it visible."""
        lrow = self._layers[r]
        self._n_layers = max(self._n_layers, _fill(lrow, values, self.max_layers))
        has = any(j for j, _ in values)
        if not has and self._carry is not None:
            lrow[STATS] = self._carry[STATS]
            has = True
        self._carry = None
        self._has_stats[r] = has
        self._n = r + 1
        self.version += 1

    def _compact(self) -> None:
        half = self.capacity // 2
        move = ~self._has_stats[0::2] & self._has_stats[1::2]  # a dropped row's statistics go to its kept twin
        kept = self._layers[0::2]
        kept[move, STATS] = self._layers[1::2][move, STATS]
        self._has_stats[0::2] |= move
        self._steps[:half] = self._steps[0::2]
        self._scalars[:half] = self._scalars[0::2]
        self._layers[:half] = kept
        self._has_stats[:half] = self._has_stats[0::2]
        self._n = half
        self._stride *= 2
        self._seen = 0

    def view(self, max_points: int | None = None, last: int | None = None) -> HistoryView:
        """Copy the history, optionally only the `last` rows and at most `max_points` rows (evenly spaced)."""
        with self._lock:
            n = self._n
            start = 0 if last is None else max(0, n - last)
            idx = np.arange(start, n)
            if max_points is not None and len(idx) > max_points > 0:
                idx = idx[np.linspace(0, len(idx) - 1, max_points).round().astype(int)]
            nl = self._n_layers
            # the statistics of each sampled row: its own, else the last row that has them since the previous sample
            has = np.flatnonzero(self._has_stats[start:n]) + start
            last = has[np.searchsorted(has, idx, side="right") - 1] if len(has) else idx
            prev = np.r_[start - 1, idx[:-1]]
            sidx = np.where((last > prev) & (last <= idx), last, idx) if len(idx) else idx
            steps = self._steps[idx].copy()
            scalars = {name: self._scalars[idx, j].astype(np.float64) for j, name in enumerate(SCALARS)}
            layers = {
                name: self._layers[sidx if j else idx, j, :nl].astype(np.float64) for j, name in enumerate(LAYERWISE)
            }
        return HistoryView(steps=steps, scalars=scalars, layers=layers, n_layers=nl)

    def nbytes(self) -> int:
        return self._steps.nbytes + self._scalars.nbytes + self._layers.nbytes + self._has_stats.nbytes


def _fill(block: np.ndarray, values: list[tuple[int, np.ndarray]], max_layers: int) -> int:
    """Write (LAYERWISE index, per-layer values) into a (len(LAYERWISE), max_layers) block; the most layers written."""
    most = 0
    for j, v in values:
        k = min(len(v), max_layers)
        block[j, :k] = v[:k]
        most = max(most, k)
    return most
