"""Unit tests of the dashboard's pure helpers: key → Toggle, number formats, log ticks, decimation."""

from __future__ import annotations

import numpy as np
import pytest

from vgtui.contract import ModelState, Toggle
from vgtui.tui.keys import ACTIONS, apply_toggle, bindings, parse_clip, toggle_for
from vgtui.tui.series import (
    chain_rows,
    decade_ticks,
    fmt_num,
    layer_ticks,
    log10_safe,
    minmax_decimate,
    pick_layers,
    remedy_key,
    step_ticks,
)

MLP = ModelState("mlp", "sigmoid", "default", False, False, None, 0.1, 20, "rnn")


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("activation", Toggle("activation", "tanh")),
        ("init", Toggle("init", "xavier")),
        ("batchnorm", Toggle("batchnorm", "on")),
        ("skip", Toggle("skip", "on")),
        ("clip", Toggle("clip", "1")),
        ("lr_up", Toggle("lr", "0.2")),
        ("lr_down", Toggle("lr", "0.05")),
        ("depth_down", Toggle("depth", "19")),
        ("depth_up", Toggle("depth", "21")),
        ("cell", Toggle("cell", "lstm")),
    ],
)
def test_toggle_for_walks_from_the_model(action, expected):
    assert toggle_for(action, MLP) == expected
    assert apply_toggle(MLP, expected) != MLP


def test_toggle_cycles_wrap_and_limits():
    relu = apply_toggle(MLP, Toggle("activation", "leaky_relu"))
    assert toggle_for("activation", relu) == Toggle("activation", "sigmoid")
    assert toggle_for("clip", apply_toggle(MLP, Toggle("clip", "0.5"))) == Toggle("clip", "off")
    assert toggle_for("clip", MLP, clip_threshold=0.25) == Toggle("clip", "0.25")
    assert toggle_for("depth_down", apply_toggle(MLP, Toggle("depth", "1"))) is None
    assert toggle_for("lr_up", apply_toggle(MLP, Toggle("lr", "0.3"))) == Toggle("lr", "0.6")


@pytest.mark.parametrize("text", ["abc", "", "0", "-1", "nan", "inf"])
def test_parse_clip_rejects(text):
    with pytest.raises(ValueError):
        parse_clip(text)


def test_parse_clip_accepts():
    assert parse_clip(" 0.5 ") == 0.5


def test_bindings_have_ids_and_cover_the_keys():
    ids = [b.id for b in bindings()]
    assert all(ids) and len(set(ids)) == len(ids)
    keys = ",".join(a.keys for a in ACTIONS)
    for key in ("a", "i", "b", "s", "c", "C", "plus", "minus", "left_square_bracket", "l", "space", "n", "r", "p"):
        assert key in keys.split(",")
    assert "f1" in keys and "question_mark" in keys


def test_log_helpers():
    assert np.isnan(log10_safe(np.array([0.0, -1.0, np.nan]))).all()
    assert log10_safe(np.array([1e-8]))[0] == pytest.approx(-8)
    ticks, labels = decade_ticks(-8.2, 0.0, max_ticks=5)
    assert labels[-1] == "1e0" and labels[0] in ("1e-9", "1e-10") and len(ticks) <= 5
    assert fmt_num(3e-12) == "3e-12" and fmt_num(0.22) == "0.22" and fmt_num(float("nan")) == "–"


def test_step_and_layer_ticks():
    assert step_ticks(1, 350, 5)[1] == ["100", "200", "300"]
    assert step_ticks(0, 12000, 4)[1][-1] == "10k"
    assert layer_ticks(20, 5) == [1, 5, 9, 13, 17, 20]
    assert pick_layers(20) == [0, 5, 10, 14, 19]


def test_minmax_decimate_keeps_spikes():
    x = np.arange(10_000)
    y = np.zeros(10_000)
    y[5_123] = 99.0
    dx, dy = minmax_decimate(x, y, 100)
    assert len(dx) <= 100 and 99.0 in dy and 5_123 in dx


def test_chain_rows_from_output_back_elided():
    gain = np.full(20, 0.25)
    product = np.cumprod(gain[::-1])[::-1]
    rows = chain_rows(gain, product, max_rows=7)
    assert rows[0] == ("20", "×0.25", "0.25")
    assert ("…", "", "") in rows and rows[-1][0] == "1" and rows[-1][2] == "9e-13"
    assert len(rows) == 7


def test_remedy_keys():
    assert remedy_key("switch to ReLU") == "a"
    assert remedy_key("He init") == "i"
    assert remedy_key("BatchNorm") == "b"
    assert remedy_key("skip connections") == "s"
    assert remedy_key("gradient clipping") == "c"
    assert remedy_key("use an LSTM") == "l"
    assert remedy_key("something else") is None
