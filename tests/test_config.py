"""Presets load from either location; bad TOML and bad values get one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from vgtui.config import ConfigError, apply_sets, load_file, load_text
from vgtui.presets import list_presets, preset_names, resolve

REQUIRED = {"deep-sigmoid", "exploding", "rnn-long"}


def test_at_least_eight_presets_with_title_text_and_suggestion():
    presets = list_presets()
    assert len(presets) >= 8
    assert set(preset_names()) >= REQUIRED
    for cfg in presets:
        assert cfg.title and cfg.title != cfg.name
        assert len(cfg.description) > 80
        assert cfg.suggest


def test_required_presets_have_the_fixed_shape():
    assert resolve("exploding").model.kind == "mlp"
    rnn = resolve("rnn-long")
    assert rnn.model.kind == "rnn" and rnn.model.cell == "rnn" and rnn.data.seq_len >= 50


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("[model]\ndepth = 'deep'", ["model.depth", "'deep'", "an integer from 1 to 64"]),
        ("[model]\ndepth = 0", ["model.depth", "out of range", "1 to 64"]),
        ("[model]\ncolour = 'red'", ["unknown key model.colour", "allowed in [model]"]),
        ("[modle]\ndepth = 3", ["unknown key 'modle'", "[model]"]),
        ("[train]\nlr = nan", ["train.lr", "(0, 100]"]),
        ("[train]\nlr = -1.0", ["train.lr", "(0, 100]"]),
        ("[train]\nclip = 'sometimes'", ["train.clip", "false/off"]),
        ("[data]\ntask = 'mnist'", ["data.task", "spirals"]),
        ("[model]\nkind = 'rnn'", ["data.task", "needs model.kind = 'mlp'"]),
        ("model = 3", ["[model] must be a table"]),
        ("[model\n", ["not valid TOML"]),
        ("[train]\nbatch_size = 5000\n[data]\nsamples = 100", ["batch_size", "data.samples"]),
        ("[model]\nbatchnorm = 1", ["model.batchnorm", "true or false"]),
    ],
)
def test_bad_values_are_refused_naming_file_key_and_allowed(text, fragments):
    with pytest.raises(ConfigError) as info:
        load_text(text, "scene.toml")
    msg = str(info.value)
    assert msg.startswith("scene.toml")
    assert "\n" not in msg
    for fragment in fragments:
        assert fragment in msg


def test_invalid_utf8_file(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_bytes(b"title = '\xff\xfe'\n")
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        load_file(path)


def test_set_overrides_validate_like_presets():
    cfg = apply_sets(resolve("deep-sigmoid"), ["model.depth=30", "model.activation=relu", "train.clip=off"])
    assert cfg.model.depth == 30 and cfg.model.activation == "relu" and cfg.train.clip is None
    for bad, fragment in [
        ("model.depth=100", "1 to 64"),
        ("model.nope=1", "unknown key model.nope"),
        ("depth=3", "section.key"),
        ("model.depth", "section.key=value"),
        ("train.lr=", "empty"),
    ]:
        with pytest.raises(ConfigError, match=fragment.replace(".", r"\.").replace("(", r"\(")):
            apply_sets(resolve("deep-sigmoid"), [bad])


def test_unknown_preset_lists_the_available_ones():
    with pytest.raises(ConfigError, match="deep-sigmoid"):
        resolve("deep-sigmund")
    with pytest.raises(ConfigError, match="no such file"):
        resolve("missing/scene.toml")
