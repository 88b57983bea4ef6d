"""vgtui.watch's measurements on a sharded model (FSDP1 with use_orig_params=True, FSDP2 fully_shard).

Each rank holds a slice of every parameter and of its gradient (FSDP2: a DTensor, Shard(0); FSDP1: a flat 1-d view,
possibly empty), so a norm on one rank is a norm of a slice. The true norm is sqrt(sum over ranks of the squared
local norms): one all_reduce(SUM) of a packed vector gives it for every layer at once.

- Every step (the step pre-hook): the local squared gradient norms of the shown weights, the logged loss and
  accuracy (each rank's, for their mean) and, with vgtui's clipping on, the local squared total over every updated
  parameter go into one all_reduce of (layers + 3) floats. The gradient chart is exact on every step and clipping
  scales every shard by the same global factor (as FSDP's own clip_grad_norm_ does).
- Heavy steps (a pure function of the step number, so every rank reaches the collective): ||W_before||^2,
  ||W_after||^2, ||dW||^2, sum |W| per layer and the histogram counts of one layer's gradient go into one more
  all_reduce. The activation statistics and block gradients stay rank 0's (a sample: its batch).
Parameters that are not sharded (replicated outside FSDP) count on rank 0 only: summing them would count them once
per rank.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from vgtui.contract import HIST_BINS, HIST_HI, HIST_LO
from vgtui.watch.layers import Layer
from vgtui.watch.light import LightPlan
from vgtui.watch.stats import HeavyMeta, Meter, PendingHeavy

F32 = torch.float32


def local(t: torch.Tensor) -> torch.Tensor:
    """This rank's part of a parameter or gradient (a DTensor's local shard; anything else as it is)."""
    to_local = getattr(t, "to_local", None)
    return to_local() if to_local is not None else t


class ShardMeter(Meter):
    """Meter on this rank's shards, with the sums over ranks taken by all_reduce (see the module docstring)."""

    def __init__(
        self,
        params: list[torch.Tensor],
        layers: list[Layer],
        copy_limit_bytes: int,
        *,
        global_numel: Callable[[torch.Tensor], int],
        sharded: Callable[[torch.Tensor], bool],
        hooks: Any,
        collective: Callable[[Callable[[], object]], None],
        world: int,
        rank: int,
    ) -> None:
        self.originals = [layer.param for layer in layers]
        super().__init__(params, layers, copy_limit_bytes)
        self.weights = [local(p).detach() for p in self.originals]
        self.plan = LightPlan([torch.float32] * len(self.weights))  # local shapes differ between ranks: no grouping
        self.numel = np.array([global_numel(p) for p in self.originals], dtype=np.float64)
        self.copy_bytes = sum(w.numel() * w.element_size() for w in self.weights)
        self.copy_on = self.copy_bytes <= copy_limit_bytes
        self.hooks, self.collective, self.world = hooks, collective, world
        # a replicated (unsharded) tensor counts on rank 0 only; a sharded one on every rank
        own = [1.0 if sharded(p) or rank == 0 else 0.0 for p in self.originals]
        self.own = torch.tensor(own, dtype=F32, device=self.nan.device)
        self.replicated = [p for p in params if not sharded(p)] if rank != 0 else []
        self.replicated_ids = {id(p) for p in self.replicated}

    # ------------------------------------------------------------------ every step

    def grads(self) -> list[torch.Tensor]:
        """The local shards of the shown weights' gradients (0 where a rank has none)."""
        out = []
        for p, w in zip(self.originals, self.weights, strict=True):
            g = p.grad
            out.append(local(g) if g is not None else torch.zeros_like(w))
        return out

    def light(self, grads: list[torch.Tensor], clip: float | None) -> tuple[torch.Tensor | None, tuple | None]:
        """The shown weights' global gradient norms, with the loss and accuracy as means over the ranks (they replace
        the logged ones in the hooks); one all_reduce. With `clip`, every local gradient is scaled by the global
        clip factor (the total over every updated parameter, replicated ones counted once)."""
        hooks = self.hooks
        with torch.no_grad():
            n = len(grads)
            device = self.nan.device
            sq = torch.stack(torch._foreach_norm(grads)).square_() * self.own if n else torch.zeros(0, device=device)
            live: list[torch.Tensor] = []
            total = self.zero
            if clip is not None:
                live = [local(p.grad) for p in self.params if p.grad is not None]
                mine = [local(p.grad) for p in self.params if p.grad is not None and id(p) not in self.replicated_ids]
                if mine:
                    total = torch.stack(torch._foreach_norm(mine)).square_().sum()
            loss, acc = hooks._loss, hooks._acc
            vec = torch.cat([sq, torch.stack([total, _value(loss, device), _value(acc, device)])])
            self.collective(lambda: dist.all_reduce(vec))
            norms = vec[:n].sqrt()
            if loss is not None:
                hooks._loss = vec[n + 1] / self.world
            if acc is not None:
                hooks._acc = vec[n + 2] / self.world
            norms = norms if n else None
            if clip is None:
                return norms, None
            global_total = vec[n].sqrt()
            torch._foreach_mul_(live, (clip / (global_total + 1e-6)).clamp(max=1.0))
            return norms, (global_total, global_total > clip)

    # ------------------------------------------------------------------ heavy steps

    def before_step(self, hist_layer: int, want_hist: bool) -> PendingHeavy:
        """As Meter's, on the local shards; the histogram always (a fixed size: the counts are summed)."""
        self.weights = [local(p).detach() for p in self.originals]
        try:
            pending = super().before_step(hist_layer, False)
            if self.weights:
                i = min(max(hist_layer, 0), len(self.weights) - 1)
                logs = self.grads()[i].detach().abs().float().log10_().clamp_(HIST_LO, HIST_HI)
                pending.hist = torch.histc(logs, bins=HIST_BINS, min=HIST_LO, max=HIST_HI) * self.own[i]
        except Exception:  # noqa: BLE001 - the after-step collective must still be reached on this rank
            pending = PendingHeavy()
        return pending

    def after_step(self, pending: PendingHeavy, probes: Any) -> tuple[torch.Tensor, HeavyMeta]:
        """As Meter's, then one all_reduce of the additive parts: squared norms, sum |W|, histogram counts."""
        n = len(self.weights)
        with torch.no_grad():
            try:
                flat, meta = super().after_step(pending, probes)
                acts = 3 * n if meta.acts else 0
                hist = flat[4 * n + acts : 4 * n + acts + HIST_BINS] if meta.hist else self.zero.expand(HIST_BINS)
                own = self.own.repeat(4) if n else self.own
                additive = torch.cat([flat[: 3 * n].square() * own[: 3 * n], flat[3 * n : 4 * n] * own[3 * n :], hist])
            except Exception:  # noqa: BLE001 - NaN for this step, but the collective is reached
                flat, meta = self.nan.reshape(1), HeavyMeta(0, [], False, 0, False, 1)
                acts, additive = 0, torch.full((4 * n + HIST_BINS,), float("nan"), device=self.nan.device)
            self.collective(lambda: dist.all_reduce(additive))
            if meta.n_layers != n:
                return flat, meta
            parts = [additive[: 3 * n].sqrt(), additive[3 * n : 4 * n], flat[4 * n : 4 * n + acts]]
            if meta.hist:
                parts.append(additive[4 * n :])
            parts.append(flat[4 * n + acts + (HIST_BINS if meta.hist else 0) :])
            return torch.cat(parts), meta


def _value(v: Any, device: torch.device) -> torch.Tensor:
    """A logged value as a 0-d float32 tensor on `device` (0 where none was logged)."""
    if v is None:
        return torch.zeros((), dtype=F32, device=device)
    if isinstance(v, torch.Tensor):
        v = v.detach()
        return (v.float().mean() if v.numel() != 1 else v.reshape(())).to(device=device, dtype=F32)
    return torch.tensor(float(v), dtype=F32, device=device)
