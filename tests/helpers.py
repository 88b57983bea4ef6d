"""Shared helpers for engine tests: drive a Trainer synchronously and collect numbers."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from vgtui.config import RunConfig, apply_sets
from vgtui.engine import trainer as trainer_module
from vgtui.engine.models import Trace
from vgtui.engine.toggles import parse_toggle
from vgtui.engine.trainer import Trainer
from vgtui.presets import resolve


def preset(name: str, *sets: str) -> RunConfig:
    return apply_sets(resolve(name), list(sets))


def train(trainer: Trainer, steps: int) -> dict[str, np.ndarray]:
    """Run `steps` steps; return per-step loss, per-step first/last grad ratio, and the last heavy stats."""
    losses, ratios, heavy = [], [], None
    for _ in range(steps):
        trainer.train_step()
        if trainer.heavy_due(trainer.step):
            pub = trainer.collect()
            assert pub is not None
            losses.extend(pub.light[:, 0])
            g = pub.light[:, 4:]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios.extend(g[:, 0] / g[:, -1])
            heavy = pub.heavy
    pub = trainer.collect()
    if pub is not None:
        losses.extend(pub.light[:, 0])
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios.extend(pub.light[:, 4] / pub.light[:, -1])
    return {"loss": np.array(losses), "ratio": np.array(ratios), "heavy": heavy}


def toggle(trainer: Trainer, *texts: str) -> None:
    for text in texts:
        trainer.apply(parse_toggle(text))


def geomean(x: np.ndarray) -> float:
    x = np.abs(np.asarray(x, dtype=float))
    x = x[np.isfinite(x) & (x > 0)]
    return float(np.exp(np.log(x).mean()))


def traced_step(trainer: Trainer, monkeypatch) -> Trace:
    """One step, keeping the Trace the trainer recorded (hidden states with their gradients, activations)."""
    traces = []

    def capture() -> Trace:
        traces.append(Trace())
        return traces[-1]

    monkeypatch.setattr(trainer_module, "Trace", capture)
    trainer.train_step()
    return traces[-1]


@pytest.fixture(autouse=True)
def one_thread():
    """Autouse where imported: the Trainer on one intra-op thread, as the engine's worker runs it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def sigint_as_from_a_terminal() -> None:
    """A Popen preexec_fn for tests that send SIGINT: the child takes it as a program started from a terminal does.
    A test runner started in the background by a non-interactive shell hands its children SIGINT ignored, and Python
    then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def ends_with_the_test(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """`proc`, killed if the test leaves it running: a failed assertion must not leave a trainer eating a core for
    the rest of the run (two did, and slowed a CI run by minutes)."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
