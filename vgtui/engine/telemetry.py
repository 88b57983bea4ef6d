"""Gradient telemetry in a few fused tensor ops, kept on the device until one host transfer per publish.

Costs that shaped this module (2-core x86_64, torch 2.13 CPU, one intra-op thread):
- every torch op costs ~4-7 us of dispatch whatever its size, and `_foreach_norm` ~1.2 us per tensor
  (a per-tensor loop on CPU): 20 weights through `_foreach_norm` take 24 us, stacked and reduced in
  one `vector_norm` 15 us. So tensors of one shape are stacked and reduced together.
- the tiny per-layer divisions (update ratio, mean |w|, saturation fraction, gains) cost one op each
  on the device and nothing in numpy: the device sends numerators and denominators, unpack_heavy divides.
- a fresh stack of 20 (128, 64) activations is 656 KB, above glibc's mmap threshold: depending on the
  heap's history it was mmapped, page-faulted in and unmapped again every step (stack 107 -> 21 us,
  saturation 177 -> 43 us when the memory stays). So big stacks go into buffers kept across steps
  (Scratch) and are then modified in place: no large tensor is allocated per step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vgtui.contract import HIST_BINS, HIST_EDGES, HIST_HI, HIST_LO  # noqa: F401 - re-exported
from vgtui.engine.models import Trace

SIGMOID_SAT = 0.4899  # |a - 0.5| > this  <=>  a(1 - a) < 0.01
TANH_SAT = 0.99499  # |a| > this  <=>  1 - a^2 < 0.01
RNN_SAT_LAYER = 2  # RNN hidden-state saturation is shown at the recurrent weight (W_hh)


class Scratch:
    """Device buffers reused across steps, one per key, reallocated only when the stacked shape changes."""

    def __init__(self) -> None:
        self._bufs: dict[str, tuple[tuple, torch.Tensor]] = {}
        self.layouts: dict[tuple, HeavyLayout] = {}  # heavy_tensor's, by what it sent

    def stack(self, key: str, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        """torch.stack(tensors) written into this key's buffer. Call under no_grad (out= refuses autograd)."""
        first = tensors[0]
        sig = (len(tensors), first.shape, first.dtype, first.device)
        held = self._bufs.get(key)
        if held is None or held[0] != sig:
            held = self._bufs[key] = (sig, torch.empty((len(tensors), *first.shape), dtype=first.dtype,
                                                       device=first.device))  # fmt: skip
        return torch.stack(tensors, out=held[1])


class NormPlan:
    """L2 norms of a list of tensors with fixed shapes, in a few ops.

    Tensors that share a shape are stacked into one reused buffer and reduced by one vector_norm; the
    rest go through one `_foreach_norm`. `pos[i]` is where tensor i's norm lands in norms()' output.
    """

    def __init__(self, shapes: Sequence[torch.Size], key: str) -> None:
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, shape in enumerate(shapes):
            by_shape.setdefault(tuple(shape), []).append(i)
        self.key = key
        self.singles: list[int] = []
        self.groups: list[tuple[list[int], tuple[int, ...]]] = []  # (indices, dims to reduce)
        for shape, idx in by_shape.items():
            if len(idx) > 1 and shape:
                self.groups.append((idx, tuple(range(1, len(shape) + 1))))
            else:
                self.singles.extend(idx)
        order = self.singles + [i for idx, _ in self.groups for i in idx]
        self.pos = np.empty(len(order), dtype=np.intp)
        self.pos[order] = np.arange(len(order))

    def norms(self, tensors: Sequence[torch.Tensor], scratch: Scratch,
              head: Sequence[torch.Tensor] = ()) -> torch.Tensor:  # fmt: skip
        """1-D: the 0-d tensors of `head`, then the norms of `tensors` in plan order. Call under no_grad."""
        scalars = list(head)
        if self.singles:
            scalars.extend(torch._foreach_norm([tensors[i] for i in self.singles]))
        parts = [torch.stack(scalars)] if scalars else []
        for k, (idx, dims) in enumerate(self.groups):
            stacked = scratch.stack(f"{self.key}{k}", [tensors[i] for i in idx])
            parts.append(torch.linalg.vector_norm(stacked, dim=dims))
        return parts[0] if len(parts) == 1 else torch.cat(parts)


@dataclass
class HeavyStats:
    """Per-layer statistics of one step, as numpy arrays after the host transfer."""

    weight_norm: np.ndarray
    update_ratio: np.ndarray
    weight_mean_abs: np.ndarray
    saturation: np.ndarray
    dead: np.ndarray
    gain: np.ndarray
    gain_product: np.ndarray
    hist_counts: np.ndarray
    time_grad_norm: np.ndarray | None


