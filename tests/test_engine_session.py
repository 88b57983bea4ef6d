"""The Session face: a worker thread that pauses, steps, resets, survives faults and stops promptly."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from helpers import preset

from vgtui.contract import Pause, Reset, Resume, SelectLayer, Step, Toggle
from vgtui.engine.session import Session
from vgtui.engine.trainer import Trainer
from vgtui.history import History

SMALL = ("model.depth=6", "model.width=16", "train.log_every=5")


def wait_for(predicate, timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def session():
    s = Session(preset("deep-sigmoid", *SMALL), device="cpu").start()
    yield s
    s.stop()


def test_trains_publishes_and_fills_history(session):
    assert wait_for(lambda: (s := session.latest()) is not None and s.step >= 50)
    snap = session.latest()
    assert snap.status == "running" and snap.device == "cpu"
    assert snap.grad_norm.shape == (6,) and np.all(snap.grad_norm > 0)
    assert snap.layer_names == ("L1", "L2", "L3", "L4", "L5", "L6")
    assert len(session.history) >= 50
    view = session.history.view(max_points=20)
    assert len(view) == 20 and view.layers["grad_norm"].shape == (20, 6)


def test_pause_stops_steps_and_step_runs_exactly_one(session):
    assert wait_for(lambda: (s := session.latest()) is not None and s.step > 5)
    session.send(Pause())
    assert wait_for(lambda: session.latest().status == "paused")
    step = session.latest().step
    time.sleep(0.3)
    assert session.latest().step == step
    session.send(Step())
    assert wait_for(lambda: session.latest().step == step + 1)
    time.sleep(0.2)
    assert session.latest().step == step + 1 and session.latest().status == "paused"
    session.send(Resume())
    assert wait_for(lambda: session.latest().step > step + 5)


def test_toggle_is_applied_between_steps_and_recorded(session):
    session.send(Toggle("activation", "relu"))
    assert wait_for(lambda: session.latest() is not None and session.latest().model.activation == "relu")
    snap = session.latest()
    assert snap.events[-1].name == "activation" and snap.events[-1].label.startswith("relu @ ")
    assert session.trainer.model.activation == "relu"


def test_refused_toggle_becomes_a_notice(session):
    session.send(Toggle("cell", "lstm"))
    assert wait_for(lambda: session.latest() is not None and session.latest().notices)
    notice = session.latest().notices[-1]
    assert notice.level == "warn" and "RNN" in notice.text
    assert session.alive


def test_select_layer_moves_the_histogram(session):
    session.send(SelectLayer(4))
    assert wait_for(lambda: session.latest() is not None and session.latest().hist_layer == 3)
    session.send(SelectLayer(99))
    assert wait_for(lambda: any("allowed: 1 to 6" in n.text for n in session.latest().notices))


def test_worker_fault_is_shown_and_reset_recovers(monkeypatch):
    calls = {"n": 0}
    original = Trainer.train_step

    def flaky(self):
        calls["n"] += 1
        if calls["n"] == 20:
            raise RuntimeError("injected fault")
        return original(self)

    monkeypatch.setattr(Trainer, "train_step", flaky)
    session = Session(preset("deep-sigmoid", *SMALL), device="cpu").start()
    try:
        assert wait_for(lambda: (s := session.latest()) is not None and s.status == "error")
        snap = session.latest()
        assert "injected fault" in snap.error
        assert any(n.level == "error" and "injected fault" in n.text for n in snap.notices)
        assert session.alive
        session.send(Reset())
        assert wait_for(lambda: session.latest().status == "running" and session.latest().step > snap.step + 10)
        assert session.latest().error is None
    finally:
        session.stop()
    assert not session.alive


def test_stop_joins_the_worker_quickly_while_running_and_paused():
    for paused in (False, True):
        s = Session(preset("deep-sigmoid", *SMALL), device="cpu", start_paused=paused).start()
        wait_for(lambda s=s: s.latest() is not None)
        t0 = time.monotonic()
        s.stop(timeout=1.0)
        assert time.monotonic() - t0 < 1.0
        assert not s.alive
    assert not [t for t in threading.enumerate() if t.name == "vgtui-worker"]


def test_scheduled_toggles_apply_at_their_step():
    s = Session(
        preset("deep-sigmoid", *SMALL), device="cpu", max_steps=40, schedule=[(25, Toggle("lr", "0.5"))]
    ).start()
    assert s.done.wait(30)
    s.stop()
    ev = [e for e in s.latest().events if e.name == "lr"]
    assert ev and ev[0].step == 25 and s.latest().lr == 0.5 and s.latest().status == "done"


def test_history_never_grows_past_its_bound():
    h = History(capacity=64, max_layers=8)
    for step in range(10_000):
        h.append(step, {"loss": float(step)}, {"grad_norm": np.ones(5)})
        assert len(h) <= 64
    view = h.view()
    assert view.steps[0] == 0 and view.steps[-1] >= 9_000  # the whole run, at a coarser stride
    assert np.all(np.diff(view.steps) > 0)
    assert h.nbytes() < 64 * 8 * 8 * 4 * 2 + 10_000


def test_process_session_has_the_same_face():
    from vgtui.engine.process import ProcessSession

    s = ProcessSession(preset("deep-sigmoid", *SMALL), device="cpu").start()
    try:
        assert wait_for(lambda: (snap := s.latest()) is not None and snap.step >= 30, timeout=60)
        assert len(s.history) >= 30
        s.send(Toggle("activation", "relu"))
        assert wait_for(lambda: s.latest().model.activation == "relu")
        assert s.latest().events[-1].name == "activation"
        s.send(Pause())
        assert wait_for(lambda: s.latest().status == "paused")
        s.send(Toggle("cell", "gru"))
        assert wait_for(lambda: any("RNN" in n.text for n in s.latest().notices))
    finally:
        t0 = time.monotonic()
        s.stop(timeout=1.0)
        assert time.monotonic() - t0 < 1.0
    assert not s.alive


def test_device_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    import torch

    from vgtui.engine.trainer import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device("auto").type == "cpu"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device("auto").type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto").type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA GPU"):
        pick_device("cuda")


def test_fast_heavy_steps_published_together_still_reach_history_and_subscriber_one_by_one():
    records = []
    steps = 120
    s = Session(preset("deep-sigmoid", *SMALL[:2], "train.log_every=1"), device="cpu", max_steps=steps,
                on_publish=records.append)  # fmt: skip
    s.start()
    assert s.done.wait(60)
    s.stop()
    published = [r for r in records if r.published is not None]
    assert len(published) == steps  # one record per heavy step, each with its own snapshot
    assert [r.snapshot.step for r in published] == list(range(1, steps + 1))
    assert [r.snapshot.stats_step for r in published] == list(range(1, steps + 1))
    assert all(r.published.heavy_step == r.snapshot.step for r in published)
    assert [r.snapshot.status for r in published[:-1]] == ["running"] * (steps - 1)
    assert published[-1].snapshot.status == "done" and s.latest().step == steps
    view = s.history.view()
    np.testing.assert_array_equal(view.steps, np.arange(1, steps + 1))
    assert np.isfinite(view.layers["weight_norm"]).all()  # every step's heavy statistics
