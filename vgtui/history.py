"""Bounded run history in numpy ring buffers (no torch).

Every step appends one row. When the buffer is full, every other row is dropped and the
stride doubles, so the whole run stays visible at a coarser resolution and memory never
grows past `capacity` rows.
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
)
MAX_LAYERS = 64
_ROW = {name: j for j, name in enumerate(LAYERWISE)}


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
            self.version += 1

    def append(
        self,
        step: int,
        scalars: dict[str, float],
        layers: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Add one step. Layerwise arrays may be shorter than max_layers (extra layers are cut)."""
        with self._lock:
            keep = self._seen % self._stride == 0
            self._seen += 1
            if not keep:
                return
            if self._n == self.capacity:
                self._compact()
            i = self._n
            self._steps[i] = step
            row = self._scalars[i]
            row[:] = np.nan
            for j, name in enumerate(SCALARS):
                if name in scalars:
                    row[j] = scalars[name]
            lrow = self._layers[i]
            lrow[:] = np.nan
            if layers:
                for j, name in enumerate(LAYERWISE):
                    values = layers.get(name)
                    if values is not None:
                        k = min(len(values), self.max_layers)
                        lrow[j, :k] = values[:k]
                        self._n_layers = max(self._n_layers, k)
            self._n = i + 1
            self.version += 1

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
        with self._lock:
            for i, step in enumerate(np.asarray(steps).tolist()):
                keep = self._seen % self._stride == 0
                self._seen += 1
                if not keep:
                    continue
                if self._n == self.capacity:
                    self._compact()
                r = self._n
                row = light[i]
                self._steps[r] = step
                self._scalars[r] = (row[0], row[1], lr, row[2], row[3])  # SCALARS order
                lrow = self._layers[r]
                lrow[:] = np.nan
                k = min(len(row) - 4, self.max_layers)
                lrow[0, :k] = row[4 : 4 + k]
                n_layers = k
                if extra and step == heavy_step:
                    for j, values in extra:
                        k = min(len(values), self.max_layers)
                        lrow[j, :k] = values[:k]
                        n_layers = max(n_layers, k)
                self._n_layers = max(self._n_layers, n_layers)
                self._n = r + 1
                self.version += 1

    def _compact(self) -> None:
        half = self.capacity // 2
        self._steps[:half] = self._steps[0::2]
        self._scalars[:half] = self._scalars[0::2]
        self._layers[:half] = self._layers[0::2]
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
            steps = self._steps[idx].copy()
            scalars = {name: self._scalars[idx, j].astype(np.float64) for j, name in enumerate(SCALARS)}
            layers = {name: self._layers[idx, j, :nl].astype(np.float64) for j, name in enumerate(LAYERWISE)}
        return HistoryView(steps=steps, scalars=scalars, layers=layers, n_layers=nl)

    def nbytes(self) -> int:
        return self._steps.nbytes + self._scalars.nbytes + self._layers.nbytes