@dataclass
class HeavyLayout:
    """How to finish the heavy statistics on the host in one gather-divide (a few numpy calls, not one per field).

    With `ext` = what the device sent followed by `consts`, value j of the output is
    ext[num[j]] / (max(ext[den[j]], floor[j]) * mult[j]); `fields` slices the output into HeavyStats.
    """

    sent: int  # values the device sends
    consts: np.ndarray  # 1, 0, NaN, then the denominators known up front (elements per weight, ...)
    num: np.ndarray
    den: np.ndarray
    floor: np.ndarray
    mult: np.ndarray  # 1, or 1 / update scale on the update ratio (set at each unpack)
    ratio: slice | None  # the update ratio's values, None if no update norms were sent
    fields: tuple[tuple[str, int, int], ...]  # HeavyStats field, start, stop


def heavy_tensor(kind: str, activation: str, weights: list[torch.Tensor], update: Sequence[torch.Tensor] | None,
                 trace: Trace, hist_layer: int, scratch: Scratch) -> tuple[torch.Tensor, HeavyLayout]:  # fmt: skip
    """All heavy statistics of this step packed in one flat device tensor, and how to unpack it.

    update: per weight, a tensor whose norm is ||W_new - W_old|| of this step up to a factor given to
    unpack_heavy (None: unknown). Call Scratch.layouts.clear() when the weights change.
    """
    with torch.no_grad():
        return _heavy(kind, activation, weights, update, trace, hist_layer, scratch)


def _heavy(kind: str, activation: str, weights: list[torch.Tensor], update: Sequence[torch.Tensor] | None,
           trace: Trace, hist_layer: int, scratch: Scratch) -> tuple[torch.Tensor, HeavyLayout]:  # fmt: skip
    n = len(weights)
    vecs = list(update) if update is not None else []
    if kind == "mlp":  # the blocks share a shape: one stack and one norm for weights and updates
        stacked = scratch.stack("weights", [*weights, *vecs])
        dims = tuple(range(1, stacked.dim()))
        parts = [torch.linalg.vector_norm(stacked, dim=dims), stacked[:n].abs_().sum(dim=dims)]
    else:  # RNN: four weights of three shapes
        parts = [torch.stack([*torch._foreach_norm([*weights, *vecs]), *torch._foreach_norm(weights, 1)])]
    sat, sat_den, dead, dead_den = "nan", 1.0, "nan", 1.0
    hidden = trace.hidden
    if kind == "mlp" and trace.acts:
        sat, dead = "zero", "zero"
        if activation in ("sigmoid", "tanh", "relu"):
            acts = scratch.stack("acts", trace.acts)  # (L, B, W), our copy: in place from here on
            sat_den, dead_den = float(acts.shape[1] * acts.shape[2]), float(acts.shape[2])
            if activation == "sigmoid":
                parts.append(acts.sub_(0.5).abs_().gt_(SIGMOID_SAT).sum(dim=(1, 2)))
                sat = "sent"
            elif activation == "tanh":
                parts.append(acts.abs_().gt_(TANH_SAT).sum(dim=(1, 2)))
                sat = "sent"
            else:  # a unit is dead when its output is <= 0 for the whole batch
                parts.append(acts.amax(dim=1).le_(0).sum(dim=1))
                dead = "sent"
        grads = [h.grad if h.grad is not None else torch.zeros_like(h) for h in hidden]
        parts.append(_norms(scratch, "hidden_grad", grads))  # h_0 .. h_L
        n_hidden, n_time = len(hidden), 0
    else:
        n_hidden, n_time = 0, len(hidden)
        if hidden:
            hs = scratch.stack("hidden", hidden)  # (T, B, H)
            sat, sat_den = "rnn", float(hs.numel())
            parts.append(hs.abs_().gt_(TANH_SAT).sum().reshape(1))
    g = weights[min(max(hist_layer, 0), n - 1)].grad
    if g is not None:  # log10 |g| (0 -> -inf -> clamped into the first bin)
        logs = g.abs().float().log10_().clamp_(HIST_LO, HIST_HI)
        parts.append(torch.histc(logs, bins=HIST_BINS, min=HIST_LO, max=HIST_HI))
    if n_time:
        parts.append(
            _norms(scratch, "hidden_grad", [h.grad if h.grad is not None else torch.zeros_like(h) for h in hidden])
        )
    key = (kind, update is not None, sat, sat_den, dead, dead_den, n_hidden, g is not None, n_time)
    layout = scratch.layouts.get(key)
    if layout is None:
        layout = scratch.layouts[key] = _layout(weights, key)
    return torch.cat(parts), layout


