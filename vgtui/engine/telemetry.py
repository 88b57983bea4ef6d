"""Gradient telemetry in a few fused tensor ops, kept on the device until one host transfer per publish.

Costs that shaped this module (2-core x86_64, torch 2.13 CPU, one intra-op thread):
- every torch op costs ~4-7 us of dispatch whatever its size, and `_foreach_norm` ~1.2 us per tensor
  (a per-tensor loop on CPU): 20 weights through `_foreach_norm` take 24 us, stacked and reduced in
  one `vector_norm` 15 us. So tensors of one shape are stacked and reduced together.
- the tiny per-layer divisions (update ratio, mean |w|, saturation fraction, gains) cost one op each
  on the device and nothing in numpy: the device sends numerators and denominators, unpack_heavy divides
  (and adds a constant where a statistic is affine in a sum, e.g. the sigmoid's mean slope 0.25 - mean (a-0.5)^2).
- a fresh stack of 20 (128, 64) activations is 656 KB, above glibc's mmap threshold: depending on the
  heap's history it was mmapped, page-faulted in and unmapped again every step (stack 107 -> 21 us,
  saturation 177 -> 43 us when the memory stays). So big stacks go into buffers kept across steps
  (Scratch) and are then modified in place: no large tensor is allocated per step.
- the update ratio is the change float32 really made, so heavy steps copy the shown weights before opt.step
  (20 64x64 weights: one stack into a kept buffer, ~45 us) and reduce after | before | change in one vector_norm;
  with the slope's sum of squares (~20 us) a heavy step of deep-sigmoid 20x64 costs ~50-75 us more than when the
  ratio was lr * ||v|| (best-of-60 step time 3.41-3.47 -> 3.49-3.52 ms at log_every=1): ~2%, ~0.2% at log_every=10.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vgtui.contract import HIST_BINS, HIST_EDGES, HIST_HI, HIST_LO  # noqa: F401 - re-exported
from vgtui.engine.models import Trace

SIGMOID_SAT = 0.4899  # |a - 0.5| > this  <=>  a(1 - a) < 0.01
TANH_SAT = 0.99499  # |a| > this  <=>  1 - a^2 < 0.01
RNN_SAT_LAYER = 2  # RNN hidden-state saturation and slope are shown at the recurrent weight (W_hh)
ACT_FIELDS = ("saturation", "dead", "negative", "slope")  # statistics of the activations (NaN where undefined)


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

    def buffer(self, key: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """An uninitialised buffer of `shape` with `like`'s dtype and device, the same one on every call."""
        sig = (shape, like.dtype, like.device)
        held = self._bufs.get(key)
        if held is None or held[0] != sig:
            held = self._bufs[key] = (sig, torch.empty(shape, dtype=like.dtype, device=like.device))
        return held[1]


def group_by_shape(shapes: Sequence[torch.Size], max_numel: int | None = None,
                   ) -> tuple[list[int], list[tuple[list[int], tuple[int, ...]]], np.ndarray]:  # fmt: skip
    """How to take the norms of tensors of these shapes in few ops: the indices norm'd one by one (`singles`), the
    groups of two or more same-shape tensors (at most `max_numel` elements each) stacked and reduced together, with
    the dims to reduce, and `pos[i]`, where tensor i's norm lands (singles first, then the groups in order)."""
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, shape in enumerate(shapes):
        by_shape.setdefault(tuple(shape), []).append(i)
    singles: list[int] = []
    groups: list[tuple[list[int], tuple[int, ...]]] = []
    for shape, idx in by_shape.items():
        if len(idx) > 1 and shape and (max_numel is None or math.prod(shape) <= max_numel):
            groups.append((idx, tuple(range(1, len(shape) + 1))))
        else:
            singles.extend(idx)
    order = singles + [i for idx, _ in groups for i in idx]
    pos = np.empty(len(order), dtype=np.intp)
    pos[order] = np.arange(len(order))
    return singles, groups, pos


