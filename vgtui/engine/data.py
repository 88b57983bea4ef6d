"""Synthetic, seeded data sets generated in-process (nothing is downloaded)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from vgtui.config import DataConfig


@dataclass
class Dataset:
    """Inputs and targets on one device, with a seeded minibatch sampler."""

    x: torch.Tensor
    y: torch.Tensor
    n_in: int
    n_out: int
    regression: bool = False

    def batch(self, size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, self.x.shape[0], (size,), generator=gen, device="cpu").to(self.x.device)
        return self.x[idx], self.y[idx]

    @functools.cached_property
    def baseline_loss(self) -> float:
        """Loss of the best constant prediction (predict the mean / the class prior)."""
        if self.regression:
            return float(self.y.float().var(unbiased=False))
        counts = torch.bincount(self.y.cpu(), minlength=self.n_out).double()
        p = counts / counts.sum()
        p = p[p > 0]
        return float(-(p * p.log()).sum())


def _spirals(n: int, classes: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.randint(0, classes, (n,), generator=g)
    r = torch.rand(n, generator=g)
    theta = 3.5 * math.pi * r + y.double() * (2 * math.pi / classes)
    pts = torch.stack([r * torch.cos(theta), r * torch.sin(theta)], dim=1)
    return pts + noise * 0.3 * torch.randn(n, 2, generator=g, dtype=torch.float64), y


def _moons(n: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.randint(0, 2, (n,), generator=g)
    t = torch.rand(n, generator=g, dtype=torch.float64) * math.pi
    x0 = torch.where(y == 0, torch.cos(t), 1 - torch.cos(t))
    x1 = torch.where(y == 0, torch.sin(t), 0.5 - torch.sin(t))
    pts = torch.stack([x0 - 0.5, x1 - 0.25], dim=1)
    return pts + noise * torch.randn(n, 2, generator=g, dtype=torch.float64), y


def _checkerboard(n: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    pts = torch.rand(n, 2, generator=g, dtype=torch.float64) * 2 - 1
    cells = torch.floor((pts + 1) * 2).long()  # 4x4 board
    y = (cells[:, 0] + cells[:, 1]) % 2
    return pts + noise * 0.1 * torch.randn(n, 2, generator=g, dtype=torch.float64), y


def _circles(n: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.randint(0, 2, (n,), generator=g)
    t = torch.rand(n, generator=g, dtype=torch.float64) * 2 * math.pi
    r = torch.where(y == 0, 1.0, 0.5)
    pts = torch.stack([r * torch.cos(t), r * torch.sin(t)], dim=1)
    return pts + noise * 0.3 * torch.randn(n, 2, generator=g, dtype=torch.float64), y


FIRST_BIT_SHORT = 0.3  # share of first-bit sequences whose marked value sits at a random later step


def _first_bit(n: int, seq_len: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Label = sign of the marked value (a 1 in the second channel); every other value is noise.

    In most sequences the marked value is the first one, so the answer, read after the last step,
    needs one bit carried across all seq_len steps. In the rest (FIRST_BIT_SHORT) it sits at a random
    later position: those shorter gaps give a gated cell a first foothold from which its gates learn to
    hold the bit for longer, while a plain tanh RNN only ever profits from the few shortest ones.
    """
    x = torch.zeros(n, seq_len, 2, dtype=torch.float64)
    x[:, :, 0] = torch.randn(n, seq_len, generator=g, dtype=torch.float64) * noise
    y = torch.randint(0, 2, (n,), generator=g)
    late = torch.rand(n, generator=g) < FIRST_BIT_SHORT
    pos = torch.where(late, torch.randint(0, seq_len, (n,), generator=g), torch.zeros(n, dtype=torch.long))
    rows = torch.arange(n)
    x[rows, pos, 0] = y.double() * 2 - 1
    x[rows, pos, 1] = 1.0
    return x, y


def _adding(n: int, seq_len: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The adding problem: sum the two values whose marker is 1 (one in each half of the sequence)."""
    values = torch.rand(n, seq_len, generator=g, dtype=torch.float64)
    markers = torch.zeros(n, seq_len, dtype=torch.float64)
    half = max(seq_len // 2, 1)
    first = torch.randint(0, half, (n,), generator=g)
    second = torch.randint(half, seq_len, (n,), generator=g) if seq_len > 1 else first
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    y = (values * markers).sum(dim=1)
    return torch.stack([values, markers], dim=2), y


def make_dataset(cfg: DataConfig, seed: int, device: torch.device) -> Dataset:
    """Build the task's data set from the seed (identical for the same seed)."""
    g = torch.Generator().manual_seed(seed + 7919)
    n = cfg.samples
    regression = False
    if cfg.task == "spirals":
        x, y = _spirals(n, cfg.classes, cfg.noise, g)
        n_out = cfg.classes
    elif cfg.task == "moons":
        x, y = _moons(n, cfg.noise, g)
        n_out = 2
    elif cfg.task == "checkerboard":
        x, y = _checkerboard(n, cfg.noise, g)
        n_out = 2
    elif cfg.task == "circles":
        x, y = _circles(n, cfg.noise, g)
        n_out = 2
    elif cfg.task == "first-bit":
        x, y = _first_bit(n, cfg.seq_len, cfg.noise, g)
        n_out = 2
    elif cfg.task == "adding":
        x, y = _adding(n, cfg.seq_len, g)
        n_out = 1
        regression = True
    else:  # pragma: no cover - config validation prevents it
        raise ValueError(f"unknown task {cfg.task}")
    y = y.float() if regression else y.long()
    return Dataset(x=x.float().to(device), y=y.to(device), n_in=x.shape[-1], n_out=n_out, regression=regression)