def _layout(weights: list[torch.Tensor], key: tuple) -> HeavyLayout:
    """The gather-divide plan for what _heavy sent (in this order): per-layer weight norms, [update norms],
    sums of |w|, [saturated counts], [dead counts], [RNN saturated count], [hidden gradient norms h_0..h_L],
    [histogram counts], [gradient norm per time step]."""
    _, has_update, sat, sat_den, dead, dead_den, n_hidden, hist, n_time = key
    n = len(weights)
    at = 0

    def block(k: int) -> int:
        nonlocal at
        at += k
        return at - k

    w_at = block(n)
    u_at = block(n) if has_update else -1
    abs_at = block(n)
    sat_at = block(n) if sat == "sent" else -1
    dead_at = block(n) if dead == "sent" else -1
    rnn_at = block(1) if sat == "rnn" else -1
    h_at = block(n_hidden)
    c_at = block(HIST_BINS) if hist else -1
    t_at = block(n_time)
    one, zero, nan, numel_at = at, at + 1, at + 2, at + 3
    sat_den_at, dead_den_at = numel_at + n, numel_at + n + 1
    consts = np.array([1.0, 0.0, np.nan, *(w.numel() for w in weights), sat_den, dead_den])
    num: list[int] = []
    den: list[int] = []
    floor: list[float] = []
    fields: list[tuple[str, int, int]] = []

    def field(name: str, nums: list[int], dens: list[int] | int = one, low: float = 0.0) -> None:
        dens = dens if isinstance(dens, list) else [dens] * len(nums)
        fields.append((name, len(num), len(num) + len(nums)))
        num.extend(nums)
        den.extend(dens)
        floor.extend([low] * len(nums))

    def per_layer(name: str, mode: str, start: int, den_at: int) -> None:
        if mode == "sent":
            field(name, [start + j for j in range(n)], den_at)
        elif mode == "rnn":
            field(name, [rnn_at if j == RNN_SAT_LAYER else nan for j in range(n)], den_at)
        else:
            field(name, [zero if mode == "zero" else nan] * n)

    field("weight_norm", [w_at + j for j in range(n)])
    if has_update:  # scale * ||dW|| / max(||W||, 1e-30)
        field("update_ratio", [u_at + j for j in range(n)], [w_at + j for j in range(n)], 1e-30)
    else:
        field("update_ratio", [nan] * n)
    field("weight_mean_abs", [abs_at + j for j in range(n)], [numel_at + j for j in range(n)])
    per_layer("saturation", sat, sat_at, sat_den_at)
    per_layer("dead", dead, dead_at, dead_den_at)
    if n_hidden:  # gain_i = |g h_i| / |g h_i+1|, product_i = |g h_i| / |g h_L|
        field("gain", [h_at + j for j in range(n_hidden - 1)], [h_at + j + 1 for j in range(n_hidden - 1)], 1e-38)
        field("gain_product", [h_at + j for j in range(n_hidden - 1)], h_at + n_hidden - 1, 1e-38)
    else:
        field("gain", [nan] * n)
        field("gain_product", [nan] * n)
    field("hist_counts", [c_at + j for j in range(HIST_BINS)] if hist else [zero] * HIST_BINS)
    field("time_grad_norm", [t_at + j for j in range(n_time)])
    ratio = slice(*fields[1][1:]) if has_update else None
    return HeavyLayout(at, consts, np.array(num), np.array(den), np.array(floor), np.ones(len(num)), ratio,
                       tuple(fields))  # fmt: skip


def _norms(scratch: Scratch, key: str, tensors: list[torch.Tensor]) -> torch.Tensor:
    """Norm of each tensor: stacked and reduced in one op when they share a shape."""
    try:
        stacked = scratch.stack(key, tensors)
    except RuntimeError:
        return torch.stack(torch._foreach_norm(tensors))
    return torch.linalg.vector_norm(stacked, dim=tuple(range(1, stacked.dim())))


def unpack_heavy(flat: np.ndarray, layout: HeavyLayout, update_scale: float = 1.0) -> HeavyStats:
    """Finish the statistics from the float64 array heavy_tensor sent: one gather-divide, sliced into fields.

    update_scale: ||W_new - W_old|| = update_scale * the update norm sent (e.g. the SGD learning rate).
    """
    return unpack_heavy_rows(flat.reshape(1, -1), layout, update_scale)[0]


def unpack_heavy_rows(flat: np.ndarray, layout: HeavyLayout, update_scale: float = 1.0) -> list[HeavyStats]:
    """unpack_heavy() for several steps at once: `flat` is (steps, layout.sent), all sent with this layout."""
    ext = np.empty((len(flat), layout.sent + len(layout.consts)))
    ext[:, : layout.sent] = flat
    ext[:, layout.sent :] = layout.consts
    if layout.ratio is not None:
        layout.mult[layout.ratio] = 1.0 / update_scale
    with np.errstate(all="ignore"):
        out = ext[:, layout.num] / (np.maximum(ext[:, layout.den], layout.floor) * layout.mult)
    fields = layout.fields
    rows = []
    for values in out:
        stats = {name: values[a:b] for name, a, b in fields}
        if not len(stats["time_grad_norm"]):
            stats["time_grad_norm"] = None
        rows.append(HeavyStats(**stats))
    return rows