class NormPlan:
    """L2 norms of a list of tensors with fixed shapes, in a few ops.

    Tensors that share a shape are stacked into one reused buffer and reduced by one vector_norm; the
    rest go through one `_foreach_norm`. `pos[i]` is where tensor i's norm lands in norms()' output.
    """

    def __init__(self, shapes: Sequence[torch.Size], key: str) -> None:
        self.key = key
        self.singles, self.groups, self.pos = group_by_shape(shapes)

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
    """Per-layer statistics of one step, as numpy arrays after the host transfer (NaN where undefined)."""

    weight_norm: np.ndarray
    update_ratio: np.ndarray  # ||W_after - W_before|| / ||W_before||, measured in float32 (0: the weights did not move)
    weight_mean_abs: np.ndarray
    saturation: np.ndarray  # sigmoid/tanh: share of outputs whose slope f'(z) < 0.01
    dead: np.ndarray  # ReLU: share of units whose output is <= 0 for the whole batch
    negative: np.ndarray  # Leaky ReLU: share of units whose output is <= 0 (slope-only) for the whole batch
    slope: np.ndarray  # mean f'(z) over the batch and the units of each block
    gain: np.ndarray
    gain_product: np.ndarray
    hist_counts: np.ndarray
    time_grad_norm: np.ndarray | None
    time_cell_grad_norm: np.ndarray | None  # LSTM: ||dL/dc_t|| per time step


@dataclass
class PreStep:
    """What a heavy step takes between backward and the optimizer step (before clipping changes the gradient)."""

    before: torch.Tensor | list[torch.Tensor]  # the shown weights before the update (MLP: in the scratch buffer)
    hist: torch.Tensor | None  # histogram of log10 |g| of the chosen layer's unclipped gradient


@dataclass
class HeavyLayout:
    """How to finish the heavy statistics on the host in one gather-divide (a few numpy calls, not one per field).

    With `ext` = what the device sent followed by `consts`, value j of the output is
    ext[num[j]] / (max(ext[den[j]], floor[j]) * mult[j]) + add[j]; where a layer's weights are not finite, its
    values (layer[j] >= 0) become NaN; `fields` slices the output into HeavyStats.
    """

    sent: int  # values the device sends
    consts: np.ndarray  # 1, 0, NaN, elements per weight, then the other denominators known up front
    num: np.ndarray
    den: np.ndarray
    floor: np.ndarray
    mult: np.ndarray
    add: np.ndarray
    layer: np.ndarray  # the shown layer each value belongs to (-1: none, or the weight norm itself)
    weight_norm: slice
    fields: tuple[tuple[str, int, int], ...]  # HeavyStats field, start, stop


def pre_step(kind: str, weights: list[torch.Tensor], hist_layer: int, scratch: Scratch) -> PreStep:
    """Call after backward, before clipping and the optimizer step, on heavy steps only: copies the shown weights
    (MLP: into rows n..2n of a scratch buffer heavy_tensor fills further) and takes the gradient histogram."""
    with torch.no_grad():
        g = weights[min(max(hist_layer, 0), len(weights) - 1)].grad
        hist = None
        if g is not None:  # log10 |g| (0 -> -inf -> clamped into the first bin)
            logs = g.abs().float().log10_().clamp_(HIST_LO, HIST_HI)
            hist = torch.histc(logs, bins=HIST_BINS, min=HIST_LO, max=HIST_HI)
        n = len(weights)
        if kind == "mlp":  # the blocks share a shape: after | before | change in one buffer, one norm later
            buf = scratch.buffer("weights", (3 * n, *weights[0].shape), weights[0])
            torch.stack(weights, out=buf[n : 2 * n])
            return PreStep(buf, hist)
        return PreStep(torch._foreach_mul([w.detach() for w in weights], 1.0), hist)


def heavy_tensor(kind: str, unit: str, weights: list[torch.Tensor], pre: PreStep, trace: Trace, scratch: Scratch,
                 leaky_slope: float = 0.01) -> tuple[torch.Tensor, HeavyLayout]:  # fmt: skip
    """All heavy statistics of this step packed in one flat device tensor, and how to unpack it.

    Call after the optimizer step, with what pre_step() took before it. unit: the MLP's activation, or the
    RNN's cell (rnn | lstm | gru). Call Scratch.layouts.clear() when the weights change.
    """
    with torch.no_grad():
        return _heavy(kind, unit, weights, pre, trace, scratch, leaky_slope)


