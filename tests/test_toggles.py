"""Every toggle changes the model as stated; toggles that do not apply are refused clearly."""

from __future__ import annotations

import pytest
import torch
from helpers import preset, toggle, train
from torch import nn

from vgtui.engine.toggles import ToggleError, parse_scheduled, parse_toggle
from vgtui.engine.trainer import Trainer


@pytest.fixture
def mlp() -> Trainer:
    trainer = Trainer(preset("deep-sigmoid", "model.depth=4", "model.width=16", "train.log_every=1"))
    train(trainer, 2)
    return trainer


def test_activation_changes_the_forward_function(mlp):
    x = mlp.data.x[:8]
    before = mlp.model(x).detach()
    toggle(mlp, "activation=relu")
    assert mlp.model.activation == "relu" and mlp.state.activation == "relu"
    assert not torch.allclose(before, mlp.model(x).detach())


def test_init_reinitialises_weights(mlp):
    w = mlp.model.blocks[0].linear.weight.detach().clone()
    toggle(mlp, "init=he")
    w2 = mlp.model.blocks[0].linear.weight.detach()
    assert not torch.equal(w, w2)
    assert w2.std().item() == pytest.approx((2 / 16) ** 0.5, rel=0.35)  # Kaiming normal, fan_in 16


def test_batchnorm_params_join_and_leave_the_optimizer(mlp):
    toggle(mlp, "batchnorm=on")
    bn_params = [p for b in mlp.model.blocks for p in b.bn.parameters()]
    assert len(bn_params) == 8
    in_opt = {id(p) for p in mlp.optimizer_params()}
    assert all(id(p) in in_opt for p in bn_params)
    train(mlp, 2)
    assert all(p.grad is not None for p in bn_params)
    toggle(mlp, "batchnorm=off")
    assert all(b.bn is None for b in mlp.model.blocks)
    assert not any(id(p) in {id(q) for q in mlp.optimizer_params()} for p in bn_params)


def test_optimizer_state_survives_a_structural_toggle(mlp):
    w = mlp.model.blocks[0].linear.weight
    momentum = mlp.optimizer.state[w]["momentum_buffer"].clone()
    toggle(mlp, "batchnorm=on")
    assert torch.equal(mlp.optimizer.state[w]["momentum_buffer"], momentum)


def test_skip_adds_the_identity_path(mlp):
    toggle(mlp, "skip=on")
    assert mlp.model.skip is True
    x = mlp.data.x[:8]
    with torch.no_grad():
        for b in mlp.model.blocks:
            nn.init.zeros_(b.linear.weight)
            nn.init.constant_(b.linear.bias, -1e4)  # sigmoid -> 0: each block adds nothing
        stem = mlp.model.stem(x)
        out = mlp.model(x)
        assert torch.allclose(out, mlp.model.head(stem), atol=1e-5)


def test_clip_limits_the_gradient_norm(mlp):
    toggle(mlp, "clip=1e-6")
    mlp.train_step()
    pub = mlp.collect()
    total = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in mlp.model.parameters()]))
    assert total.item() <= 1.01e-6
    assert pub.light[-1, 3] == 1.0  # clipping fired
    toggle(mlp, "clip=off")
    assert mlp.state.clip is None


def test_lr_changes_every_param_group(mlp):
    toggle(mlp, "lr=0.123")
    assert all(g["lr"] == 0.123 for g in mlp.optimizer.param_groups)
    assert mlp.state.lr == 0.123


def test_depth_keeps_remaining_weights_and_adds_new_layers(mlp):
    kept = [b.linear.weight.detach().clone() for b in mlp.model.blocks[:2]]
    toggle(mlp, "depth=2")
    assert mlp.model.depth == 2 and mlp.state.depth == 2
    for b, w in zip(mlp.model.blocks, kept, strict=True):
        assert torch.equal(b.linear.weight.detach(), w)
    toggle(mlp, "depth=6")
    assert mlp.model.depth == 6
    assert all(id(p) in {id(q) for q in mlp.optimizer_params()} for p in mlp.model.parameters())
    train(mlp, 2)
    assert len(mlp.model.layer_weights()) == 6


def test_rnn_cell_toggle_rebuilds_the_recurrent_layer():
    trainer = Trainer(preset("rnn-long", "train.log_every=1", "data.seq_len=8"))
    train(trainer, 1)
    proj = trainer.model.proj.weight.detach().clone()
    toggle(trainer, "cell=lstm")
    assert isinstance(trainer.model.cell, nn.LSTMCell)
    h = trainer.model.hidden
    assert torch.all(trainer.model.cell.bias_ih[h : 2 * h] == 1.0)  # forget-gate bias 1
    assert torch.equal(trainer.model.proj.weight.detach(), proj)
    assert all(id(p) in {id(q) for q in trainer.optimizer_params()} for p in trainer.model.cell.parameters())
    toggle(trainer, "cell=gru")
    assert isinstance(trainer.model.cell, nn.GRUCell)
    out = train(trainer, 2)
    assert out["heavy"].time_grad_norm.shape == (8,)


@pytest.mark.parametrize("text", ["batchnorm=on", "skip=on", "depth=3", "activation=relu"])
def test_mlp_toggles_are_refused_on_an_rnn(text):
    trainer = Trainer(preset("rnn-long", "data.seq_len=4"))
    with pytest.raises(ToggleError, match="MLP"):
        toggle(trainer, text)


def test_cell_is_refused_on_an_mlp(mlp):
    with pytest.raises(ToggleError, match="RNN"):
        toggle(mlp, "cell=lstm")


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("activation=softmax", "allowed: sigmoid, tanh, relu, leaky_relu"),
        ("init=zeros", "allowed: default, xavier, he"),
        ("batchnorm=maybe", "allowed: on or off"),
        ("clip=-1", "off or a max norm"),
        ("lr=nan", "allowed: a number in (0, 100]"),
        ("lr=0", "allowed: a number in (0, 100]"),
        ("depth=0", "1 to 64"),
        ("depth=2.5", "1 to 64"),
        ("dropout=0.5", "unknown toggle"),
        ("activation", "expected name=value"),
    ],
)
def test_bad_toggles_name_what_is_allowed(text, fragment):
    with pytest.raises(ToggleError) as info:
        parse_toggle(text)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_scheduled_toggle_parsing():
    step, t = parse_scheduled("200:activation=relu")
    assert step == 200 and t.name == "activation" and t.value == "relu"
    with pytest.raises(ToggleError, match="STEP:name=value"):
        parse_scheduled("x:activation=relu")
