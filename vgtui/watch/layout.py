"""The shapes of a publish that the host reads: how the every-step numbers lie in the flat array, and how to read a
heavy step's tensor. No torch: the hub process (vgtui.watch.hubproc) unpacks them without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ActMeta:
    """What the host needs to turn an activation's three device numbers into statistics."""

    kind: str
    numel: int
    units: int
    leak: float = 0.0


@dataclass
class HeavyMeta:
    """How to read one heavy step's tensor on the host."""

    n_layers: int
    acts: list[ActMeta | None]
    hist: bool
    n_blocks: int
    copied: bool  # the weights were copied before the step (else the update size is unknown)
    size: int = 0


@dataclass
class LightLayout:
    """How the packed every-step numbers of one publish lie in the flat array (see LightRows.pack)."""

    k: int
    n: int  # norms per row
    loss_rows: list[int]  # rows whose loss came as a tensor (their values follow, in order)
    acc_rows: list[int]
    clip_rows: list[int]  # rows measured with vgtui's clipping on (the total it clipped by and the flag follow)
    host_loss: dict[int, float] = field(default_factory=dict)  # rows whose loss came as a Python number
    host_acc: dict[int, float] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.k * self.n + len(self.loss_rows) + len(self.acc_rows) + 2 * len(self.clip_rows)


def unpack_light(flat: np.ndarray, layout: LightLayout) -> np.ndarray:
    """The (k, 4 + layers) rows [loss, acc, total grad norm, clipped, norms in layer order] from what LightRows.pack
    sent (float64 `flat`, from its first value). The total is over the measured weights (the shown layers); where
    vgtui clipped, over every updated parameter, as clip_grad_norm_ sums it."""
    k, n = layout.k, layout.n
    norms = flat[: k * n].reshape(k, n)
    at = k * n
    head = np.full((k, 4), np.nan)
    head[:, 3] = 0.0
    for col, rows, host in ((0, layout.loss_rows, layout.host_loss), (1, layout.acc_rows, layout.host_acc)):
        head[rows, col] = flat[at : at + len(rows)]
        at += len(rows)
        for row, value in host.items():
            head[row, col] = value
    head[:, 2] = np.sqrt(np.einsum("ij,ij->i", norms, norms))
    if layout.clip_rows:
        m = len(layout.clip_rows)
        head[layout.clip_rows, 2] = flat[at : at + m]
        head[layout.clip_rows, 3] = flat[at + m : at + 2 * m]
    return np.concatenate([head, norms], axis=1)
