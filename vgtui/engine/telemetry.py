"""Gradient telemetry in a few fused tensor ops, kept on the device until one host transfer per publish."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vgtui.contract import HIST_BINS, HIST_EDGES, HIST_HI, HIST_LO  # noqa: F401 - re-exported
from vgtui.engine.models import Trace

SIGMOID_SAT = 0.4899  # |a - 0.5| > this  <=>  a(1 - a) < 0.01
TANH_SAT = 0.99499  # |a| > this  <=>  1 - a^2 < 0.01


def grad_norms(weights: list[torch.Tensor]) -> torch.Tensor:
    """Gradient norm of each weight in one fused op (zeros where a weight has no gradient yet)."""
    grads = [w.grad if w.grad is not None else torch.zeros_like(w) for w in weights]
    return torch.stack(torch._foreach_norm(grads))


def light_row(loss: torch.Tensor, acc: torch.Tensor, total: torch.Tensor, clipped: torch.Tensor,
              layer_norms: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """Per-step numbers as one device tensor: loss, acc, total grad norm, clipped, per-layer grad norms."""
    head = torch.stack([loss.detach(), acc, total, clipped.float()])
    return torch.cat([head, layer_norms])


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


def heavy_tensor(kind: str, activation: str, weights: list[torch.Tensor], delta_norm: torch.Tensor | None,
                 trace: Trace, hist_layer: int, numel: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """All heavy statistics of this step packed in one flat device tensor (see unpack_heavy).

    delta_norm: ||W_new - W_old|| per layer for this step (None: unknown); numel: elements per weight.
    """
    n = len(weights)
    wd = [w.detach() for w in weights]
    if len({w.shape for w in wd}) == 1:  # MLP hidden blocks: one stacked tensor, two reductions (3x cheaper)
        stacked = torch.stack(wd)
        wnorm = stacked.square().sum(dim=(1, 2)).sqrt()
        abs_sum = stacked.abs().sum(dim=(1, 2))
    else:
        wnorm = torch.stack(torch._foreach_norm(wd))
        abs_sum = torch.stack(torch._foreach_norm(wd, 1))
    if delta_norm is not None:
        ratio = delta_norm / wnorm.clamp_min(1e-30)
    else:
        ratio = torch.full_like(wnorm, float("nan"))
    mean_abs = abs_sum / numel
    dev = wnorm.device
    if kind == "mlp" and trace.acts:
        acts = torch.stack([a.detach() for a in trace.acts])  # (L, B, W), a fresh tensor: in-place is safe
        per_layer = acts.shape[1] * acts.shape[2]
        if activation == "sigmoid":  # in place: 4x cheaper than building temporaries
            sat = acts.sub(0.5).abs_().gt_(SIGMOID_SAT).sum(dim=(1, 2)) / per_layer
        elif activation == "tanh":
            sat = acts.abs().gt_(TANH_SAT).sum(dim=(1, 2)) / per_layer
        else:
            sat = torch.zeros(n, device=dev)
        if activation == "relu":
            dead = (acts <= 0).all(dim=1).float().mean(dim=1)
        else:
            dead = torch.zeros(n, device=dev)
        hg = torch.stack(torch._foreach_norm([_grad(h) for h in trace.hidden]))  # h_0 .. h_L
        gain = hg[:-1] / hg[1:].clamp_min(1e-38)
        product = hg[:-1] / hg[-1].clamp_min(1e-38)
        tgn = torch.zeros(0, device=dev)
    else:
        nan = torch.full((n,), float("nan"), device=dev)
        sat, dead, gain, product = nan, nan, nan, nan
        if trace.hidden:
            hs = torch.stack([h.detach() for h in trace.hidden])  # (T, B, H)
            sat = sat.clone()
            sat[2] = (hs.abs() > TANH_SAT).float().mean()
            tgn = torch.stack(torch._foreach_norm([_grad(h) for h in trace.hidden]))
        else:
            tgn = torch.zeros(0, device=dev)
    g = weights[min(max(hist_layer, 0), n - 1)].grad
    if g is None:
        counts = torch.zeros(HIST_BINS, device=dev)
    else:
        logs = torch.log10(g.detach().abs().float().clamp_min(1e-30)).clamp(HIST_LO, HIST_HI)
        counts = torch.histc(logs, bins=HIST_BINS, min=HIST_LO, max=HIST_HI)
    parts = [wnorm, ratio, mean_abs, sat, dead, gain, product, counts, tgn]
    return torch.cat([p.float().reshape(-1) for p in parts])


def _grad(h: torch.Tensor) -> torch.Tensor:
    return h.grad if h.grad is not None else torch.zeros_like(h)


def unpack_heavy(flat: np.ndarray, n: int) -> HeavyStats:
    """Split the flat array from heavy_tensor back into named per-layer arrays."""
    f = flat.astype(np.float64)
    parts = [f[i * n : (i + 1) * n] for i in range(7)]
    rest = f[7 * n :]
    counts = rest[:HIST_BINS]
    tgn = rest[HIST_BINS:]
    return HeavyStats(*parts, hist_counts=counts, time_grad_norm=tgn if len(tgn) else None)