def _heavy(kind: str, unit: str, weights: list[torch.Tensor], pre: PreStep, trace: Trace, scratch: Scratch,
           leaky_slope: float) -> tuple[torch.Tensor, HeavyLayout]:  # fmt: skip
    n = len(weights)
    parts: list[torch.Tensor] = []
    sections: list[tuple[str, int]] = []  # what `parts` hold, in order: (name, values)
    specs: dict[str, tuple[str, float, float, float]] = {}  # ACT_FIELDS sent: (layers | rnn, den, mult, add)
    if kind == "mlp":
        buf = pre.before
        assert isinstance(buf, torch.Tensor)
        after = torch.stack(weights, out=buf[:n])
        torch.sub(buf[n : 2 * n], after, out=buf[2 * n :])
        dims = tuple(range(1, buf.dim()))
        parts += [torch.linalg.vector_norm(buf, dim=dims), after.abs_().sum(dim=dims)]
    else:  # RNN: four weights of three shapes
        w = [x.detach() for x in weights]
        change = torch._foreach_sub(w, pre.before)
        parts.append(torch.stack([*torch._foreach_norm([*w, *pre.before, *change]), *torch._foreach_norm(w, 1)]))
    sections += [("norms", 3 * n), ("abs", n)]  # norms: after, before, change
    hidden = trace.hidden
    if kind == "mlp" and trace.acts:
        acts = scratch.stack("acts", trace.acts)  # (L, B, W), our copy: in place from here on
        per_unit, per_all = float(acts.shape[2]), float(acts.shape[1] * acts.shape[2])
        if unit in ("sigmoid", "tanh"):
            # f'(z) from the output: sigmoid a(1 - a) = 0.25 - (a - 0.5)^2, tanh 1 - a^2; one sum of squares each
            sigmoid = unit == "sigmoid"
            if sigmoid:
                acts.sub_(0.5)
            parts.append(torch.linalg.vector_norm(acts, dim=(1, 2)).square_())
            parts.append(acts.abs_().gt_(SIGMOID_SAT if sigmoid else TANH_SAT).sum(dim=(1, 2)))
            sections += [("slope", n), ("saturation", n)]
            specs["slope"] = ("layers", per_all, -1.0, 0.25 if sigmoid else 1.0)
            specs["saturation"] = ("layers", per_all, 1.0, 0.0)
        else:  # ReLU: dead, Leaky ReLU: negative = output <= 0 for the whole batch; slope 1 where active, else k
            field = "dead" if unit == "relu" else "negative"
            k = leaky_slope if unit == "leaky_relu" else 0.0
            parts.append(acts.amax(dim=1).le_(0).sum(dim=1))
            parts.append(acts.gt_(0).sum(dim=(1, 2)))  # active outputs
            sections += [(field, n), ("slope", n)]
            specs[field] = ("layers", per_unit, 1.0, 0.0)
            specs["slope"] = ("layers", per_all, 1.0 / (1.0 - k) if k < 1 else math.inf, k)  # k + (1-k) * active
    if kind == "mlp" and hidden:
        grads = [h.grad if h.grad is not None else torch.zeros_like(h) for h in hidden]
        parts.append(_norms(scratch, "hidden_grad", grads))  # h_0 .. h_L
        sections.append(("hidden", len(hidden)))
    if kind != "mlp" and hidden and unit == "rnn":  # h_t = tanh(z_t): slope 1 - h^2 (LSTM/GRU h is no tanh output)
        hs = scratch.stack("hidden", hidden)  # (T, B, H)
        parts.append(torch.linalg.vector_norm(hs).square_().reshape(1))
        parts.append(hs.abs_().gt_(TANH_SAT).sum().reshape(1))
        sections += [("slope", 1), ("saturation", 1)]
        specs["slope"] = ("rnn", float(hs.numel()), -1.0, 1.0)
        specs["saturation"] = ("rnn", float(hs.numel()), 1.0, 0.0)
    if pre.hist is not None:
        parts.append(pre.hist)
        sections.append(("hist", HIST_BINS))
    if kind != "mlp" and hidden:
        parts.append(
            _norms(scratch, "hidden_grad", [h.grad if h.grad is not None else torch.zeros_like(h) for h in hidden])
        )
        sections.append(("time", len(hidden)))
    if kind != "mlp" and trace.cells:
        grads = [c.grad if c.grad is not None else torch.zeros_like(c) for c in trace.cells]
        parts.append(_norms(scratch, "cell_grad", grads))
        sections.append(("cell", len(grads)))
    key = (tuple(sections), tuple(specs.items()))
    layout = scratch.layouts.get(key)
    if layout is None:
        layout = scratch.layouts[key] = _layout(weights, sections, specs)
    return torch.cat(parts), layout


