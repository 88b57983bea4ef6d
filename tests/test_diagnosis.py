"""Plain-words verdicts: the right words, the ratio in the text, remedies named, and no flicker."""

from __future__ import annotations

import numpy as np

from vgtui.engine.diagnosis import Diagnoser, Observation


def obs(step: int, grad=(1e-9, 1e-5, 1e-1), loss=0.69, diverged=False, **kw) -> Observation:
    n = len(grad)
    base = dict(
        step=step,
        kind="mlp",
        activation="sigmoid",
        loss=loss,
        baseline_loss=0.693,
        grad_norm=np.array(grad, dtype=float),
        grad_total=0.1,
        saturation=np.zeros(n),
        dead=np.zeros(n),
        weight_mean_abs=np.full(n, 0.1),
        time_grad_norm=None,
        diverged=diverged,
    )
    base.update(kw)
    return Observation(**base)


def codes(verdicts) -> set[str]:
    return {v.code for v in verdicts}


def test_vanishing_needs_three_publishes_and_names_the_ratio_and_remedies():
    d = Diagnoser()
    assert codes(d.update(obs(10))) == {"watching"}
    d.update(obs(20))
    verdicts = d.update(obs(30))
    v = next(v for v in verdicts if v.code == "vanishing")
    assert v.text == "vanishing: layer 1's weight gradient is 1e-08 of layer 3's"
    assert any("ReLU" in r for r in v.remedies) and any("BatchNorm" in r for r in v.remedies)


def test_hysteresis_keeps_a_verdict_through_one_good_publish():
    d = Diagnoser()
    for s in range(3):
        d.update(obs(s))
    assert "vanishing" in codes(d.update(obs(4, grad=(1, 1, 1))))  # one healthy reading: still shown
    for s in range(5, 10):
        verdicts = d.update(obs(s, grad=(1, 1, 1), loss=0.69 - s * 0.05))
    assert "vanishing" not in codes(verdicts)


def test_diverged_is_immediate_and_says_what_to_do():
    verdicts = Diagnoser().update(obs(7, loss=float("nan"), diverged=True))
    assert codes(verdicts) == {"diverged"}
    assert "clipping" in verdicts[0].text and "reset" in verdicts[0].text


def test_saturation_dead_relu_and_rnn_time_vanishing():
    d = Diagnoser(on_after=1)
    sat = d.update(obs(1, grad=(1, 1, 1), saturation=np.array([0.9, 0.8, 0.7])))
    assert "saturated" in codes(sat) and "80%" in next(v.text for v in sat if v.code == "saturated")
    d = Diagnoser(on_after=1)
    dead = d.update(obs(1, grad=(1, 1, 1), activation="relu", dead=np.array([0.2, 0.9, 0.4])))
    assert "layer 2: 90%" in next(v.text for v in dead if v.code == "dead_relu")
    d = Diagnoser(on_after=1)
    rnn = d.update(obs(1, kind="rnn", time_grad_norm=np.geomspace(1e-9, 1, 60)))
    v = next(v for v in rnn if v.code == "vanishing")
    assert "step 1 receives 1e-09 of step 60's gradient" in v.text and "LSTM" in v.remedies[0]


def test_stagnant_loss_and_shrinking_weights():
    d = Diagnoser(on_after=1)
    for s in range(25):
        verdicts = d.update(obs(s, grad=(1, 1, 1), loss=0.69, weight_mean_abs=np.full(3, 0.1 * 0.9**s)))
    assert {"stagnant", "shrinking"} <= codes(verdicts)


def test_exploding_is_read_off_the_chain_rule_and_shown_at_once():
    """The weight-gradient ratio can stay level while the backward signal grows 100x: the chain product says so."""
    d = Diagnoser()
    verdicts = d.update(obs(1, grad=(1, 1, 1), gain_product=np.array([150.0, 12.0, 1.0])))
    v = next(v for v in verdicts if v.code == "exploding")
    assert "150x" in v.text and "clipping" in v.remedies[0]
    tanh = Diagnoser(on_after=1).update(obs(1, activation="tanh"))
    assert "Xavier" in next(v for v in tanh if v.code == "vanishing").remedies[0]
