"""Truthful signals: the activation slope, NaN where a statistic is undefined, Leaky ReLU's negative share, the
histogram before clipping, the update ratio as float32 really moved the weights, and the LSTM's cell-state
gradient. Each checked against an independent computation from the same step."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import one_thread, preset, toggle, traced_step  # noqa: F401 - one_thread: autouse
from torch.nn import functional as F

from vgtui.cli import main
from vgtui.contract import Pause, Seek
from vgtui.engine.telemetry import HIST_BINS, HIST_HI, HIST_LO, RNN_SAT_LAYER
from vgtui.engine.trainer import Trainer
from vgtui.replay import ReplaySession
from vgtui.runlog import read_runlog

SMALL = ("model.depth=6", "model.width=16", "train.log_every=1")


def f_prime(acts: torch.Tensor, activation: str, k: float) -> torch.Tensor:
    """Mean f'(z) per block from the block's outputs, in float64."""
    a = acts.double()
    if activation == "sigmoid":
        d = a * (1 - a)
    elif activation == "tanh":
        d = 1 - a * a
    elif activation == "relu":
        d = (a > 0).double()
    else:
        d = torch.where(a > 0, 1.0, k).double()
    return d.mean(dim=(1, 2))


# --------------------------------------------------------------------------- slope


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "leaky_relu"])
@pytest.mark.parametrize("extra", [(), ("batchnorm=on",), ("skip=on",)])
def test_slope_is_the_mean_derivative_of_the_forward_activations(activation, extra, monkeypatch):
    trainer = Trainer(preset("deep-sigmoid", *SMALL, "model.leaky_slope=0.1"))
    toggle(trainer, f"activation={activation}", *extra)
    for _ in range(3):
        trainer.train_step()
    trainer.collect()
    trace = traced_step(trainer, monkeypatch)
    heavy = trainer.collect().heavy
    acts = torch.stack([a.detach() for a in trace.acts])
    np.testing.assert_allclose(heavy.slope, f_prime(acts, activation, 0.1).numpy(), rtol=1e-5, atol=1e-7)


def test_slope_of_the_deep_sigmoid_preset_is_near_its_maximum():
    trainer = Trainer(preset("deep-sigmoid", "train.log_every=1"))
    trainer.train_step()
    slope = trainer.collect().heavy.slope
    assert len(slope) == 20 and np.all((slope > 0.235) & (slope <= 0.25))  # a(1-a) <= 1/4, a near 0.5


def test_slope_of_a_healthy_tanh_net_is_near_one():
    trainer = Trainer(preset("tanh-xavier", "train.log_every=1", "model.depth=6", "model.init=xavier"))
    trainer.train_step()
    slope = trainer.collect().heavy.slope
    assert np.all((slope > 0.85) & (slope <= 1.0))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_rnn_slope_is_one_minus_h_squared_for_the_tanh_cell_only(cell, monkeypatch):
    trainer = Trainer(preset("rnn-long", "train.log_every=1", "data.seq_len=12"))
    toggle(trainer, f"cell={cell}")
    trace = traced_step(trainer, monkeypatch)
    heavy = trainer.collect().heavy
    others = [j for j in range(4) if j != RNN_SAT_LAYER]
    assert np.isnan(heavy.slope[others]).all()
    if cell == "rnn":
        hs = torch.stack([h.detach() for h in trace.hidden]).double()
        np.testing.assert_allclose(heavy.slope[RNN_SAT_LAYER], (1 - hs * hs).mean().item(), rtol=1e-5)
    else:  # h = o * tanh(c) (LSTM) or a mix of states (GRU): 1 - h^2 is no slope of theirs
        assert np.isnan(heavy.slope).all() and np.isnan(heavy.saturation).all()


# --------------------------------------------------------------------------- NaN where undefined, negative share


@pytest.mark.parametrize(
    "activation, defined",
    [("sigmoid", "saturation"), ("tanh", "saturation"), ("relu", "dead"), ("leaky_relu", "negative")],
)
def test_each_activation_has_only_its_own_statistic(activation, defined):
    trainer = Trainer(preset("deep-sigmoid", *SMALL))
    toggle(trainer, f"activation={activation}")
    trainer.train_step()
    heavy = trainer.collect().heavy
    for name in ("saturation", "dead", "negative"):
        values = getattr(heavy, name)
        assert np.isfinite(values).all() if name == defined else np.isnan(values).all(), name
    assert np.isfinite(heavy.slope).all()


def test_leaky_relu_negative_share_counts_units_negative_for_the_whole_batch(monkeypatch):
    trainer = Trainer(preset("deep-sigmoid", *SMALL, "model.depth=4", "model.width=64"))
    toggle(trainer, "activation=leaky_relu", "init=he")
    with torch.no_grad():
        trainer.model.blocks[2].linear.bias[:16] = -100.0  # 16 of 64 units are negative for every input
    trace = traced_step(trainer, monkeypatch)
    heavy = trainer.collect().heavy
    acts = torch.stack([a.detach() for a in trace.acts])
    expected = (acts <= 0).all(dim=1).double().mean(dim=1).numpy()
    np.testing.assert_allclose(heavy.negative, expected, rtol=1e-6)
    assert heavy.negative[2] >= 16 / 64 and np.isnan(heavy.dead).all()


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "leaky_relu"])
def test_every_statistic_of_a_layer_with_nan_weights_is_nan(activation):
    trainer = Trainer(preset("deep-sigmoid", *SMALL))
    toggle(trainer, f"activation={activation}")
    with torch.no_grad():
        trainer.model.blocks[3].linear.weight[0, 0] = float("nan")
    trainer.train_step()  # NaN loss: every gradient, then every weight, becomes NaN
    heavy = trainer.collect().heavy
    assert np.isnan(heavy.weight_norm).all()
    for name in ("update_ratio", "weight_mean_abs", "saturation", "dead", "negative", "slope", "gain"):
        assert np.isnan(getattr(heavy, name)).all(), name


def test_run_log_writes_null_where_undefined_and_replay_reads_nan(tmp_path: Path):
    out = tmp_path / "run.jsonl"
    args = ["--set", "model.depth=6", "--set", "model.width=16", "--set", "train.log_every=5", "--steps", "20"]
    assert main(["run", "deep-sigmoid", *args, "--toggle", "10:activation=leaky_relu", "--out", str(out),
                 "--quiet"]) == 0  # fmt: skip
    steps = [r for r in read_runlog(out) if r["type"] == "step"]
    sigmoid = next(r for r in steps if r["model_state"]["activation"] == "sigmoid" and r["stats_step"] > 0)
    leaky = steps[-1]
    assert leaky["model_state"]["activation"] == "leaky_relu" and leaky["stats_step"] == 20
    assert sigmoid["dead"] == [None] * 6 and sigmoid["negative"] == [None] * 6
    assert all(0 < s <= 0.25 for s in sigmoid["slope"]) and all(0 <= s <= 1 for s in sigmoid["saturation"])
    assert leaky["saturation"] == [None] * 6 and leaky["dead"] == [None] * 6
    assert all(0 <= s <= 1 for s in leaky["negative"]) and all(0.01 <= s <= 1 for s in leaky["slope"])
    replay = ReplaySession(out)
    snap = replay.snapshot(len(replay.steps) - 1)
    assert np.isnan(snap.saturation).all() and np.isnan(snap.dead).all()
    np.testing.assert_allclose(snap.slope, leaky["slope"])


def test_a_log_from_before_these_signals_still_replays(tmp_path: Path):
    new = tmp_path / "new.jsonl"
    old = tmp_path / "old.jsonl"
    assert main(["run", "deep-sigmoid", "--set", "model.depth=6", "--set", "model.width=16", "--steps", "20",
                 "--out", str(new), "--quiet"]) == 0  # fmt: skip
    lines = []
    for record in read_runlog(new):
        if record["type"] == "step":  # as vgtui 0.1 wrote it: no slope, no negative, 0 for dead sigmoid units
            del record["slope"], record["negative"]
            record["dead"] = [0.0] * len(record["grad_norm"])
        lines.append(json.dumps(record))
    old.write_text("\n".join(lines) + "\n")
    replay = ReplaySession(old)
    replay.handle(Pause())
    replay.handle(Seek(100))
    snap = replay.latest()
    assert snap.step == 20 and len(snap.slope) == 6 and np.isnan(snap.slope).all() and np.isnan(snap.negative).all()
    assert np.isnan(snap.dead).all()  # the 0 it wrote for sigmoid meant "not measured"
    assert np.isfinite(snap.saturation).all() and snap.time_cell_grad_norm is None
    view = replay.history.view()
    assert np.isnan(view["slope"]).all() and np.isfinite(view["saturation"][-1]).all()


# --------------------------------------------------------------------------- histogram before clipping


def test_histogram_is_of_the_gradient_before_clipping():
    trainer = Trainer(preset("deep-sigmoid", *SMALL, "model.depth=4"))
    toggle(trainer, "activation=relu", "init=he", "clip=0.001")
    trainer.hist_layer = 2
    weight = trainer.model.layer_weights()[2]
    seen: list[torch.Tensor] = []
    weight.register_hook(lambda g: seen.append(g.detach().clone()))  # the gradient autograd delivers
    for _ in range(4):
        trainer.train_step()
        pub = trainer.collect()
        assert pub.light[-1, 3] == 1.0  # clipping fired
        raw = seen[-1].abs().log10().clamp(HIST_LO, HIST_HI)
        expected = torch.histc(raw, HIST_BINS, HIST_LO, HIST_HI).numpy()
        np.testing.assert_array_equal(pub.heavy.hist_counts, expected)
        clipped = torch.histc(weight.grad.abs().log10().clamp(HIST_LO, HIST_HI), HIST_BINS, HIST_LO, HIST_HI)
        assert not np.array_equal(pub.heavy.hist_counts, clipped.numpy())  # what telemetry used to show
        np.testing.assert_allclose(pub.light[-1, 4 + 2], seen[-1].norm().item(), rtol=1e-6)  # bars: unclipped too


# --------------------------------------------------------------------------- update ratio


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_update_ratio_is_the_float32_weight_change(optimizer):
    trainer = Trainer(preset("deep-sigmoid", *SMALL, f"train.optimizer={optimizer}"))
    for _ in range(3):
        before = [w.detach().clone() for w in trainer.model.layer_weights()]
        trainer.train_step()
        heavy = trainer.collect().heavy
        after = trainer.model.layer_weights()
        expected = [(a.detach() - b).norm().item() / b.norm().item() for a, b in zip(after, before, strict=True)]
        np.testing.assert_allclose(heavy.update_ratio, expected, rtol=1e-6)


def test_deep_sigmoid_layers_whose_update_is_below_float32_resolution_show_exactly_zero():
    trainer = Trainer(preset("deep-sigmoid"))  # log_every 10: step 50 is a heavy step
    for _ in range(49):
        trainer.train_step()
    trainer.collect()
    before = [w.detach().clone() for w in trainer.model.layer_weights()]
    trainer.train_step()
    pub = trainer.collect()
    ratio, grad = pub.heavy.update_ratio, pub.light[-1, 4:]
    unchanged = np.array([torch.equal(w.detach(), b) for w, b in zip(trainer.model.layer_weights(), before,
                                                                     strict=True)])  # fmt: skip
    assert unchanged.sum() >= 5 and np.all(grad > 0)  # the first layers' updates round away entirely
    np.testing.assert_array_equal(ratio == 0, unchanged)
    assert np.all(ratio[~unchanged] > 0)


# --------------------------------------------------------------------------- LSTM cell-state gradient


def test_lstm_cell_state_gradient_matches_autograd(monkeypatch):
    trainer = Trainer(preset("rnn-long", "train.log_every=1", "data.seq_len=12"))
    toggle(trainer, "cell=lstm")
    trainer.train_step()
    trainer.collect()
    model = copy.deepcopy(trainer.model)
    batches = []
    original = trainer.data.batch

    def record(*args):
        batches.append(original(*args))
        return batches[-1]

    monkeypatch.setattr(trainer.data, "batch", record)
    traced_step(trainer, monkeypatch)
    heavy = trainer.collect().heavy
    x, y = batches[-1]
    u = model.proj(x)
    h = c = u.new_zeros(x.shape[0], model.hidden)
    cells = []
    for t in range(u.shape[1]):
        h, c = model.cell(u[:, t], (h, c))
        cells.append(c)
    loss = F.cross_entropy(model.head(h), y)
    grads = torch.autograd.grad(loss, cells)
    expected = [g.norm().item() for g in grads]
    assert heavy.time_cell_grad_norm is not None and len(heavy.time_cell_grad_norm) == 12
    np.testing.assert_allclose(heavy.time_cell_grad_norm, expected, rtol=1e-5)
    assert not math.isclose(expected[0], heavy.time_grad_norm[0])  # not the hidden state's gradient


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_other_cells_have_no_cell_state_gradient(cell):
    trainer = Trainer(preset("rnn-long", "train.log_every=1", "data.seq_len=8"))
    toggle(trainer, f"cell={cell}")
    trainer.train_step()
    assert trainer.collect().heavy.time_cell_grad_norm is None


# --------------------------------------------------------------------------- `vgtui run` summary


def test_run_summary_says_what_each_ratio_divides(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # one line per row
    small = ["--set", "model.depth=4", "--set", "model.width=16", "--steps", "10", "--quiet"]
    assert main(["run", "deep-sigmoid", *small]) == 0
    mlp = capsys.readouterr().out
    assert "weight-grad ratio layer 1 / last layer" in mlp and "ratio step 1" not in mlp
    rnn = ["--set", "data.seq_len=8", "--steps", "10", "--quiet"]
    assert main(["run", "rnn-long", *rnn]) == 0
    vanilla = capsys.readouterr().out
    assert "‖∂L/∂h‖ ratio step 1 / last step" in vanilla and "weight-grad ratio input proj / head" in vanilla
    assert "‖∂L/∂c‖" not in vanilla and "layer 1 / last layer" not in vanilla
    assert main(["run", "rnn-long", *rnn, "--set", "model.cell=lstm"]) == 0
    assert "‖∂L/∂c‖ ratio step 1 / last step" in capsys.readouterr().out
