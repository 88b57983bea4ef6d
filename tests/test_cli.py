"""The headless command: deterministic run logs, toggles at steps, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vgtui.cli import main
from vgtui.runlog import read_runlog

SMALL = ["--set", "model.depth=6", "--set", "model.width=16", "--steps", "60"]


def run_cli(*args: str) -> int:
    return main(list(args))


def test_same_seed_gives_identical_losses(tmp_path: Path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert run_cli("run", "deep-sigmoid", *SMALL, "--seed", "3", "--out", str(a), "--quiet") == 0
    assert run_cli("run", "deep-sigmoid", *SMALL, "--seed", "3", "--out", str(b), "--quiet") == 0
    la = [r["loss"] for r in read_runlog(a) if r["type"] == "step"]
    lb = [r["loss"] for r in read_runlog(b) if r["type"] == "step"]
    assert len(la) >= 6 and la == lb
    c = tmp_path / "c.jsonl"
    run_cli("run", "deep-sigmoid", *SMALL, "--seed", "4", "--out", str(c), "--quiet")
    assert [r["loss"] for r in read_runlog(c) if r["type"] == "step"] != la


def test_run_log_format(tmp_path: Path):
    out = tmp_path / "run.jsonl"
    code = run_cli("run", "deep-sigmoid", *SMALL, "--toggle", "30:activation=relu", "--out", str(out), "--quiet")
    assert code == 0
    records = read_runlog(out)
    assert records[0]["type"] == "meta"
    assert records[0]["config"]["model"]["depth"] == 6
    steps = [r for r in records if r["type"] == "step"]
    assert steps[-1]["step"] == 60
    for key in ("loss", "acc", "grad_norm", "weight_norm", "update_ratio", "saturation", "dead", "gain"):
        assert key in steps[-1]
    assert len(steps[-1]["grad_norm"]) == 6
    events = [r for r in records if r["type"] == "event"]
    assert events == [{"type": "event", "step": 30, "name": "activation", "value": "relu"}]
    assert any(r["type"] == "diagnosis" for r in records)
    assert all(r["step"] <= 30 for r in steps if "sigmoid" in r["model"])


def test_rnn_run_log_has_time_grad_norm(tmp_path: Path):
    out = tmp_path / "rnn.jsonl"
    assert run_cli("run", "rnn-long", "--steps", "10", "--set", "data.seq_len=12", "--out", str(out), "--quiet") == 0
    step = [r for r in read_runlog(out) if r["type"] == "step"][-1]
    assert len(step["time_grad_norm"]) == 12


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["run", "no-such-preset"], "unknown preset 'no-such-preset'"),
        (["run", "deep-sigmoid", "--set", "model.depth=0"], "model.depth"),
        (["run", "deep-sigmoid", "--set", "model.depth"], "section.key=value"),
        (["run", "deep-sigmoid", "--toggle", "abc"], "STEP:name=value"),
        (["run", "deep-sigmoid", "--toggle", "10:activation=softmax"], "allowed: sigmoid"),
        (["run", "deep-sigmoid", "--steps", "0"], "--steps"),
        (["run", "deep-sigmoid", "--steps", "many"], "invalid int value"),
        (["run", "deep-sigmoid", "--device", "tpu"], "--device"),
        (["launch", "deep-sigmoid", "--refresh-hz", "0"], "--refresh-hz"),
        (["bogus"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, fragment, capsys):
    with pytest.raises(SystemExit) as info:
        code = main(args)
        raise SystemExit(code)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err


def test_bad_preset_file_through_the_real_command(tmp_path: Path):
    bad = tmp_path / "scene.toml"
    bad.write_text("[model]\ndepth = -3\n")
    proc = subprocess.run([sys.executable, "-m", "vgtui.cli", "run", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == f"vgtui: error: {bad}: model.depth = -3 is out of range; allowed: an integer from 1 to 64"
    )


def test_presets_command_lists_titles(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "deep-sigmoid" in out and "rnn-long" in out and "exploding" in out


def test_toggle_for_the_wrong_model_kind_is_refused_up_front(capsys):
    assert run_cli("run", "deep-sigmoid", *SMALL, "--toggle", "10:cell=lstm") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vgtui: error: --toggle 10:cell=lstm: cell applies to RNN presets")


def test_json_lines_are_valid_json(tmp_path: Path):
    out = tmp_path / "v.jsonl"
    run_cli("run", "exploding", "--steps", "80", "--out", str(out), "--quiet")
    for line in out.read_text().splitlines():
        json.loads(line)
    records = read_runlog(out)
    assert any(v["code"] == "diverged" for r in records if r["type"] == "diagnosis" for v in r["verdicts"])
