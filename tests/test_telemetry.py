"""Telemetry numbers match an independent computation on the same step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import one_thread, preset, toggle, traced_step  # noqa: F401 - one_thread: autouse

from vgtui.engine.telemetry import HIST_BINS, HIST_HI, HIST_LO, SIGMOID_SAT, TANH_SAT
from vgtui.engine.trainer import Trainer


def test_layer_grad_norms_match_p_grad_norm():
    trainer = Trainer(preset("deep-sigmoid", "train.log_every=1"))
    for _ in range(3):
        trainer.train_step()
        expected = np.array([w.grad.norm().item() for w in trainer.model.layer_weights()])
        total = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in trainer.model.parameters()])).item()
        pub = trainer.collect()
        got = pub.light[-1, 4:]
        np.testing.assert_allclose(got, expected, rtol=1e-5)
        np.testing.assert_allclose(pub.light[-1, 2], total, rtol=1e-5)


def test_weight_norms_update_ratio_and_saturation():
    trainer = Trainer(preset("deep-sigmoid", "train.log_every=1"))
    trainer.train_step()
    trainer.collect()
    before = [w.detach().clone() for w in trainer.model.layer_weights()]
    trainer.train_step()
    heavy = trainer.collect().heavy
    after = trainer.model.layer_weights()
    np.testing.assert_allclose(heavy.weight_norm, [w.norm().item() for w in after], rtol=1e-5)
    # the change float32 really made (not lr * the momentum buffer: early layers get ~1e-18 of their weights,
    # far below float32 resolution, and do not move at all)
    measured = np.array([(a - b).norm().item() / b.norm().item() for a, b in zip(after, before, strict=True)])
    np.testing.assert_allclose(heavy.update_ratio, measured, rtol=1e-6)
    assert (heavy.update_ratio == 0).sum() >= 2 and (heavy.update_ratio > 0).sum() >= 2
    np.testing.assert_allclose(heavy.weight_mean_abs, [w.abs().mean().item() for w in after], rtol=1e-5)
    assert np.all((heavy.saturation >= 0) & (heavy.saturation <= 1))
    assert heavy.hist_counts.sum() == trainer.model.layer_weights()[0].numel()


def test_gains_multiply_to_the_product():
    trainer = Trainer(preset("deep-sigmoid", "train.log_every=1"))
    trainer.train_step()
    heavy = trainer.collect().heavy
    # running product from the output back: product[i] = gain[i] * gain[i+1] * ... * gain[-1]
    expected = np.cumprod(heavy.gain[::-1])[::-1]
    np.testing.assert_allclose(heavy.gain_product, expected, rtol=1e-3)
    assert np.all(heavy.gain < 1)  # every sigmoid layer shrinks the gradient
    assert heavy.gain_product[0] < 1e-10


def test_dead_relu_fraction_counts_units_silent_for_the_whole_batch():
    trainer = Trainer(preset("deep-sigmoid", "train.log_every=1"))
    toggle(trainer, "activation=relu")
    with torch.no_grad():
        trainer.model.blocks[2].linear.bias[:16] = -100.0  # 16 of 64 units can never fire
    trainer.train_step()
    heavy = trainer.collect().heavy
    assert heavy.dead[2] >= 16 / 64
    assert np.isnan(heavy.saturation).all() and np.isnan(heavy.negative).all()  # undefined for ReLU: NaN, not 0


def test_one_host_transfer_per_publish(monkeypatch):
    trainer = Trainer(preset("deep-sigmoid", "train.log_every=5"))
    calls = []
    original = torch.Tensor.cpu

    def counting_cpu(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    for _ in range(5):
        trainer.train_step()
    monkeypatch.setattr(torch.Tensor, "cpu", counting_cpu)
    monkeypatch.setattr(torch.Tensor, "item", lambda self: (_ for _ in ()).throw(AssertionError("item() called")))
    pub = trainer.collect()
    assert len(calls) == 1
    assert pub.light.shape[0] == 5


# --------------------------------------------------------------------------- the fused statistics, independently


@pytest.mark.parametrize(
    "toggles",
    [(), ("activation=tanh",), ("activation=relu",), ("activation=leaky_relu", "batchnorm=on"), ("skip=on",)],
)
def test_mlp_statistics_match_a_direct_computation(toggles, monkeypatch):
    trainer = Trainer(preset("deep-sigmoid", "model.depth=6", "model.width=16", "train.log_every=1"))
    toggle(trainer, *toggles)
    trainer.train_step()
    trainer.collect()
    trace = traced_step(trainer, monkeypatch)
    heavy = trainer.collect().heavy
    acts = torch.stack([a.detach() for a in trace.acts])
    activation = trainer.state.activation
    nan = torch.full((len(acts),), float("nan"))
    if activation == "sigmoid":
        sat = ((acts - 0.5).abs() > SIGMOID_SAT).float().mean(dim=(1, 2))
    elif activation == "tanh":
        sat = (acts.abs() > TANH_SAT).float().mean(dim=(1, 2))
    else:
        sat = nan
    silent = (acts <= 0).all(dim=1).float().mean(dim=1)
    hg = np.array([h.grad.norm().item() for h in trace.hidden])
    np.testing.assert_allclose(heavy.saturation, sat.numpy(), rtol=1e-6, atol=0)
    np.testing.assert_allclose(heavy.dead, (silent if activation == "relu" else nan).numpy(), rtol=1e-6, atol=0)
    np.testing.assert_allclose(heavy.negative, (silent if activation == "leaky_relu" else nan).numpy(), rtol=1e-6)
    np.testing.assert_allclose(heavy.gain, hg[:-1] / np.maximum(hg[1:], 1e-38), rtol=1e-5)
    np.testing.assert_allclose(heavy.gain_product, hg[:-1] / max(hg[-1], 1e-38), rtol=1e-5)
    weights = trainer.model.layer_weights()
    np.testing.assert_allclose(heavy.weight_norm, [w.norm().item() for w in weights], rtol=1e-5)
    np.testing.assert_allclose(heavy.weight_mean_abs, [w.abs().mean().item() for w in weights], rtol=1e-5)
    g = weights[0].grad.abs().log10().clamp(HIST_LO, HIST_HI)
    np.testing.assert_array_equal(heavy.hist_counts, torch.histc(g, HIST_BINS, HIST_LO, HIST_HI).numpy())
    assert heavy.time_grad_norm is None


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_rnn_statistics_match_a_direct_computation(cell, monkeypatch):
    trainer = Trainer(preset("rnn-long", "train.log_every=1", "data.seq_len=12"))
    toggle(trainer, f"cell={cell}")
    before = [w.detach().clone() for w in trainer.model.layer_weights()]
    trace = traced_step(trainer, monkeypatch)
    heavy = trainer.collect().heavy
    weights = trainer.model.layer_weights()
    hs = torch.stack([h.detach() for h in trace.hidden])
    np.testing.assert_allclose(heavy.time_grad_norm, [h.grad.norm().item() for h in trace.hidden], rtol=1e-5)
    sat = heavy.saturation
    assert np.isnan(sat[[0, 1, 3]]).all()
    if cell == "rnn":
        np.testing.assert_allclose(sat[2], (hs.abs() > TANH_SAT).float().mean().item(), rtol=1e-6)
    else:  # an LSTM's h = o * tanh(c) is no tanh output: |h| > 0.995 says nothing about a slope
        assert np.isnan(sat[2])
    assert np.isnan(heavy.gain).all() and np.isnan(heavy.dead).all() and np.isnan(heavy.negative).all()
    measured = [(a - b).norm().item() / b.norm().item() for a, b in zip(weights, before, strict=True)]  # Adam
    np.testing.assert_allclose(heavy.update_ratio, measured, rtol=1e-5)
    np.testing.assert_allclose(heavy.weight_norm, [w.norm().item() for w in weights], rtol=1e-5)


def test_collect_all_splits_the_rows_at_each_heavy_step():
    split, whole = (Trainer(preset("deep-sigmoid", "model.depth=4", "train.log_every=3")) for _ in range(2))
    reference = []
    for _ in range(7):
        split.train_step()
        whole.train_step()
        if whole.heavy_due(whole.step):
            reference.append(whole.collect())
    reference.append(whole.collect())
    pubs = split.collect_all()  # one transfer for steps 1..7, heavy at 1, 3 and 6
    assert [list(p.steps) for p in pubs] == [[1], [2, 3], [4, 5, 6], [7]]
    assert [p.heavy_step for p in pubs[:3]] == [1, 3, 6] and pubs[3].heavy is None
    for got, want in zip(pubs, reference, strict=True):
        np.testing.assert_array_equal(got.light, want.light)
        if want.heavy is not None:
            for field in ("weight_norm", "update_ratio", "saturation", "slope", "gain", "gain_product", "hist_counts"):
                np.testing.assert_array_equal(getattr(got.heavy, field), getattr(want.heavy, field))


def test_big_stacks_reuse_their_buffers():
    trainer = Trainer(preset("deep-sigmoid", "train.log_every=1"))
    for _ in range(3):
        trainer.train_step()
        trainer.collect()
    buffers = {key: buf.data_ptr() for key, (_, buf) in trainer._scratch._bufs.items()}
    assert {"weights", "acts", "hidden_grad"} <= set(buffers)
    for _ in range(5):
        trainer.train_step()
        trainer.collect()
    assert {key: buf.data_ptr() for key, (_, buf) in trainer._scratch._bufs.items()} == buffers
