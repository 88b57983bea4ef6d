"""The every-step path of vgtui.watch: every shown weight's gradient norm in one device op, no sync.

One `torch._foreach_norm` over the gradients (on CUDA one fused multi-tensor kernel). On CPU this was measured
against the earlier plan (stack same-shape gradients into a kept buffer, one vector_norm per group, a _foreach_norm
for the rest) inside a user-style loop on the 20x64 MLP (2-core x86_64, torch 2.13, one thread, 100 interleaved
pairs of 20-step blocks): the bare loop / with the norms alone 0.96-0.97x against 0.94-0.95x. Outside a loop the
stack was the faster one (22 vs 40 us): in place, each further op and the 300 KB buffer's writes cost more than the
per-tensor dispatch inside one op. The logged loss/accuracy tensors are kept as given. Everything is put together
once per publish (one stack and one cat, on the hub thread on CPU), and the host reorders it (unpack_light).
"""

from __future__ import annotations

import torch

from vgtui.watch.layout import LightLayout

F32 = torch.float32


class LightPlan:
    """Which gradients are norm'd each step: `n` of them, in layer order, by one _foreach_norm (float32 norms even
    for half-precision gradients, which could overflow)."""

    def __init__(self, dtypes: list[torch.dtype]) -> None:
        self.n = len(dtypes)
        self.cast = any(d != F32 for d in dtypes)

    def norms(self, grads: list[torch.Tensor]) -> torch.Tensor | None:
        """The norms of `grads` in one 1-d float32 tensor (no sync; None: no gradients)."""
        if not grads:
            return None
        return torch.stack(torch._foreach_norm(grads, 2, dtype=F32) if self.cast else torch._foreach_norm(grads))


class LightRows:
    """The every-step device numbers since the last publish, as produced; packed into one list at publish."""

    def __init__(self, plan: LightPlan) -> None:
        self.plan = plan
        self.norms: list[torch.Tensor | None] = []
        self.loss: list[tuple[int, torch.Tensor]] = []
        self.acc: list[tuple[int, torch.Tensor]] = []
        self.clip: list[tuple[int, torch.Tensor, torch.Tensor]] = []
        self.host_loss: dict[int, float] = {}
        self.host_acc: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self.norms)

    def add(self, norms: torch.Tensor | None, loss: object, acc: object,
            clip: tuple[torch.Tensor, torch.Tensor] | None) -> None:  # fmt: skip
        """One step's numbers. norms: as LightPlan.norms gives them; loss/acc: a tensor (kept as it is), a Python
        number or None."""
        row = len(self.norms)
        self.norms.append(norms)
        if loss is not None:
            if isinstance(loss, torch.Tensor):
                self.loss.append((row, loss))
            else:
                self.host_loss[row] = float(loss)  # type: ignore[arg-type]
        if acc is not None:
            if isinstance(acc, torch.Tensor):
                self.acc.append((row, acc))
            else:
                self.host_acc[row] = float(acc)  # type: ignore[arg-type]
        if clip is not None:
            self.clip.append((row, *clip))

    def pack(self) -> tuple[list[torch.Tensor], LightLayout]:
        """1-d float32 parts (to be concatenated with the rest of a publish) and their layout."""
        parts: list[torch.Tensor] = []
        if self.plan.n and self.norms:
            parts.append(torch.cat(self.norms))  # type: ignore[arg-type]
        for tensors in (self.loss, self.acc):
            if tensors:
                values = [t for _, t in tensors]
                try:  # the usual case, 0-d float32 tensors, needs no conversion
                    stacked = torch.stack(values)
                except RuntimeError:  # shapes that differ
                    stacked = None
                if stacked is None or stacked.shape != (len(values),) or stacked.dtype != F32:
                    stacked = torch.stack([scalar(t) for t in values])
                parts.append(stacked)
        if self.clip:
            parts.append(torch.stack([t for _, t, _ in self.clip]))
            parts.append(torch.stack([c for _, _, c in self.clip]).to(F32))
        layout = LightLayout(len(self.norms), self.plan.n, [r for r, _ in self.loss], [r for r, _ in self.acc],
                             [r for r, _, _ in self.clip], dict(self.host_loss), dict(self.host_acc))  # fmt: skip
        return parts, layout


def scalar(t: torch.Tensor) -> torch.Tensor:
    t = t.detach()
    if t.numel() != 1:
        t = t.float().mean()
    return t.reshape(()).to(F32)
