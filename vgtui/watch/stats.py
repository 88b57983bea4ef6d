"""The device side of vgtui.watch's statistics: a few fused ops per step, no host sync.

Every step (the optimizer's step pre-hook: the gradients are final, DDP-averaged, GradScaler-unscaled): the norm
of every updated parameter's gradient (vgtui.watch.light: a few fused ops, no sync). vgtui's own clipping runs after
measuring, so the norms are the exact pre-clip ones.

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
from vgtui.watch.layers import Layer
from vgtui.watch.layout import ActMeta, HeavyMeta
from vgtui.watch.light import LightPlan
from vgtui.watch.probes import Probes

F32 = torch.float32


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
        # every step measures the shown weight matrices only: each further tensor is more work on a cold cache
        # (biases, norms: ~30 us a step in place on the 20x64 MLP, ~1 % of its step); grad_total is their total
        self.plan = LightPlan([w.dtype for w in self.weights])
        device = params[0].device if params else torch.device("cpu")
        self.nan = torch.full((), math.nan, device=device)
        self.zero = torch.zeros((), device=device)
        self.nan3 = torch.full((3,), math.nan, device=device)
        self.numel = np.array([w.numel() for w in self.weights], dtype=np.float64)
        self.copy_bytes = sum(w.numel() * w.element_size() for w in self.weights)
        self.copy_on = self.copy_bytes <= copy_limit_bytes
        self._buffers: list[torch.Tensor] | None = None

    # ------------------------------------------------------------------ every step

    def grads(self) -> list[torch.Tensor]:
        """The shown weights' gradients (0 where this step did not reach one: set_to_none)."""
        grads = [w.grad for w in self.weights]
        if any(g is None for g in grads):
            grads = [g if g is not None else torch.zeros_like(w) for g, w in zip(grads, self.weights, strict=True)]
        return grads  # type: ignore[return-value]

    def light(self, grads: list[torch.Tensor], clip: float | None) -> tuple[torch.Tensor | None, tuple | None]:
        """This step's gradient norms of the shown weights (see LightPlan); with `clip`, every updated parameter's
        gradient is then clipped in place by the total over all of them, as clip_grad_norm_ does (so the shown
        norms are the ones before clipping), and (that total, clipped) come back too."""
        with torch.no_grad():
            norms = self.plan.norms(grads)
            if clip is None:
                return norms, None
            live = [p.grad for p in self.params if p.grad is not None]
            total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(live)))
            torch._foreach_mul_(live, (clip / (total + 1e-6)).clamp(max=1.0))
            return norms, (total, total > clip)

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
