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

from collections.abc import Callable, Sequence
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

    def stack(self, key: str, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        """torch.stack(tensors) written into this key's buffer. Call under no_grad (out= refuses autograd)."""
        first = tensors[0]
        sig = (len(tensors), first.shape, first.dtype, first.device)
        held = self._bufs.get(key)
        if held is None or held[0] != sig:
            held = self._bufs[key] = (sig, torch.empty((len(tensors), *first.shape), dtype=first.dtype,
                                                       device=first.device))  # fmt: skip
        return torch.stack(tensors, out=held[1])

    def nbytes(self) -> int:
        return sum(buf.numel() * buf.element_size() for _, buf in self._bufs.values())


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


@dataclass(frozen=True)
class HeavyLayout:
    """What heavy_tensor packed, and the host-side denominators to finish the statistics with."""

    numel: np.ndarray  # elements per weight (mean |w| = sum |w| / numel)
    update_scale: float | None  # ||dW|| = update_scale * the norm sent; None: no update norms sent
    sat: str  # "layers": per-layer count of saturated units | "rnn": one count for the hidden states | "zero" | "nan"
    sat_den: float  # elements the saturation counts are out of
    dead: str  # "layers": per-layer count of dead units | "zero" | "nan"
    dead_den: float
    n_hidden: int  # gradient norms of h_0 .. h_L sent (the gains come from them); 0: gains are NaN
    hist: bool  # histogram counts sent (else zeros: the layer has no gradient yet)
    n_time: int  # RNN: gradient norm per time step


def heavy_tensor(kind: str, activation: str, weights: list[torch.Tensor], update: Sequence[torch.Tensor] | None,
                 update_scale: float, trace: Trace, hist_layer: int,
                 scratch: Scratch) -> tuple[torch.Tensor, HeavyLayout]:  # fmt: skip
    """All heavy statistics of this step packed in one flat device tensor, and how to unpack it.

    update: per weight, a tensor whose norm times `update_scale` is ||W_new - W_old|| of this step (None: unknown).
    """
    with torch.no_grad():
        return _heavy(kind, activation, weights, update, update_scale, trace, hist_layer, scratch)


def _heavy(kind: str, activation: str, weights: list[torch.Tensor], update: Sequence[torch.Tensor] | None,
           update_scale: float, trace: Trace, hist_layer: int,
           scratch: Scratch) -> tuple[torch.Tensor, HeavyLayout]:  # fmt: skip
    n = len(weights)
    vecs = list(update) if update is not None else []
    shape = weights[0].shape
    if all(w.shape == shape for w in weights):  # MLP blocks: one stack, one norm for weights and updates
        stacked = scratch.stack("weights", [*weights, *vecs])
        dims = tuple(range(1, stacked.dim()))
        parts = [torch.linalg.vector_norm(stacked, dim=dims), stacked[:n].abs_().sum(dim=dims)]
    else:
        parts = [torch.stack([*torch._foreach_norm([*weights, *vecs]), *torch._foreach_norm(weights, 1)])]
    sat, sat_den, dead, dead_den, n_hidden, n_time = "nan", 1.0, "nan", 1.0, 0, 0
    if kind == "mlp" and trace.acts:
        sat, dead = "zero", "zero"
        if activation in ("sigmoid", "tanh", "relu"):
            acts = scratch.stack("acts", trace.acts)  # (L, B, W), our copy: in place from here on
            sat_den, dead_den = float(acts.shape[1] * acts.shape[2]), float(acts.shape[2])
            if activation == "sigmoid":
                parts.append(acts.sub_(0.5).abs_().gt_(SIGMOID_SAT).sum(dim=(1, 2)))
                sat = "layers"
            elif activation == "tanh":
                parts.append(acts.abs_().gt_(TANH_SAT).sum(dim=(1, 2)))
                sat = "layers"
            else:  # a unit is dead when its output is <= 0 for the whole batch
                parts.append(acts.amax(dim=1).le_(0).sum(dim=1))
                dead = "layers"
        parts.append(_norms(scratch, "hidden_grad", [_grad(h) for h in trace.hidden]))  # h_0 .. h_L
        n_hidden = len(trace.hidden)
    elif trace.hidden:
        hs = scratch.stack("hidden", trace.hidden)  # (T, B, H)
        sat, sat_den = "rnn", float(hs.numel())
        parts.append(hs.abs_().gt_(TANH_SAT).sum().reshape(1))
        n_time = len(trace.hidden)
    g = weights[min(max(hist_layer, 0), n - 1)].grad
    if g is not None:  # log10 |g| (0 -> -inf -> clamped into the first bin)
        logs = g.abs().float().log10_().clamp_(HIST_LO, HIST_HI)
        parts.append(torch.histc(logs, bins=HIST_BINS, min=HIST_LO, max=HIST_HI))
    if n_time:
        parts.append(_norms(scratch, "hidden_grad", [_grad(h) for h in trace.hidden]))
    layout = HeavyLayout(
        numel=np.array([w.numel() for w in weights], dtype=np.float64),
        update_scale=update_scale if update is not None else None,
        sat=sat,
        sat_den=sat_den,
        dead=dead,
        dead_den=dead_den,
        n_hidden=n_hidden,
        hist=g is not None,
        n_time=n_time,
    )
    return torch.cat(parts), layout


def _norms(scratch: Scratch, key: str, tensors: list[torch.Tensor]) -> torch.Tensor:
    """Norm of each tensor: stacked and reduced in one op when they share a shape."""
    shape = tensors[0].shape
    if all(t.shape == shape for t in tensors):
        stacked = scratch.stack(key, tensors)
        return torch.linalg.vector_norm(stacked, dim=tuple(range(1, stacked.dim())))
    return torch.stack(torch._foreach_norm(tensors))


def _grad(h: torch.Tensor) -> torch.Tensor:
    return h.grad if h.grad is not None else torch.zeros_like(h)


def unpack_heavy(flat: np.ndarray, layout: HeavyLayout) -> HeavyStats:
    """Split the flat array from heavy_tensor into named per-layer arrays, finishing the divisions."""
    f = flat.astype(np.float64)
    n = len(layout.numel)
    at = 0

    def take(k: int) -> np.ndarray:
        nonlocal at
        at += k
        return f[at - k : at]

    nan = np.full(n, np.nan)
    with np.errstate(all="ignore"):
        weight_norm = take(n)
        if layout.update_scale is None:
            ratio = nan.copy()
        else:
            ratio = take(n) * layout.update_scale / np.maximum(weight_norm, 1e-30)
        mean_abs = take(n) / layout.numel
        sat = _part(layout.sat, n, take, layout.sat_den)
        dead = _part(layout.dead, n, take, layout.dead_den)
        if layout.n_hidden:
            hg = take(layout.n_hidden)
            gain = hg[:-1] / np.maximum(hg[1:], 1e-38)
            product = hg[:-1] / np.maximum(hg[-1], 1e-38)
        else:
            gain, product = nan.copy(), nan.copy()
    counts = take(HIST_BINS) if layout.hist else np.zeros(HIST_BINS)
    tgn = take(layout.n_time) if layout.n_time else None
    return HeavyStats(weight_norm, ratio, mean_abs, sat, dead, gain, product, counts, tgn)


def _part(mode: str, n: int, take: Callable[[int], np.ndarray], den: float) -> np.ndarray:
    """Saturation or dead fraction per layer from what heavy_tensor sent."""
    if mode == "layers":
        return take(n) / den
    if mode == "zero":
        return np.zeros(n)
    out = np.full(n, np.nan)
    if mode == "rnn":
        out[RNN_SAT_LAYER] = take(1)[0] / den
    return out
