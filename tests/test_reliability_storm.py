"""Toggle storms: 1,000 random commands, to the engine and as key presses, never crash or deadlock, and
at the end the model really is what the snapshot and the status bar say."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from vgtui.config import apply_sets
from vgtui.contract import Pause, Reset, Resume, SelectLayer, Step, Toggle
from vgtui.engine.models import MLP
from vgtui.engine.session import Session
from vgtui.presets import resolve
from vgtui.tui.app import VgtuiApp
from vgtui.tui.panels import StatusBar

SMALL = ["model.depth=4", "model.width=8", "train.batch_size=16", "train.log_every=3"]
VALUES = {
    "activation": ["sigmoid", "tanh", "relu", "leaky_relu", "bogus"],
    "init": ["default", "xavier", "he"],
    "batchnorm": ["on", "off"],
    "skip": ["on", "off"],
    "clip": ["off", "0.5", "2", "-1"],
    "lr": ["0.001", "0.01", "0.1", "0", "nan"],
    "depth": ["1", "2", "3", "5", "8", "0", "99"],
    "cell": ["lstm"],
}


def random_command(rng: random.Random):
    r = rng.random()
    if r < 0.75:
        name = rng.choice(list(VALUES))
        return Toggle(name, rng.choice(VALUES[name]))
    return rng.choice([Pause(), Resume(), Step(rng.randint(1, 3)), Reset(), SelectLayer(rng.randint(0, 9))])


def actual_state(model: MLP) -> dict:
    """What the torch model really is, read from its modules."""
    return {
        "activation": model.activation,
        "batchnorm": all(b.bn is not None for b in model.blocks),
        "no_partial_bn": len({b.bn is None for b in model.blocks}) == 1,
        "skip": model.skip,
        "depth": len(model.blocks),
    }


def wait_quiet(session: Session, timeout: float = 20.0) -> None:
    """Until the command queue is empty and one more publish has happened."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and not session._commands.empty():
        time.sleep(0.01)
    session.send(Pause())
    while time.monotonic() < end and session.latest().status == "running":
        time.sleep(0.01)


def test_engine_survives_a_storm_of_1000_commands():
    rng = random.Random(7)
    session = Session(apply_sets(resolve("deep-sigmoid"), SMALL), device="cpu").start()
    try:
        for _ in range(1000):
            session.send(random_command(rng))
            if rng.random() < 0.1:
                time.sleep(0.001)
        wait_quiet(session)
        assert session.alive
        snap = session.latest()
        state = actual_state(session.trainer.model)
        assert state["no_partial_bn"]
        assert snap.model.activation == state["activation"]
        assert snap.model.batchnorm == state["batchnorm"]
        assert snap.model.skip == state["skip"]
        assert snap.model.depth == state["depth"] == len(snap.layer_names)
        params = {id(p) for p in session.trainer.model.parameters()}
        assert params == {id(p) for p in session.trainer.optimizer_params()}
        assert any("allowed" in n.text for n in snap.notices)  # the bad values were refused, not applied
    finally:
        t0 = time.monotonic()
        session.stop()
        assert time.monotonic() - t0 < 1.0
    assert not session.alive


KEYS = list("aibsc+-[]ln") + ["space", "r", "j", "k"]


@pytest.mark.asyncio
async def test_dashboard_survives_1000_key_presses_and_shows_the_real_model():
    rng = random.Random(11)
    sessions: list[Session] = []

    def factory(cfg):
        sessions.append(Session(cfg, device="cpu"))
        return sessions[-1]

    app = VgtuiApp(apply_sets(resolve("deep-sigmoid"), SMALL), factory, refresh_hz=10)
    async with app.run_test(size=(200, 40)) as pilot:
        while not sessions or sessions[0].latest() is None:
            await asyncio.sleep(0.01)
        for i in range(1000):
            app.simulate_key(rng.choice(KEYS))
            if i % 20 == 0:
                await asyncio.sleep(0.005)
        session = sessions[0]
        await pilot.pause()
        wait_quiet(session)
        app._optimistic = None  # nothing is in flight any more: show what the engine says
        for _ in range(10):
            app.poll()
            await pilot.pause()
            await asyncio.sleep(0.05)
        bar = app.query_one(StatusBar)
        text = "\n".join(line.text for line in bar.render_lines(bar.region.reset_offset))
        snap = session.latest()
        state = actual_state(session.trainer.model)
        assert snap.model.describe() in text.replace("\n", "")
        assert snap.model.activation == state["activation"] and snap.model.depth == state["depth"]
        assert snap.model.batchnorm == state["batchnorm"] and snap.model.skip == state["skip"]
        assert session.alive
        await pilot.press("q")
    assert not sessions[0].alive
