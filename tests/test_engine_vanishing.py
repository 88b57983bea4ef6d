"""The flagship scene really vanishes, and the remedies really rescue it."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from helpers import geomean, preset, toggle, train

from vgtui.engine.trainer import Trainer


@pytest.fixture(scope="module")
def sigmoid_run():
    """300 steps of the deep sigmoid preset (shared: later tests continue from copies of it)."""
    trainer = Trainer(preset("deep-sigmoid"))
    return trainer, train(trainer, 300)


def test_deep_sigmoid_preset_is_the_advertised_scene():
    cfg = preset("deep-sigmoid")
    assert cfg.model.kind == "mlp" and cfg.model.activation == "sigmoid" and cfg.model.init == "default"
    assert cfg.model.depth >= 15
    assert cfg.data.task in ("spirals", "moons", "checkerboard", "circles")


def test_deep_sigmoid_vanishes_and_loss_is_flat(sigmoid_run):
    _, out = sigmoid_run
    assert geomean(out["ratio"]) < 1e-4
    assert np.max(out["ratio"]) < 1e-4
    first, last = out["loss"][:20].mean(), out["loss"][-20:].mean()
    assert abs(first - last) < 0.02, (first, last)
    assert last > 0.65  # still at chance (ln 2 = 0.693)


@pytest.mark.parametrize(
    "remedy, loss_falls",
    [(("activation=leaky_relu", "init=he"), True), (("batchnorm=on",), True), (("skip=on",), False)],
    ids=["leaky_relu+he", "batchnorm", "skip"],
)
def test_remedy_raises_ratio_100x_and_loss_falls(sigmoid_run, remedy, loss_falls):
    base, before = sigmoid_run
    trainer = copy.deepcopy(base)
    toggle(trainer, *remedy)
    after = train(trainer, 700)
    assert geomean(after["ratio"][-200:]) >= 100 * geomean(before["ratio"]), remedy
    if loss_falls:
        stuck = before["loss"][-50:].mean()
        assert after["loss"][-50:].mean() < stuck - 0.2, (stuck, after["loss"][-50:].mean())
