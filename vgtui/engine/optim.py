"""SGD with momentum and Adam in a few fused `torch._foreach_*` ops.

Same update rules as torch.optim.SGD (dampening 0, no Nesterov) and torch.optim.Adam (no weight
decay), with the same `param_groups` / `state` shape so toggles and tests can inspect them. Why our
own: constructing the first torch.optim optimizer imports torch._dynamo (about 800 modules,
~1 s and ~75 MB RSS here), which would double vgtui's start-up time and memory for two formulas.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


class Optimizer:
    """One parameter group; `state[p]` holds per-parameter buffers."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float) -> None:
        self.param_groups: list[dict] = [{"params": list(params), "lr": lr}]
        self.state: dict[torch.Tensor, dict] = {}

    @property
    def params(self) -> list[torch.Tensor]:
        return self.param_groups[0]["params"]

    @property
    def lr(self) -> float:
        return self.param_groups[0]["lr"]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    def _with_grad(self) -> list[torch.Tensor]:
        return [p for p in self.params if p.grad is not None]


class SGD(Optimizer):
    """p -= lr * buf, buf = momentum * buf + g (torch.optim.SGD with dampening 0)."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float, momentum: float = 0.0) -> None:
        super().__init__(params, lr)
        self.momentum = momentum

    @torch.no_grad()
    def step(self) -> None:
        params = self._with_grad()
        if not params:
            return
        grads = [p.grad for p in params]
        if self.momentum == 0:
            torch._foreach_add_(params, grads, alpha=-self.lr)
            return
        states = list(map(self.state.get, params))  # one dict lookup per tensor: Tensor.__hash__ is Python-level
        old = [(s["momentum_buffer"], g) for s, g in zip(states, grads, strict=True) if s is not None]
        for i, s in enumerate(states):
            if s is None:
                states[i] = self.state[params[i]] = {"momentum_buffer": grads[i].detach().clone()}
        if old:
            bufs = [b for b, _ in old]
            torch._foreach_mul_(bufs, self.momentum)
            torch._foreach_add_(bufs, [g for _, g in old])
        torch._foreach_add_(params, [s["momentum_buffer"] for s in states], alpha=-self.lr)


class Adam(Optimizer):
    """torch.optim.Adam's update (bias-corrected moments, eps outside the square root)."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:  # fmt: skip
        super().__init__(params, lr)
        self.betas = betas
        self.eps = eps

    @torch.no_grad()
    def step(self) -> None:
        params = self._with_grad()
        if not params:
            return
        b1, b2 = self.betas
        states = list(map(self.state.get, params))  # one dict lookup per tensor: Tensor.__hash__ is Python-level
        for i, s in enumerate(states):
            if s is None:
                p = params[i]
                s = states[i] = self.state[p] = {"step": 0, "exp_avg": torch.zeros_like(p),
                                                 "exp_avg_sq": torch.zeros_like(p)}  # fmt: skip
            s["step"] += 1
        grads = [p.grad for p in params]
        m = [s["exp_avg"] for s in states]
        v = [s["exp_avg_sq"] for s in states]
        torch._foreach_lerp_(m, grads, 1 - b1)
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - b2)
        steps = [s["step"] for s in states]
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, [math.sqrt(1 - b2**t) for t in steps])
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(params, m, denom, [-self.lr / (1 - b1**t) for t in steps])


def make_optimizer(kind: str, params: Iterable[torch.Tensor], lr: float, momentum: float) -> Optimizer:
    if kind == "adam":
        return Adam(params, lr)
    return SGD(params, lr, momentum)
