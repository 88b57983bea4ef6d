"""`vgtui run` never loses a session: divergence recovers in the same run, faults exit non-zero with the
message and no thread left, Ctrl+C and kill -9 leave a run log that is valid up to its last line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import ends_with_the_test, sigint_as_from_a_terminal

from vgtui.cli import main
from vgtui.engine.trainer import Trainer
from vgtui.runlog import read_runlog

SMALL = ["--set", "model.depth=6", "--set", "model.width=16"]


def test_diverged_run_recovers_with_clipping_and_reset_in_the_same_run(tmp_path: Path, capsys):
    out = tmp_path / "x.jsonl"
    code = main(["run", "exploding", "--steps", "300", "--toggle", "500:clip=1.0", "--toggle", "500:reset",
                 "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    records = read_runlog(out)
    diag = [v["code"] for r in records if r["type"] == "diagnosis" for v in r["verdicts"]]
    assert "diverged" in diag
    events = [(r["name"], r["value"]) for r in records if r["type"] == "event"]
    assert events == [("clip", "1"), ("reset", "seed")]
    steps = [r for r in records if r["type"] == "step"]
    assert steps[-1]["step"] == 300 and steps[-1]["status"] == "done"
    assert steps[-1]["loss"] is not None and steps[-1]["loss"] < 0.5
    assert "done at step 300" in capsys.readouterr().out


def test_a_diverged_run_that_nothing_can_resume_ends_at_once_with_exit_1(tmp_path: Path):
    """A scheduled toggle after a divergence, but no reset: nothing can resume the run, so it ends (it used to hang
    forever), exit 1, with one line that says so and what to try, as --toggle options."""
    cmd = [sys.executable, "-m", "vgtui.cli", "run", "exploding", "--steps", "200",
           "--toggle", "150:activation=leaky_relu", "--quiet", "--out", str(tmp_path / "d.jsonl")]  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert time.monotonic() - t0 < 30
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    line = next(x for x in proc.stderr.splitlines() if x.startswith("vgtui: the run diverged"))
    assert "--toggle" in line and "clip=1.0" in line and "reset" in line
    events = [r["name"] for r in read_runlog(tmp_path / "d.jsonl") if r["type"] == "event"]
    assert events == ["activation"]


def test_worker_fault_exits_nonzero_with_the_message(monkeypatch, tmp_path: Path, capsys):
    original = Trainer.train_step
    calls = {"n": 0}

    def flaky(self):
        calls["n"] += 1
        if calls["n"] == 15:
            raise RuntimeError("injected fault")
        return original(self)

    monkeypatch.setattr(Trainer, "train_step", flaky)
    out = tmp_path / "f.jsonl"
    code = main(["run", "deep-sigmoid", *SMALL, "--steps", "100", "--out", str(out), "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    assert "vgtui: error: RuntimeError: injected fault" in err
    assert "Traceback" not in err
    assert not [t for t in threading.enumerate() if t.name == "vgtui-worker" and t.is_alive()]
    for line in out.read_text().splitlines():
        json.loads(line)


def _start_long_run(out: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vgtui.cli",
            "run",
            "deep-sigmoid",
            *SMALL,
            "--set",
            "train.log_every=1",
            "--steps",
            "10000000",
            "--out",
            str(out),
            "--quiet",
        ],  # fmt: skip
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_from_a_terminal,
    )
    end = time.monotonic() + 30
    while time.monotonic() < end and (not out.exists() or out.stat().st_size < 20_000):
        time.sleep(0.05)
    return proc


def test_ctrl_c_stops_cleanly_and_the_log_is_complete(tmp_path: Path):
    out = tmp_path / "int.jsonl"
    with ends_with_the_test(_start_long_run(out)) as proc:
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=10)
    assert time.monotonic() - t0 < 3
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    lines = out.read_text().splitlines()
    assert len(lines) > 10
    for line in lines:  # complete up to the very last line
        json.loads(line)


@pytest.mark.skipif(sys.platform == "win32", reason="kill -9 is POSIX")
def test_kill_9_leaves_every_line_but_the_last_valid(tmp_path: Path):
    out = tmp_path / "kill.jsonl"
    proc = _start_long_run(out)
    proc.kill()
    proc.communicate(timeout=10)
    lines = out.read_text().splitlines()
    assert len(lines) > 10
    for line in lines[:-1]:
        json.loads(line)
    assert [r["type"] for r in read_runlog(out)][0] == "meta"