def _layout(weights: list[torch.Tensor], sections: list[tuple[str, int]],
            specs: dict[str, tuple[str, float, float, float]]) -> HeavyLayout:  # fmt: skip
    """The gather-divide plan for what _heavy sent, `sections` in order."""
    n = len(weights)
    pos: dict[str, int] = {}
    sizes: dict[str, int] = {}
    at = 0
    for name, count in sections:
        pos[name], sizes[name] = at, count
        at += count
    consts = [1.0, 0.0, math.nan, *(float(w.numel()) for w in weights)]
    one, zero, nan, numel_at = at, at + 1, at + 2, at + 3

    def const(value: float) -> int:
        if value not in consts[3 + n :]:
            consts.append(value)
        return at + 3 + n + consts[3 + n :].index(value)

    num: list[int] = []
    den: list[int] = []
    floor: list[float] = []
    mult: list[float] = []
    add: list[float] = []
    layer: list[int] = []
    fields: list[tuple[str, int, int]] = []

    def field(name: str, nums: list[int], dens: list[int] | int = one, low: float = 0.0, scale: float = 1.0,
              offset: float = 0.0, per_layer: bool = True) -> None:  # fmt: skip
        k = len(nums)
        fields.append((name, len(num), len(num) + k))
        num.extend(nums)
        den.extend(dens if isinstance(dens, list) else [dens] * k)
        floor.extend([low] * k)
        mult.extend([scale] * k)
        add.extend([offset] * k)
        layer.extend(range(k) if per_layer else [-1] * k)

    w_at = pos["norms"]
    field("weight_norm", [w_at + j for j in range(n)], per_layer=False)
    # ||W_after - W_before|| / max(||W_before||, 1e-30)
    field("update_ratio", [w_at + 2 * n + j for j in range(n)], [w_at + n + j for j in range(n)], 1e-30)
    field("weight_mean_abs", [pos["abs"] + j for j in range(n)], [numel_at + j for j in range(n)])
    for name in ACT_FIELDS:
        if name not in specs:
            field(name, [nan] * n)
            continue
        mode, count, scale, offset = specs[name]
        nums = [pos[name] + j for j in range(n)] if mode == "layers" else [nan] * n
        if mode == "rnn":
            nums[RNN_SAT_LAYER] = pos[name]
        field(name, nums, const(count), scale=scale, offset=offset)
    n_hidden = sizes.get("hidden", 0)
    if n_hidden:  # gain_i = |g h_i| / |g h_i+1|, product_i = |g h_i| / |g h_L|
        h_at = pos["hidden"]
        field("gain", [h_at + j for j in range(n_hidden - 1)], [h_at + j + 1 for j in range(n_hidden - 1)], 1e-38)
        field("gain_product", [h_at + j for j in range(n_hidden - 1)], h_at + n_hidden - 1, 1e-38)
    else:
        field("gain", [nan] * n)
        field("gain_product", [nan] * n)
    hist = [pos["hist"] + j for j in range(HIST_BINS)] if "hist" in pos else [zero] * HIST_BINS
    field("hist_counts", hist, per_layer=False)
    for name, key in (("time_grad_norm", "time"), ("time_cell_grad_norm", "cell")):
        field(name, [pos[key] + j for j in range(sizes[key])] if key in pos else [], per_layer=False)
    return HeavyLayout(at, np.array(consts), np.array(num), np.array(den), np.array(floor), np.array(mult),
                       np.array(add), np.array(layer), slice(0, n), tuple(fields))  # fmt: skip


def _norms(scratch: Scratch, key: str, tensors: list[torch.Tensor]) -> torch.Tensor:
    """Norm of each tensor: stacked and reduced in one op when they share a shape."""
    try:
        stacked = scratch.stack(key, tensors)
    except RuntimeError:
        return torch.stack(torch._foreach_norm(tensors))
    return torch.linalg.vector_norm(stacked, dim=tuple(range(1, stacked.dim())))


def unpack_heavy(flat: np.ndarray, layout: HeavyLayout) -> HeavyStats:
    """Finish the statistics from the float64 array heavy_tensor sent: one gather-divide, sliced into fields."""
    return unpack_heavy_rows(flat.reshape(1, -1), layout)[0]


def unpack_heavy_rows(flat: np.ndarray, layout: HeavyLayout) -> list[HeavyStats]:
    """unpack_heavy() for several steps at once: `flat` is (steps, layout.sent), all sent with this layout."""
    ext = np.empty((len(flat), layout.sent + len(layout.consts)))
    ext[:, : layout.sent] = flat
    ext[:, layout.sent :] = layout.consts
    with np.errstate(all="ignore"):
        out = ext[:, layout.num] / (np.maximum(ext[:, layout.den], layout.floor) * layout.mult) + layout.add
    broken = ~np.isfinite(out[:, layout.weight_norm])  # a layer whose weights are NaN/Inf: no statistic holds
    if broken.any():
        at = np.flatnonzero(layout.layer >= 0)
        values = out[:, at]
        values[broken[:, layout.layer[at]]] = np.nan
        out[:, at] = values
    fields = layout.fields
    rows = []
    for values in out:
        stats = {name: values[a:b] for name, a, b in fields}
        for name in ("time_grad_norm", "time_cell_grad_norm"):
            if not len(stats[name]):
                stats[name] = None
        rows.append(HeavyStats(**stats))
    return rows
