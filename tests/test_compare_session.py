"""A live comparison, behind the Session face (in a thread and in a child process): `Fork` makes run B from run A
at the current step, toggles then go to B (or A, after `Target`), `EndCompare` keeps the chosen run."""

from __future__ import annotations

import time

import pytest
from helpers import preset

from vgtui.contract import EndCompare, Fork, Pause, Step, Target, Toggle
from vgtui.engine.compare import CompareSession
from vgtui.engine.process import ProcessSession

SMALL = ("model.depth=6", "model.width=16")


def wait(session, predicate, timeout: float = 60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        snap = session.latest()
        if snap is not None and predicate(snap):
            return snap
        time.sleep(0.02)
    raise AssertionError(f"timed out; last snapshot at step {getattr(session.latest(), 'step', None)}")


@pytest.fixture(params=["thread", "process"])
def session(request):
    cls = CompareSession if request.param == "thread" else ProcessSession
    s = cls(preset("deep-sigmoid", *SMALL), device="cpu").start()
    yield s
    s.stop(timeout=3.0)


def test_fork_target_and_end_keeping_b(session):
    wait(session, lambda s: s.step >= 30)
    session.send(Pause())
    paused = wait(session, lambda s: s.status == "paused")
    session.send(Fork((Toggle("activation", "leaky_relu"), Toggle("init", "he"))))
    snap = wait(session, lambda s: s.compare is not None)
    k = paused.step
    assert snap.compare.fork_step == k and snap.compare.label == f"B: leaky_relu+he @ {k}"
    assert snap.compare.target == "B" and snap.compare.b.step == k
    assert snap.compare.b.model.activation == "leaky_relu" and snap.model.activation == "sigmoid"
    session.send(Step(5))  # both runs step, in lockstep
    snap = wait(session, lambda s: s.step == k + 5 and s.compare.b.step == k + 5)
    session.send(Toggle("lr", "0.02"))  # goes to B
    session.send(Target("A"))
    session.send(Toggle("skip", "on"))  # goes to A
    snap = wait(session, lambda s: s.model.skip and s.compare.b.lr == 0.02)
    assert snap.lr == 0.01 and not snap.compare.b.model.skip and snap.compare.target == "A"
    session.send(Step(3))
    wait(session, lambda s: s.compare.b.step == k + 8)
    assert session.history_b is not None
    b_steps = session.history_b.view().steps
    assert b_steps[0] > k and b_steps[-1] == k + 8  # B's history starts at the fork
    session.send(EndCompare("B"))
    snap = wait(session, lambda s: s.compare is None)
    assert snap.model.activation == "leaky_relu" and snap.lr == 0.02
    assert session.history_b is None
    session.send(Step(2))
    wait(session, lambda s: s.step == k + 10)
    steps = session.history.view().steps
    assert steps[0] > k and steps[-1] == k + 10  # the kept run's history is B's


def test_launch_compare_forks_at_step_0():
    s = CompareSession(preset("deep-sigmoid", *SMALL), device="cpu", compare=(Toggle("init", "he"),)).start()
    try:
        snap = wait(s, lambda x: x.compare is not None and x.compare.b.step >= 20)
        assert snap.compare.label == "B: he @ 0" and snap.compare.b.model.init == "he"
        s.send(EndCompare("A"))
        snap = wait(s, lambda x: x.compare is None)
        assert snap.model.init == "default"
        s.send(Fork())  # f again: the session's --compare toggles, at the current step
        snap = wait(s, lambda x: x.compare is not None)
        assert snap.compare.b.model.init == "he" and snap.compare.fork_step > 0
    finally:
        s.stop(timeout=3.0)


def test_commands_that_do_not_apply_are_notices():
    s = CompareSession(preset("rnn-long"), device="cpu", start_paused=True).start()
    try:
        s.send(Target("B"))
        s.send(EndCompare("B"))
        s.send(Fork((Toggle("activation", "relu"),)))
        snap = wait(s, lambda x: len(x.notices) >= 3)
        texts = [n.text for n in snap.notices]
        assert "not comparing: fork a run B first (f)" in texts
        assert any(t.startswith("fork: activation applies to MLP presets") for t in texts)
        assert snap.compare is None
    finally:
        s.stop(timeout=3.0)


def test_a_refused_toggle_for_b_is_a_notice_the_dashboard_sees():
    s = CompareSession(preset("deep-sigmoid", *SMALL), device="cpu", start_paused=True).start()
    try:
        s.send(Fork())
        s.send(Toggle("cell", "lstm"))  # goes to B, which is an MLP
        snap = wait(s, lambda x: any(n.text.startswith("B: cell applies to RNN") for n in x.notices))
        assert snap.compare is not None
    finally:
        s.stop(timeout=3.0)


def test_scheduled_toggles_apply_to_both_runs(tmp_path):
    from vgtui.cli import main
    from vgtui.runlog import read_runlog

    out = tmp_path / "both.jsonl"
    assert main(["run", "deep-sigmoid", "--set", "model.depth=6", "--steps", "60", "--compare", "init=he",
                 "--toggle", "30:lr=0.05", "--out", str(out), "--quiet"]) == 0  # fmt: skip
    events = [(r["run"], r["step"], r["name"]) for r in read_runlog(out) if r["type"] == "event"]
    assert ("A", 30, "lr") in events and ("B", 30, "lr") in events


def test_a_recorded_live_fork_replays_as_a_comparison(tmp_path):
    from vgtui.replay import ReplaySession

    out = tmp_path / "live.jsonl"
    s = CompareSession(preset("deep-sigmoid", *SMALL), device="cpu", record=str(out)).start()
    try:
        wait(s, lambda x: x.step >= 20)
        s.send(Fork((Toggle("activation", "relu"),)))
        wait(s, lambda x: x.compare is not None and x.compare.b.step >= x.compare.fork_step + 20)
    finally:
        s.stop(timeout=3.0)
    replay = ReplaySession(out)
    try:
        replay._goto(len(replay.steps) - 1)
        snap = replay.latest()
        assert snap.compare is not None and snap.compare.b.model.activation == "relu"
        assert snap.compare.label == f"B: relu @ {snap.compare.fork_step}" and snap.compare.fork_step >= 20
    finally:
        replay.stop()


@pytest.mark.parametrize("seed", [0, 3])
def test_f_at_step_k_gives_the_run_that_had_the_toggle_at_k(seed):
    """Through the Session face, as the dashboard's f does: B's steps after K are the steps of a single run that
    had the toggles applied at K (the same numbers in its history)."""
    import numpy as np

    from vgtui.engine.session import Session

    cfg = preset("deep-sigmoid", *SMALL, f"train.seed={seed}")
    k, after = 25, 30
    remedy = (Toggle("activation", "leaky_relu"), Toggle("init", "he"))
    pair = CompareSession(cfg, device="cpu", start_paused=True).start()
    single = Session(cfg, device="cpu", start_paused=True).start()
    try:
        for s in (pair, single):
            s.send(Step(k))
        wait(pair, lambda x: x.step == k)
        wait(single, lambda x: x.step == k)
        # one after the other: an init toggle draws its weights from torch's global generator, which both share
        pair.send(Fork(remedy))
        wait(pair, lambda x: x.compare is not None)
        for t in remedy:
            single.send(t)
        wait(single, lambda x: x.model.init == "he")
        for s in (pair, single):
            s.send(Step(after))
        wait(pair, lambda x: x.compare is not None and x.compare.b.step == k + after)
        wait(single, lambda x: x.step == k + after)
        vb, vs = pair.history_b.view(), single.history.view()
        keep = vs.steps > k
        assert list(vb.steps) == list(vs.steps[keep]) == list(range(k + 1, k + after + 1))
        np.testing.assert_array_equal(vb["loss"], vs["loss"][keep])
        assert not np.array_equal(pair.history.view()["loss"][-after:], vb["loss"])  # and A went on without it
    finally:
        pair.stop(timeout=3.0)
        single.stop(timeout=3.0)


def test_fork_leaves_out_the_toggles_that_change_nothing():
    """f after the comparison kept B (already Leaky ReLU + He): B is forked as a copy, its weights not drawn anew."""
    s = CompareSession(preset("deep-sigmoid", *SMALL), device="cpu", start_paused=True,
                       compare=(Toggle("activation", "leaky_relu"), Toggle("init", "he"))).start()  # fmt: skip
    try:
        s.send(Step(10))
        wait(s, lambda x: x.compare is not None and x.compare.b.step == 10)
        s.send(EndCompare("B"))
        wait(s, lambda x: x.compare is None)
        s.send(Fork())
        snap = wait(s, lambda x: x.compare is not None)
        assert snap.compare.label == "B: same as A @ 10"
        assert [e.name for e in snap.compare.b.events] == ["fork"]
        s.send(Step(5))
        snap = wait(s, lambda x: x.compare.b.step == 15 and x.step == 15)
        assert snap.loss == snap.compare.b.loss  # the same run, bit for bit
    finally:
        s.stop(timeout=3.0)
