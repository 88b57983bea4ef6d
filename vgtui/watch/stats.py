"""The device side of vgtui.watch's statistics: a few fused ops per step, no host sync.

Every step (the optimizer's step pre-hook: the gradients are final, DDP-averaged, GradScaler-unscaled): one light
row [loss, acc, total grad norm (NaN unless vgtui clips: the host sums it), clipped, the norm of every updated
parameter's gradient in NormPlan order] — NormPlan (vgtui.engine.telemetry) stacks same-shape gradients into one
reused buffer and reduces each stack in one vector_norm. vgtui's own clipping runs after measuring, so the norms
are the exact pre-clip ones.

Heavy steps add one flat float32 tensor: per shown layer ||W_before||, ||W_after||, ||W_after - W_before|| (from
a copy into kept buffers before the step, as float32 really moved the weights), sum |W_after|; then three numbers
per layer from the activation probes; the histogram of log10 |g| of one layer; the block gradient norms. The host
(vgtui.watch.report) divides and names them after the single transfer of a publish.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from vgtui.contract import HIST_BINS, HIST_HI, HIST_LO
from vgtui.engine.telemetry import NormPlan, Scratch
from vgtui.watch.layers import Layer
from vgtui.watch.probes import ActMeta, Probes

F32 = torch.float32


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
class PendingHeavy:
    pre: list[torch.Tensor] = field(default_factory=list)  # ||W_before|| per layer (0-d)
    hist: torch.Tensor | None = None
    copied: bool = False


class Meter:
    """Measures a watched model's gradients and weights on its device."""

    def __init__(self, params: list[torch.Tensor], layers: list[Layer], copy_limit_bytes: int) -> None:
        self.params = params
        self.weights = [layer.param for layer in layers]
        self.plan = NormPlan([p.shape for p in params], "watch-grad")
        index = {id(p): i for i, p in enumerate(params)}
        self.layer_cols = self.plan.pos[[index[id(w)] for w in self.weights]] if self.weights else np.zeros(0, int)
        self.scratch = Scratch()
        device = params[0].device if params else torch.device("cpu")
        self.nan = torch.full((), math.nan, device=device)
        self.zero = torch.zeros((), device=device)
        self.nan3 = torch.full((3,), math.nan, device=device)
        self.numel = np.array([w.numel() for w in self.weights], dtype=np.float64)
        self.copy_bytes = sum(w.numel() * w.element_size() for w in self.weights)
        self.copy_on = self.copy_bytes <= copy_limit_bytes
        self._buffers: list[torch.Tensor] | None = None
        self._cast = any(p.dtype != F32 for p in params)

    # ------------------------------------------------------------------ every step

    def scalar(self, value: object) -> torch.Tensor:
        """A logged value as a 0-d float32 tensor on the model's device, without a sync."""
        if value is None:
            return self.nan
        if isinstance(value, torch.Tensor):
            t = value.detach()
            if t.numel() != 1:
                t = t.float().mean()
            return t.reshape(()).to(device=self.nan.device, dtype=F32)
        return torch.tensor(float(value), dtype=F32, device=self.nan.device)  # type: ignore[arg-type]

    def grads(self) -> list[torch.Tensor]:
        return [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]

    def light_row(
        self, grads: list[torch.Tensor], loss: torch.Tensor, acc: torch.Tensor, clip: float | None
    ) -> torch.Tensor:
        """The step's row; with `clip`, also clips the gradients in place (after measuring them)."""
        with torch.no_grad():
            if self._cast:
                grads = [g.float() for g in grads]
            if clip is None:
                return self.plan.norms(grads, self.scratch, (loss, acc, self.nan, self.zero))
            norms = self.plan.norms(grads, self.scratch)
            total = torch.linalg.vector_norm(norms)
            live = [p.grad for p in self.params if p.grad is not None]
            torch._foreach_mul_(live, (clip / (total + 1e-6)).clamp(max=1.0))  # as clip_grad_norm_ does
            return torch.cat([torch.stack([loss, acc, total, (total > clip).to(F32)]), norms])

    # ------------------------------------------------------------------ heavy steps

    def before_step(self, hist_layer: int, want_hist: bool) -> PendingHeavy:
        """Heavy steps, before the optimizer moves the weights: their norms, a copy, the gradient histogram."""
        pending = PendingHeavy()
        with torch.no_grad():
            if want_hist and self.weights:
                g = self.weights[min(max(hist_layer, 0), len(self.weights) - 1)].grad
                if g is not None:
                    logs = g.detach().abs().float().log10_().clamp_(HIST_LO, HIST_HI)
                    pending.hist = torch.histc(logs, bins=HIST_BINS, min=HIST_LO, max=HIST_HI)
            if self.weights:
                pending.pre = list(torch._foreach_norm(self.weights, 2, dtype=F32))
            if self.copy_on and self.weights:
                if self._buffers is None:
                    self._buffers = [torch.empty_like(w, memory_format=torch.preserve_format) for w in self.weights]
                torch._foreach_copy_(self._buffers, self.weights)
                pending.copied = True
        return pending

    def after_step(self, pending: PendingHeavy, probes: Probes | None) -> tuple[torch.Tensor, HeavyMeta]:
        """Heavy steps, after the optimizer step: everything of this step in one flat float32 tensor."""
        with torch.no_grad():
            n = len(self.weights)
            parts: list[torch.Tensor] = []
            if n:
                after = torch._foreach_norm(self.weights, 2, dtype=F32)
                l1 = torch._foreach_norm(self.weights, 1, dtype=F32)
                if pending.copied and self._buffers is not None:
                    torch._foreach_sub_(self._buffers, self.weights)  # before - after
                    delta = torch._foreach_norm(self._buffers, 2, dtype=F32)
                else:
                    delta = [self.nan] * n
                parts.append(torch.stack([*pending.pre, *after, *delta, *l1]))
            acts: list[ActMeta | None] = [None] * n
            if probes is not None and probes.act_stats:
                rows = []
                for i in range(n):
                    got = probes.act_stats.get(i)
                    rows.append(got[0] if got is not None else self.nan3)
                    acts[i] = got[1] if got is not None else None
                parts.append(torch.stack(rows).reshape(-1).to(F32))
            if pending.hist is not None:
                parts.append(pending.hist)
            n_blocks = len(probes.blocks) if probes is not None and probes.enabled["blocks"] else 0
            if n_blocks:
                assert probes is not None
                got = probes.block_grad
                norms = [got[w].get(i, self.nan) for w in ("in", "out") for i in range(n_blocks)]
                parts.append(torch.stack(norms))
            flat = torch.cat(parts) if len(parts) > 1 else (parts[0] if parts else self.nan.reshape(1))
        meta = HeavyMeta(
            n,
            acts if any(a is not None for a in acts) else [],
            pending.hist is not None,
            n_blocks,
            pending.copied,
            int(flat.shape[0]),
        )
        return flat, meta
