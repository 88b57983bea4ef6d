"""Forward hooks for heavy steps only: activation statistics and the gradient reaching each of the user's blocks.

Armed by the step post-hook just before a heavy step's forward pass and disarmed after it, so ordinary steps pay
nothing; for step 1 (heavy) armed when watching starts, before the layers' order is known (before_first_step).
Each hook reduces what it sees at once, under no_grad, to a few numbers on the device and keeps no reference to the
activation (an in-place op later would change a kept one; pitfall 2 in shared/ATTACH.md). Only the first call per
layer per step counts (a module reused in a loop, reentrant checkpointing), and only in training mode with grad on
(no validation passes). A statistic whose hook fails is switched off and the error kept for the
viewers; it never reaches the user's loop.

Activation statistics belong to the shown layer that ran last before the activation (Linear -> ReLU: the Linear's
row). Block gradients use tensor hooks on each block's input and output (register_full_backward_hook breaks on
in-place ops downstream, pitfall 1): gain_i = ||dL/dx_i|| / ||dL/dy_i||, product_i = ||dL/dx_i|| / ||dL/dy_last||.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from vgtui.watch.layers import Layer
from vgtui.watch.layout import ActMeta

SIGMOID_SAT = 0.4899  # |a - 0.5| > this  <=>  a(1 - a) < 0.01
TANH_SAT = 0.99499  # |a| > this  <=>  1 - a^2 < 0.01
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def first_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    return None


def act_summary(kind: str, module: nn.Module, args: Any, out: Any, nan: torch.Tensor) -> tuple[torch.Tensor, ActMeta]:
    """Three device numbers for one activation call (call under no_grad):
    sigmoid/tanh: [sum of squares of a - 0.5 (sigmoid) or a, saturated count, NaN];
    relu/leaky_relu: [active count, NaN, units <= 0 on the whole batch];
    gelu/silu: [sum of f'(z), NaN, units with z <= 0 on the whole batch] (NaN where an in-place SiLU lost z)."""
    a = first_tensor(out)
    assert a is not None
    a = a.detach()
    unit_dim = 1 if a.dim() in (2, 4) else max(a.dim() - 1, 0)
    units = a.shape[unit_dim] if a.dim() else 1
    other = tuple(d for d in range(a.dim()) if d != unit_dim)
    f32 = torch.float32
    if kind in ("sigmoid", "tanh"):
        c = a.float() - 0.5 if kind == "sigmoid" else a.float()
        sumsq = torch.linalg.vector_norm(c).square()
        sat = (c.abs() > (SIGMOID_SAT if kind == "sigmoid" else TANH_SAT)).sum(dtype=f32)
        return torch.stack([sumsq, sat, nan]), ActMeta(kind, a.numel(), units)
    if kind in ("relu", "leaky_relu"):
        active = (a > 0).sum(dtype=f32)
        never = (a.amax(dim=other) <= 0).sum(dtype=f32) if other else (a <= 0).sum(dtype=f32)
        leak = float(getattr(module, "negative_slope", 0.0)) if kind == "leaky_relu" else 0.0
        return torch.stack([active, nan, never]), ActMeta(kind, a.numel(), units, leak)
    z = first_tensor(args)
    if z is None or getattr(module, "inplace", False):
        return torch.stack([nan, nan, nan]), ActMeta(kind, a.numel(), units)
    z = z.detach().float()
    if kind == "gelu":
        slope = 0.5 * (1 + torch.erf(z / _SQRT2)) + z * torch.exp(-0.5 * z * z) * _INV_SQRT_2PI
    else:  # silu: s (1 + z (1 - s))
        s = torch.sigmoid(z)
        slope = s * (1 + z * (1 - s))
    never = (z.amax(dim=other) <= 0).sum(dtype=f32) if other else (z <= 0).sum(dtype=f32)
    return torch.stack([slope.sum(), nan, never]), ActMeta(kind, a.numel(), units)


class Probes:
    """The heavy-step hooks of one watched model."""

    def __init__(self, layers: list[Layer], acts: list[tuple[str, nn.Module, str]], blocks: list[nn.Module]) -> None:
        self.acts = acts
        self.blocks = blocks
        self.relayer(layers)
        self.enabled = {"activations": bool(acts), "blocks": bool(blocks)}
        self.failures: list[tuple[str, str]] = []  # (statistic, error) not yet told to the viewers
        self._handles: list[RemovableHandle] = []
        self._nan: torch.Tensor | None = None
        self.clear()

    @classmethod
    def before_first_step(
        cls, modules: list[nn.Module], acts: list[tuple[str, nn.Module, str]], blocks: list[nn.Module]
    ) -> Probes:
        """Probes for step 1, before the first forward pass has told the layers' order: the weight-bearing
        `modules` stand for the layers, by id, until relayer() (activation statistics after a module that is
        then not shown are dropped)."""
        probes = cls([], acts, blocks)
        probes.modules = list(modules)
        probes.layer_of = {id(m): id(m) for m in modules}
        return probes

    def relayer(self, layers: list[Layer]) -> None:
        """The shown layers, in forward order: statistics kept under a module's id move to its layer's index."""
        self.layers = layers
        self.modules = list({id(la.module): la.module for la in layers}.values())
        provisional = getattr(self, "layer_of", {})
        self.layer_of: dict[int, int] = {}
        for i, layer in enumerate(layers):  # a module with several matrices: its last shown one
            self.layer_of[id(layer.module)] = i
        self.block_layer = [_last_layer_in(b, self.layer_of) for b in self.blocks]
        if provisional and hasattr(self, "act_stats"):
            self.act_stats = {self.layer_of[k]: v for k, v in self.act_stats.items() if k in self.layer_of}
            self.current = None

    def clear(self) -> None:
        self.current: int | None = None
        self.act_stats: dict[int, tuple[torch.Tensor, ActMeta]] = {}
        self.block_seen: set[int] = set()
        self.block_grad: dict[str, dict[int, torch.Tensor]] = {"in": {}, "out": {}}

    @property
    def armed(self) -> bool:
        return bool(self._handles)

    def arm(self) -> None:
        """Register the hooks for the next forward pass (idempotent)."""
        if self._handles:
            return
        self.clear()
        if self.enabled["activations"]:
            for module in self.modules:
                self._handles.append(module.register_forward_hook(self._ran))
            for _, module, kind in self.acts:
                self._handles.append(module.register_forward_hook(partial(self._act, kind)))
        if self.enabled["blocks"]:
            for i, block in enumerate(self.blocks):
                self._handles.append(block.register_forward_hook(partial(self._block, i)))

    def disarm(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def fail(self, what: str, exc: BaseException) -> None:
        """Switch a statistic off after an error in its hook; the viewers are told at the next publish."""
        if self.enabled.get(what):
            self.enabled[what] = False
            self.failures.append((what, f"{type(exc).__name__}: {exc}"))

    # ------------------------------------------------------------------ hooks

    def _ran(self, module: nn.Module, _args: Any, _out: Any) -> None:
        self.current = self.layer_of.get(id(module), self.current)

    def _act(self, kind: str, module: nn.Module, args: Any, out: Any) -> None:
        i = self.current
        if i is None or i in self.act_stats or not self.enabled["activations"]:
            return
        if not module.training or not torch.is_grad_enabled():
            return
        try:
            with torch.no_grad():
                a = first_tensor(out)
                if a is None or not a.is_floating_point():
                    return
                if self._nan is None or self._nan.device != a.device:
                    self._nan = torch.full((), math.nan, device=a.device)
                self.act_stats[i] = act_summary(kind, module, args, out, self._nan)
        except Exception as exc:  # noqa: BLE001 - never into the user's forward pass
            self.fail("activations", exc)

    def _block(self, i: int, module: nn.Module, args: Any, out: Any) -> None:
        if i in self.block_seen or not self.enabled["blocks"] or not module.training or not torch.is_grad_enabled():
            return
        self.block_seen.add(i)
        try:
            for which, value in (("out", first_tensor(out)), ("in", first_tensor(args))):
                if value is not None and value.requires_grad:
                    value.register_hook(partial(self._grad, which, i))
        except Exception as exc:  # noqa: BLE001
            self.fail("blocks", exc)

    def _grad(self, which: str, i: int, grad: torch.Tensor) -> None:
        if not self.enabled["blocks"]:
            return
        try:
            self.block_grad[which][i] = torch.linalg.vector_norm(grad.detach(), dtype=torch.float32)
        except Exception as exc:  # noqa: BLE001 - never into the user's backward pass
            self.fail("blocks", exc)


def _last_layer_in(block: nn.Module, layer_of: dict[int, int]) -> int | None:
    """The index of the last shown layer inside a block (None where it holds none)."""
    inside = [layer_of[id(m)] for m in block.modules() if id(m) in layer_of]
    return max(inside) if inside else None
