"""Exploding gradients: the preset diverges without clipping (paused, no crash) and trains with it."""

from __future__ import annotations

import numpy as np
from helpers import preset, train

from vgtui.contract import Reset, Toggle
from vgtui.engine.session import Session
from vgtui.engine.trainer import Trainer


def wait_for(predicate, timeout=30.0):
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_exploding_diverges_pauses_and_recovers_in_the_same_session():
    session = Session(preset("exploding"), device="cpu").start()
    try:
        assert wait_for(lambda: (s := session.latest()) is not None and s.status == "diverged")
        snap = session.latest()
        assert any(v.code == "diverged" for v in snap.verdicts)
        assert any("diverged" in n.text for n in snap.notices)
        step = snap.step
        assert wait_for(lambda: False, timeout=0.3) is False
        assert session.latest().step == step  # paused: no more steps
        assert session.alive
        session.send(Toggle("clip", "1.0"))
        session.send(Reset())
        assert wait_for(lambda: session.latest().step >= step + 300 and session.latest().status == "running")
        snap = session.latest()
        assert np.isfinite(snap.loss)
        assert snap.model.clip == 1.0
        assert [e.name for e in snap.events][-2:] == ["clip", "reset"]
    finally:
        session.stop()
    assert not session.alive


def test_exploding_trains_with_clipping():
    trainer = Trainer(preset("exploding", "train.clip=1.0"))
    out = train(trainer, 400)
    assert np.all(np.isfinite(out["loss"]))
    assert out["loss"][-20:].mean() < 0.3
