"""A/B in lockstep: two trainers from one config and seed are bitwise equal until the toggle, differ after it,
and a fork at step K is the run that had the toggle applied at K."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import one_thread, preset  # noqa: F401 - one_thread: autouse fixture

from vgtui.engine.pair import TrainerPair, fork_trainer
from vgtui.engine.toggles import ToggleError, compare_label, parse_compare
from vgtui.engine.trainer import Trainer


def losses(trainer: Trainer) -> np.ndarray:
    pub = trainer.collect()
    return pub.light[:, 0] if pub is not None else np.zeros(0)


def lockstep(pair: TrainerPair, steps: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = [], []
    for _ in range(steps):
        pair.train_step()
        a.append(losses(pair.a))
        b.append(losses(pair.b))
    return np.concatenate(a), np.concatenate(b)


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize(("name", "sets"), [("deep-sigmoid", ("model.depth=6",)), ("exploding", ())])
def test_a_and_b_are_bitwise_equal_before_the_fork_and_differ_after(name, sets, seed):
    config = preset(name, *sets, f"train.seed={seed}")
    pair = TrainerPair(Trainer(config))
    before = []
    for _ in range(1 if name == "exploding" else 40):  # exploding is NaN by step 3: fork at 1
        pair.train_step()
        before.append(losses(pair.a))
    pair.fork(parse_compare("clip=0.05" if name == "exploding" else "activation=relu,init=he"))
    # a twin forked with no toggle stays equal bit for bit (NaN where A is NaN: exploding diverges)
    twin, _ = fork_trainer(pair.a)
    a, b = lockstep(pair, 40)
    t = []
    for _ in range(40):
        twin.train_step()
        t.append(losses(twin))
    np.testing.assert_array_equal(np.concatenate(t), a)  # assert_array_equal treats NaN == NaN
    assert np.isfinite(np.concatenate(before)).any()
    # B after the fork: not the same run any more (clipping fires on exploding's very first step after K)
    differ = ~((a == b) | (np.isnan(a) & np.isnan(b)))
    assert differ[1:].any()


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_two_trainers_from_one_config_are_bitwise_equal_nan_aware(seed):
    """exploding reaches NaN: the comparison is NaN-aware, and the pair stays equal through it."""
    config = preset("exploding", f"train.seed={seed}")
    pair = TrainerPair(Trainer(config), ())  # B forked at 0 with no toggle: the same preset
    a, b = lockstep(pair, 120)
    np.testing.assert_array_equal(a, b)
    assert np.array_equal(a, b, equal_nan=True)
    assert np.isnan(a).any(), "exploding is expected to reach NaN within 120 steps"


@pytest.mark.parametrize("seed", [0, 2, 4])
@pytest.mark.parametrize("toggles", ["activation=leaky_relu,init=he", "clip=1.0", "lr=0.01", "depth=4"])
def test_fork_at_k_equals_the_toggle_applied_at_k(toggles, seed):
    """B's steps after K are exactly the steps of one trainer that had the toggle applied at K."""
    config = preset("deep-sigmoid", "model.depth=6", f"train.seed={seed}")
    k = 25
    pair = TrainerPair(Trainer(config))
    single = Trainer(config)
    for _ in range(k):
        pair.train_step()
        single.train_step()
    losses(pair.a), losses(single)
    pair.fork(parse_compare(toggles))
    for t in parse_compare(toggles):
        single.apply(t)
    for _ in range(30):
        pair.train_step()
        single.train_step()
    np.testing.assert_array_equal(losses(pair.b), losses(single))


def test_fork_copies_and_leaves_a_alone():
    config = preset("deep-sigmoid", "model.depth=4")
    pair = TrainerPair(Trainer(config))
    for _ in range(5):
        pair.train_step()
    pair.fork(parse_compare("activation=relu"))
    assert pair.fork_step == 5 and pair.b.step == 5
    assert pair.a.state.activation == "sigmoid" and pair.b.state.activation == "relu"
    assert pair.b.data is pair.a.data
    assert all(pa is not pb for pa, pb in zip(pair.a.model.parameters(), pair.b.model.parameters(), strict=True))
    assert pair.label == "B: relu @ 5"
    kept = pair.end("B")
    assert kept.state.activation == "relu" and pair.b is None


def test_a_toggle_that_does_not_apply_leaves_no_b():
    pair = TrainerPair(Trainer(preset("rnn-long")))
    with pytest.raises(ToggleError, match="applies to MLP"):
        pair.fork(parse_compare("activation=relu"))
    assert pair.b is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected toggles joined by ','"),
        ("activation=", "activation=''"),
        ("activation=swish", "allowed: sigmoid, tanh, relu, leaky_relu"),
        ("colour=red", "unknown toggle 'colour'; allowed:"),
        ("relu", "expected name=value"),
        ("activation=relu,,init=he", "expected toggles joined by ','"),
        ("reset", "only toggles"),
    ],
)
def test_bad_compare_values_name_what_is_allowed(text, message):
    with pytest.raises(ToggleError, match=message.replace("(", r"\(")) as info:
        parse_compare(text)
    assert "\n" not in str(info.value)


def test_compare_label_names_the_values():
    assert compare_label(parse_compare("activation=leaky_relu,init=he"), 300) == "B: leaky_relu+he @ 300"
    assert compare_label(parse_compare("clip=1"), 0) == "B: clip=1 @ 0"
