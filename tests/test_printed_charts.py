"""Charts printed with plotext: `vgtui plot FILE.jsonl` on any run log, and what `vgtui run` prints at the end."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vgtui.cli import main

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def runlog(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("plot") / "run.jsonl"
    assert main(["run", "deep-sigmoid", "--steps", "60", "--set", "model.depth=6", "--out", str(out), "--quiet"]) == 0
    return out


def test_plot_prints_every_chart_with_axes_and_series_names(runlog, capsys):
    assert main(["plot", str(runlog), "--width", "100", "--height", "14", "--color", "never"]) == 0
    text = capsys.readouterr().out
    assert not ANSI.search(text)
    for title in ("loss (left) and accuracy (right, 0-1)", "gradient norm per layer", "mean |w| per layer",
                  "update ratio"):  # fmt: skip
        assert title in text
    assert "L1" in text and "L6" in text and "loss" in text and "accuracy" in text
    assert re.search(r"1e-\d+┤", text)  # decade labels on the log axes
    assert "step" in text


def test_plot_what_and_bad_options(runlog, capsys):
    assert main(["plot", str(runlog), "--what", "loss", "--width", "80", "--height", "10", "--color", "never"]) == 0
    text = capsys.readouterr().out
    assert "accuracy" in text and "gradient norm" not in text
    assert main(["plot", str(runlog), "--what", "lss"]) == 2
    assert "allowed: a comma-separated list of loss, grad, weights, ratio" in capsys.readouterr().err
    assert main(["plot", str(runlog), "--width", "5"]) == 2
    assert main(["plot", str(runlog.parent / "missing.jsonl")]) == 2
    assert "No such file" in capsys.readouterr().err


def test_plot_survives_nan_and_a_diverged_run(tmp_path, capsys):
    out = tmp_path / "x.jsonl"
    assert main(["run", "exploding", "--steps", "30", "--out", str(out), "--quiet"]) == 1  # diverged: exit 1
    assert main(["plot", str(out), "--color", "never", "--width", "80", "--height", "10"]) == 0
    assert "loss" in capsys.readouterr().out


def test_presets_lists_titles_and_descriptions_and_shows_one(capsys):
    assert main(["presets"]) == 0
    text = capsys.readouterr().out
    assert "Exploding gradients, tamed by clipping" in text and "The opposite failure." in text
    assert main(["presets", "dying-relu"]) == 0
    one = capsys.readouterr().out
    assert "Dying ReLU" in one and "try: lr=0.00625 + reset" in one and "--toggle 300:lr=0.00625" in one
    assert "exploding" not in one
    assert main(["presets", "no-such"]) == 2


def test_vgtui_run_ends_with_charts_when_asked_and_not_when_quiet(capsys):
    assert main(["run", "deep-sigmoid", "--steps", "40", "--set", "model.depth=4", "--plot"]) == 0
    text = capsys.readouterr().out
    assert "loss (left) and accuracy (right, 0-1)" in text and "gradient norm per layer" in text
    assert "L1" in text and "L4" in text and "step" in text
    assert main(["run", "deep-sigmoid", "--steps", "40", "--set", "model.depth=4", "--quiet"]) == 0
    assert "gradient norm per layer" not in capsys.readouterr().out  # quiet, and stdout is not a terminal here
