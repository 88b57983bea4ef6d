"""The every-step path of vgtui.watch: per-parameter gradient norms in as few device ops as possible, no sync.

Measured on the 20x64 MLP (2-core x86_64, torch 2.13 CPU, one thread, other work on the box): NormPlan's row
(vgtui.engine.telemetry: a stack of the loss and accuracy, the norms, one cat) cost ~80 us a step with the logged
values converted each step; a step is ~3.2 ms, so that alone was 2.5 %. Here each step does only what must happen
then: one `_foreach_norm` over the tensors whose shape is unique or large, and per group of same-shape tensors one
stack into a kept buffer and one vector_norm (stacking copies: only for tensors up to STACK_MAX elements; a big one
costs more to copy than its own dispatch). The logged loss/accuracy tensors are kept as given. Everything is put
together once per publish (a few stacks and one cat), and the host reorders it (unpack_light).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from vgtui.engine.telemetry import Scratch, group_by_shape

F32 = torch.float32
STACK_MAX = 1 << 16  # elements: same-shape gradients up to this size are stacked and reduced in one op


class LightPlan:
    """Which gradients are reduced together. `pos[i]`: where parameter i's norm lands in a host row of norms."""

    def __init__(self, shapes: Sequence[torch.Size]) -> None:
        self.singles, self.groups, self.pos = group_by_shape(shapes, STACK_MAX)
        self.sizes = [len(idx) for idx, _ in self.groups]
        self.keys = [f"light{k}" for k in range(len(self.groups))]

    def norms(self, grads: list[torch.Tensor], scratch: Scratch) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(0-d norms of the singles, 1-d norms of each group). Call under no_grad."""
        singles = list(torch._foreach_norm([grads[i] for i in self.singles])) if self.singles else []
        groups = []
        for k, (idx, dims) in enumerate(self.groups):
            stacked = scratch.stack(self.keys[k], [grads[i] for i in idx])
            groups.append(torch.linalg.vector_norm(stacked, dim=dims))
        if singles and singles[0].dtype != F32 or groups and groups[0].dtype != F32:  # bf16/fp16 grads: float32
            singles, groups = [s.float() for s in singles], [g.float() for g in groups]
        return singles, groups


@dataclass
class LightLayout:
    """How the packed every-step numbers of one publish lie in the flat array (see LightRows.pack)."""

    k: int
    n_singles: int
    sizes: list[int]
    loss_rows: list[int]  # rows whose loss came as a tensor (their values follow, in order)
    acc_rows: list[int]
    clip_rows: list[int]  # rows measured with vgtui's clipping on (the total it clipped by and the flag follow)
    host_loss: dict[int, float] = field(default_factory=dict)  # rows whose loss came as a Python number
    host_acc: dict[int, float] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return (
            self.k * (self.n_singles + sum(self.sizes))
            + len(self.loss_rows)
            + len(self.acc_rows)
            + 2 * len(self.clip_rows)
        )


class LightRows:
    """The every-step device numbers since the last publish, as produced; packed into one list at publish."""

    def __init__(self, plan: LightPlan) -> None:
        self.plan = plan
        self.clear()

    def clear(self) -> None:
        self.norms: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = []
        self.loss: list[tuple[int, torch.Tensor]] = []
        self.acc: list[tuple[int, torch.Tensor]] = []
        self.clip: list[tuple[int, torch.Tensor, torch.Tensor]] = []
        self.host_loss: dict[int, float] = {}
        self.host_acc: dict[int, float] = {}
        self.k = 0

    def __len__(self) -> int:
        return self.k

    def add(self, norms: tuple[list[torch.Tensor], list[torch.Tensor]], loss: object, acc: object,
            clip: tuple[torch.Tensor, torch.Tensor] | None) -> None:  # fmt: skip
        """One step's numbers. norms: (singles, groups) as LightPlan.norms gives them; loss/acc: a tensor (kept as
        it is), a Python number or None."""
        row = self.k
        self.norms.append(norms)
        for value, tensors, host in ((loss, self.loss, self.host_loss), (acc, self.acc, self.host_acc)):
            if isinstance(value, torch.Tensor):
                tensors.append((row, value))
            elif value is not None:
                host[row] = float(value)  # type: ignore[arg-type]
        if clip is not None:
            self.clip.append((row, *clip))
        self.k += 1

    def pack(self) -> tuple[list[torch.Tensor], LightLayout]:
        """1-d float32 parts (to be concatenated with the rest of a publish) and their layout."""
        parts: list[torch.Tensor] = []
        singles: list[torch.Tensor] = []
        groups: list[list[torch.Tensor]] = [[] for _ in self.plan.groups]
        for norms in self.norms:
            singles.extend(norms[0])
            for kept, g in zip(groups, norms[1], strict=True):
                kept.append(g)
        if singles:
            parts.append(torch.stack(singles))
        for kept in groups:
            if kept:
                parts.append(torch.cat(kept))
        for tensors in (self.loss, self.acc):
            if tensors:
                values = [t for _, t in tensors]
                if not all(t.dim() == 0 and t.dtype == F32 for t in values):  # the usual case needs no conversion
                    values = [scalar(t) for t in values]
                parts.append(torch.stack(values))
        if self.clip:
            parts.append(torch.stack([t for _, t, _ in self.clip]))
            parts.append(torch.stack([c for _, _, c in self.clip]).to(F32))
        layout = LightLayout(self.k, len(self.plan.singles), list(self.plan.sizes), [r for r, _ in self.loss],
                             [r for r, _ in self.acc], [r for r, _, _ in self.clip], dict(self.host_loss),
                             dict(self.host_acc))  # fmt: skip
        return parts, layout


def scalar(t: torch.Tensor) -> torch.Tensor:
    t = t.detach()
    if t.numel() != 1:
        t = t.float().mean()
    return t.reshape(()).to(F32)


def unpack_light(flat: np.ndarray, layout: LightLayout) -> np.ndarray:
    """The (k, 4 + layers) rows [loss, acc, total grad norm, clipped, norms in plan order] from what LightRows.pack
    sent (float64 `flat`, from its first value). The total is over the measured weights (the shown layers); where
    vgtui clipped, over every updated parameter, as clip_grad_norm_ sums it."""
    k, at = layout.k, 0
    blocks = []
    if layout.n_singles:
        blocks.append(flat[: k * layout.n_singles].reshape(k, layout.n_singles))
        at = k * layout.n_singles
    for size in layout.sizes:
        blocks.append(flat[at : at + k * size].reshape(k, size))
        at += k * size
    norms = np.concatenate(blocks, axis=1) if blocks else np.zeros((k, 0))
    head = np.full((k, 4), np.nan)
    head[:, 3] = 0.0
    for col, rows, host in ((0, layout.loss_rows, layout.host_loss), (1, layout.acc_rows, layout.host_acc)):
        head[rows, col] = flat[at : at + len(rows)]
        at += len(rows)
        for row, value in host.items():
            head[row, col] = value
    head[:, 2] = np.sqrt(np.einsum("ij,ij->i", norms, norms))
    if layout.clip_rows:
        n = len(layout.clip_rows)
        head[layout.clip_rows, 2] = flat[at : at + n]
        head[layout.clip_rows, 3] = flat[at + n : at + 2 * n]
    return np.concatenate([head, norms], axis=1)
