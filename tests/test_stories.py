"""Every preset tells its story: what its description claims, and what each `suggest` remedy does, measured on
seeds 0-4. The baseline trains first; each remedy is then applied to a copy of that same network, as a learner
pressing the keys mid-run would. Thresholds leave a margin of several times the seed-to-seed spread (the numbers
per seed are in the session notes), so that they hold for any seed, on any machine, not for one lucky one."""

from __future__ import annotations

import math

import numpy as np
import pytest
from story import SEEDS, Run, apply_remedy, config, train, trainer

from vgtui.engine.trainer import Trainer

CHANCE = math.log(2)  # two balanced classes: the loss of a network that has learnt nothing


def per_layer_gain(chain: float, layers: int) -> float:
    """The geometric-mean gain of one layer, from the chain-rule product over `layers` layers."""
    return max(chain, 1e-45) ** (1.0 / layers)


def baseline(name: str, seed: int, steps: int) -> tuple[Trainer, Run]:
    t = trainer(name, seed)
    return t, train(t, steps)


def test_every_preset_has_a_story_test():
    from vgtui.presets import list_presets

    told = {"deep-sigmoid", "tanh-xavier", "relu-he", "resnet-skip", "shallow-vs-deep", "batchnorm", "dying-relu",
            "exploding", "rnn-long"}  # fmt: skip
    assert {p.name for p in list_presets()} <= told


# --------------------------------------------------------------------------- vanishing with sigmoid / tanh / ReLU


def vanishes(run: Run, below: float) -> None:
    assert run.geo("ratio", 100) < below
    assert abs(run.mean("loss", 20) - CHANCE) < 0.03  # flat at chance: nothing learnt
    assert abs(run.mean("loss", 20) - np.mean(run.loss[:20])) < 0.03


def rescued(base: Run, after: Run, loss_below: float | None) -> None:
    assert np.isfinite(after.loss).all()
    assert after.geo("ratio", 200) >= 100 * base.geo("ratio", 100)  # the gradient reaches layer 1
    if loss_below is not None:
        assert after.mean("loss", 50) < loss_below


@pytest.mark.parametrize("seed", SEEDS)
def test_deep_sigmoid(seed):
    """20 sigmoid layers vanish; Leaky ReLU + He and BatchNorm rescue gradient and loss; skips the gradient only."""
    t, base = baseline("deep-sigmoid", seed, 300)
    vanishes(base, 1e-10)  # "less than a ten-thousandth"; the README: "more than ten decades"
    assert 0.1 < per_layer_gain(base.geo("chain", 5), t.state.depth) < 0.2  # "about 0.15 per layer"
    assert base.update1[-5:] == [0.0] * 5  # layer 1 reads "frozen": its float32 weights do not change at all
    assert 0.24 < base.mean("slope", 5) <= 0.25  # the sigmoid's slope: "at most 0.25", "about 0.245" (README)
    assert "activation=leaky_relu + init=he" in config("deep-sigmoid", seed).suggest
    rescued(base, train(apply_remedy(t, "activation=leaky_relu + init=he"), 700), loss_below=CHANCE - 0.2)
    rescued(base, train(apply_remedy(t, "batchnorm=on"), 700), loss_below=CHANCE - 0.15)
    skip = train(apply_remedy(t, "skip=on"), 700)
    rescued(base, skip, loss_below=None)  # the description says the loss barely moves: it is not claimed to fall
    assert abs(skip.mean("loss", 50) - CHANCE) < 0.1


@pytest.mark.parametrize("seed", SEEDS)
def test_tanh_xavier(seed):
    """Default init vanishes at about 0.6 per layer; Xavier lines the per-layer gradients up and the loss falls.
    Seeds 0-19 on one machine (AMD EPYC), 700 steps after the switch: layer 1 / last layer 0.10-6.7 (from ~1e-6),
    loss <= 0.037. At the earlier lr 0.003 seed 11 stuck at 0.41 and the ratio ranged 0.04-4.3 (seeds 8 and 11 fell
    outside 0.1-10), so the lr is 0.002 and 'line up' is read as within a factor of 30."""
    t, base = baseline("tanh-xavier", seed, 300)
    vanishes(base, 1e-3)
    assert 0.5 < per_layer_gain(base.geo("chain", 5), t.state.depth) < 0.7  # "about 0.6 per layer"
    after = train(apply_remedy(t, "init=xavier"), 700)
    rescued(base, after, loss_below=0.1)
    assert np.mean(after.loss[250:300]) < 0.4  # "the loss falls within a few hundred steps" (seeds 0-9: <= 0.29)
    assert 1 / 30 < after.geo("ratio", 200) < 30  # the per-layer gradients line up


@pytest.mark.parametrize("seed", SEEDS)
def test_relu_he(seed):
    """Default init: each ReLU layer passes back roughly half of the gradient; He init rescues it."""
    t, base = baseline("relu-he", seed, 300)
    vanishes(base, 1e-4)
    assert 0.3 < per_layer_gain(base.geo("chain", 5), t.state.depth) < 0.5  # "about 0.4"
    rescued(base, train(apply_remedy(t, "init=he"), 700), loss_below=0.25)


@pytest.mark.parametrize("seed", SEEDS)
def test_resnet_skip(seed):
    """40 tanh layers vanish; with skips each layer's gain is about 1 and the loss falls."""
    t, base = baseline("resnet-skip", seed, 300)
    vanishes(base, 1e-4)
    after = train(apply_remedy(t, "skip=on"), 700)
    rescued(base, after, loss_below=0.1)
    assert 0.9 < per_layer_gain(after.geo("chain", 5), t.state.depth) < 1.2


