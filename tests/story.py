"""Story harness: run a preset's scene as a learner would (the baseline, then each suggested remedy applied
mid-run from a copy of the same network) and measure what its description claims."""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, field

import numpy as np
import torch

from vgtui.config import RunConfig, apply_sets
from vgtui.contract import Reset, Toggle
from vgtui.engine.toggles import parse_remedy
from vgtui.engine.trainer import Trainer
from vgtui.presets import resolve

SEEDS = range(int(os.environ.get("VGTUI_STORY_SEEDS", "5")))  # CI: 0-4; a wider sweep: VGTUI_STORY_SEEDS=20


@dataclass
class Run:
    """Per-step and per-heavy-step numbers of one stretch of training."""

    loss: list[float] = field(default_factory=list)
    acc: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    ratio: list[float] = field(default_factory=list)  # weight-gradient norm, layer 1 / last layer
    chain: list[float] = field(default_factory=list)  # ||dL/dh_0|| / ||dL/dh_L|| (heavy steps)
    dead: list[float] = field(default_factory=list)  # mean dead share over layers (heavy steps)
    update1: list[float] = field(default_factory=list)  # layer 1's real update ratio (heavy steps; 0 = frozen)
    slope: list[float] = field(default_factory=list)  # mean activation slope over layers (heavy steps)
    time_ratio: list[float] = field(default_factory=list)  # RNN: ||dL/dh_1|| / ||dL/dh_T|| (heavy steps)
    nan_at: int | None = None

    def mean(self, name: str, last: int) -> float:
        x = np.asarray(getattr(self, name)[-last:], dtype=float)
        return float(np.mean(x))

    def geo(self, name: str, last: int) -> float:
        x = np.abs(np.asarray(getattr(self, name)[-last:], dtype=float))
        x = np.maximum(x[np.isfinite(x)], 1e-45)
        return float(np.exp(np.log(x).mean())) if len(x) else math.nan


def config(name: str, seed: int, *sets: str) -> RunConfig:
    return apply_sets(resolve(name), [*sets, f"train.seed={seed}"])


def trainer(name: str, seed: int, *sets: str) -> Trainer:
    torch.set_num_threads(1)  # the story is told on one thread, as the dashboard's worker trains
    return Trainer(config(name, seed, *sets))


def train(t: Trainer, steps: int, stop_on_nan: bool = True) -> Run:
    """Train `steps` steps (fewer if the loss goes NaN/Inf and stop_on_nan) and collect the numbers."""
    run = Run()
    for _ in range(steps):
        t.train_step()
        if t.heavy_due(t.step):
            _absorb(run, t)
            if run.nan_at is not None and stop_on_nan:
                break
    _absorb(run, t)
    return run


def _absorb(run: Run, t: Trainer) -> None:
    for pub in t.collect_all():
        light = pub.light
        run.loss.extend(light[:, 0])
        run.acc.extend(light[:, 1])
        run.total.extend(light[:, 2])
        with np.errstate(all="ignore"):
            run.ratio.extend(light[:, 4] / light[:, -1])
        if run.nan_at is None and not np.isfinite(light[:, 0]).all():
            run.nan_at = int(pub.steps[np.argmin(np.isfinite(light[:, 0]))])
        h = pub.heavy
        if h is not None:
            run.chain.append(float(h.gain_product[0]) if len(h.gain_product) else math.nan)
            run.update1.append(float(h.update_ratio[0]))
            run.slope.append(float(np.nanmean(h.slope)) if np.isfinite(h.slope).any() else math.nan)
            run.dead.append(float(np.mean(h.dead)) if np.isfinite(h.dead).any() else math.nan)
            tg = h.time_grad_norm
            run.time_ratio.append(float(tg[0] / tg[-1]) if tg is not None and tg[-1] > 0 else math.nan)


def apply_remedy(t: Trainer, remedy: str) -> Trainer:
    """A copy of the trainer with the remedy's toggles (and reset, if it says so) applied, as the keys would."""
    t = copy.deepcopy(t)
    for command in parse_remedy(remedy):
        if isinstance(command, Reset):
            t.reset()
        else:
            assert isinstance(command, Toggle)
            t.apply(command)
    return t
