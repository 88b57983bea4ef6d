"""Vanishing through time: a vanilla RNN cannot learn the long-range task; LSTM and GRU learn to carry it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import preset, toggle

from vgtui.engine.trainer import Trainer

CHANCE = math.log(2)


def run_cell(cell: str) -> dict[str, np.ndarray]:
    """Train the rnn-long preset for its budget with `cell`; per publish: loss and first/last time ratio."""
    trainer = Trainer(preset("rnn-long"))
    if cell != "rnn":
        toggle(trainer, f"cell={cell}")
    losses, ratios, first_tgn = [], [], None
    for _ in range(trainer.config.train.steps):
        trainer.train_step()
        if trainer.heavy_due(trainer.step):
            pub = trainer.collect()
            losses.extend(pub.light[:, 0])
            tgn = pub.heavy.time_grad_norm
            if first_tgn is None:
                first_tgn = tgn
            ratios.append(max(tgn[0] / tgn[-1], 1e-30))
    return {"loss": np.array(losses), "ratio": np.array(ratios), "first_tgn": first_tgn}


@pytest.fixture(scope="module")
def vanilla():
    return run_cell("rnn")


def geo_last(x: np.ndarray, n: int = 10) -> float:
    return float(np.exp(np.log(x[-n:]).mean()))


def test_vanilla_rnn_gradient_decays_through_time_and_loss_stays_at_chance(vanilla):
    tgn = vanilla["first_tgn"]
    assert len(tgn) == preset("rnn-long").data.seq_len >= 50
    assert tgn[0] / tgn[-1] < 1e-4  # orders of magnitude from the last step back to the first
    assert vanilla["loss"][-100:].mean() > 0.6  # the baseline: predicting the class prior gives ln 2


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gated_cells_learn_to_carry_the_gradient(vanilla, cell):
    gated = run_cell(cell)
    assert gated["loss"][-100:].mean() < 0.2 * CHANCE  # well below the baseline
    assert geo_last(gated["ratio"]) > 100 * geo_last(vanilla["ratio"])  # orders of magnitude above vanilla
