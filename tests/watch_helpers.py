"""Shared helpers for the vgtui.watch tests: a private socket directory, subprocesses, waiting."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent / "watch_scripts"


@pytest.fixture(name="watch_dir")
def watch_dir_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private per-test socket directory (VGTUI_DIR), so tests never meet each other's or a user's runs."""
    d = tmp_path / "w"
    monkeypatch.setenv("VGTUI_DIR", str(d))
    return d


def child_env() -> dict[str, str]:
    """The environment of a training subprocess: this worktree's vgtui, one torch thread (2 shared cores)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def spawn(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=child_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def wait_for(condition: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture(name="one_torch_thread")
def one_torch_thread_fixture():
    """In-process training on one intra-op thread (two threads spin against the other processes here)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def train_steps(model, opt, w, steps: int) -> None:
    """`steps` steps of a user's loop on a fixed random batch (the first layer's input width), logged to `w`."""
    import torch
    import torch.nn.functional as F

    x = torch.randn(32, model[0].in_features)
    y = (x[:, 0] > 0).long()
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        w.log(loss=loss)
        opt.step()