@pytest.mark.parametrize("seed", SEEDS)
def test_shallow_vs_deep(seed):
    """The first/last ratio rises as layers are removed; at depth 3 the loss falls."""
    t, base = baseline("shallow-vs-deep", seed, 300)
    vanishes(base, 1e-6)
    ratios = [base.geo("ratio", 50)]
    for depth in (9, 6, 3):
        t = apply_remedy(t, f"depth={depth}")
        ratios.append(train(t, 50).geo("ratio", 50))
    assert all(b > 10 * a for a, b in zip(ratios, ratios[1:], strict=False)), ratios
    rescued(base, train(apply_remedy(t, "depth=3"), 650), loss_below=0.35)


@pytest.mark.parametrize("seed", SEEDS)
def test_batchnorm(seed):
    """24 sigmoid layers: BatchNorm lifts each layer's backward gain from far below 1 to about 1."""
    t, base = baseline("batchnorm", seed, 300)
    vanishes(base, 1e-9)
    assert per_layer_gain(base.geo("chain", 5), t.state.depth) < 0.2
    after = train(apply_remedy(t, "batchnorm=on"), 700)
    rescued(base, after, loss_below=0.1)
    assert 0.9 < per_layer_gain(after.geo("chain", 5), t.state.depth) < 1.2


# --------------------------------------------------------------------------- dying ReLU, exploding


@pytest.mark.parametrize("seed", SEEDS)
def test_dying_relu(seed):
    """Too high a learning rate kills most units (no NaN); lowering it and resetting prevents it. The remedy was
    lr=0.0125 until, on one machine (AMD EPYC), seeds 4, 9 and 14 kept 0.49 dead or a loss of 0.22-0.66 after it;
    with 0.00625 there, seeds 0-19: dead share 0.12-0.24, loss 0.000-0.027 after 300 steps."""
    t = trainer("dying-relu", seed)
    base = train(t, 300, stop_on_nan=False)
    assert np.isfinite(base.loss).all()
    assert base.dead[0] < 0.35  # at the start, a minority of units is dead ...
    assert base.mean("dead", 5) > 0.6  # ... by step 300, most of them
    after = train(apply_remedy(t, "lr=0.00625 + reset"), 300)
    assert np.isfinite(after.loss).all()
    assert after.mean("dead", 5) < 0.4  # some still die, far fewer
    assert after.mean("loss", 20) < 0.1
    # "nothing brings the dead units back": 300 more steps as it is, the dead share never falls back (seeds 0-19 on
    # an Intel box: at most 0.021 below its value at step 300, which was 0.74-0.90)
    more = train(t, 300, stop_on_nan=False)
    assert min(more.dead) > base.mean("dead", 5) - 0.05 and more.mean("dead", 5) > 0.6


def test_dying_relu_loss_stalls_at_chance_on_most_seeds():
    stalled = [abs(train(trainer("dying-relu", s), 300).mean("loss", 20) - CHANCE) < 0.05 for s in SEEDS]
    assert sum(stalled) >= 3, stalled


@pytest.mark.parametrize("seed", SEEDS)
def test_exploding(seed):
    """The explosion is measured at step 1 (total norm, chain product), the loss is NaN within a few steps, and
    with clipping on (and a reset) the same network trains."""
    t = trainer("exploding", seed)
    base = train(t, 20)
    assert base.total[0] > 500  # step 1: the total gradient norm, "near a thousand or more"
    assert 30 < base.chain[0] < 1000  # step 1: "about a hundredfold" from the output back to layer 1
    assert base.nan_at is not None and base.nan_at <= 10
    assert 0.2 < base.ratio[0] < 5  # step 1: yet the weight-gradient bars of layer 1 and layer 12 are level
    after = train(apply_remedy(t, "clip=1.0 + reset"), 400)
    assert after.nan_at is None
    # trained: the median of the last 100 steps (seeds 0-19 on one machine: <= 0.015); single steps still spike
    # (seed 9 there: 19.6 at one step near 400, which put the mean of the last 50 at 0.83)
    assert np.median(after.loss[-100:]) < 0.1


# --------------------------------------------------------------------------- through time


@pytest.mark.parametrize("seed", SEEDS)
def test_rnn_long(seed):
    """A vanilla tanh RNN: the first step gets almost none of the gradient and the loss sits at chance; left as it
    is, it stays far from the answer; a fresh GRU cell's first/last ratio climbs by orders of magnitude and it learns
    the task. Seeds 0-19 on one machine (AMD EPYC): the RNN's step-1 ratio <= 9e-14, its first 50 losses 0.698-0.731;
    400 steps later (step 600) 0.26-0.70 (at chance on 14 seeds, partly learnt on 6: an earlier claim, "the loss
    stays at chance", failed on seed 2 there); the GRU's ratio from <= 1e-6 to 0.03-0.76, its loss <= 0.001."""
    t, base = baseline("rnn-long", seed, 200)
    assert base.time_ratio[0] < 1e-4
    assert abs(np.mean(base.loss[:50]) - CHANCE) < 0.06
    assert config("rnn-long", seed).suggest == ("cell=gru",)
    gru = train(apply_remedy(t, "cell=gru"), 400)
    assert gru.geo("time_ratio", 5) > max(1e-2, 1e4 * gru.time_ratio[0])
    assert gru.mean("loss", 50) < 0.1
    left = train(t, 400)
    assert left.mean("loss", 50) > 0.15
