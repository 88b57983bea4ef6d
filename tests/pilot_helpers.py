"""Driving the dashboard in tests (torch-free): let a refresh land, wait for a condition, a small real-engine
config."""

from __future__ import annotations

import asyncio
import time

from vgtui.config import RunConfig, apply_sets
from vgtui.presets import resolve


async def settle(pilot) -> None:
    """Let the app take the session's latest snapshot and draw it."""
    await pilot.pause()
    pilot.app.poll()
    await pilot.pause()


async def until(predicate, pilot, timeout: float = 15.0) -> bool:
    """Let the app run until `predicate()` holds (True) or `timeout` seconds pass (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        await pilot.pause()
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return False


def small_config() -> RunConfig:
    """deep-sigmoid at 6x16, statistics every 5 steps: a real engine that is quick on two shared cores."""
    return apply_sets(resolve("deep-sigmoid"), ["model.depth=6", "model.width=16", "train.log_every=5"])
