"""Exploding gradients: the preset diverges without clipping (paused, no crash) and trains with it."""

from __future__ import annotations

import numpy as np
from helpers import preset

from vgtui.contract import Reset, Toggle
from vgtui.engine.session import Session


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


def test_the_explosion_is_seen_before_the_nan_and_stays_on_screen_after_it():
    """An 'exploding' verdict is published for a step whose loss is still finite; once diverged, the snapshot
    keeps the last finite per-layer gradients and chain rule (and says from which step they are)."""
    seen: list[tuple[int, str, tuple[str, ...], float]] = []

    def on_publish(rec):
        s = rec.snapshot
        seen.append((s.step, s.status, tuple(v.code for v in s.verdicts), s.loss))

    session = Session(preset("exploding"), device="cpu", max_steps=50, on_publish=on_publish).start()
    try:
        assert session.done.wait(30)
        snap = session.latest()
    finally:
        session.stop()
    assert snap.status == "diverged"
    assert any("exploding" in codes and np.isfinite(loss) for _, _, codes, loss in seen), seen
    assert {"diverged", "exploding"} <= {v.code for v in snap.verdicts}
    assert np.isfinite(snap.grad_norm).all() and snap.grad_step < snap.step
    assert snap.stats_step < snap.step and snap.gain_product[0] > 30
