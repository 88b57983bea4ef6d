"""Telemetry numbers match an independent computation on the same step."""

from __future__ import annotations

import numpy as np
import torch
from helpers import preset, toggle

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
    # The update applied is lr * momentum buffer; where it is large enough to survive float32 rounding it
    # equals the measured weight change, and where it is not (early layers, ~1e-18) it is still reported.
    lr = trainer.optimizer.lr
    intended = [lr * trainer.optimizer.state[w]["momentum_buffer"].norm().item() / w.norm().item() for w in after]
    np.testing.assert_allclose(heavy.update_ratio, intended, rtol=1e-4)
    measured = np.array([(a - b).norm().item() / a.norm().item() for a, b in zip(after, before, strict=True)])
    big = measured > 1e-5
    assert big.sum() >= 2
    np.testing.assert_allclose(heavy.update_ratio[big], measured[big], rtol=1e-2)
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
    assert np.all(heavy.saturation == 0)


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
