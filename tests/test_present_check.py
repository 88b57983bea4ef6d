"""`vgtui present --check`: every step of a lesson runs headless (its preset and keys, as `vgtui run` runs them)
and each question's measured answer must be the one the lesson states. The shipped workshop passes on the presets'
seed here (about 30 s of one core; its header lists what seeds 0-4 measured); a lesson that states a wrong answer
fails with exit 1 and says which step and what was measured."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from vgtui.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_the_shipped_workshop_says_what_is_measured():
    proc = subprocess.run(
        [sys.executable, "-m", "vgtui.cli", "present", "--check", str(ROOT / "lessons" / "workshop.toml"),
         "--device", "cpu"],
        capture_output=True, text=True, timeout=900, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps = [line for line in lines if line.startswith(("ok ", "FAIL "))]
    assert len(steps) == 11 and all(line.startswith("ok ") for line in steps)
    assert "layer 1: ×" in steps[3] and "→ ↑, as the lesson says" in steps[3]
    assert lines[-1].endswith("every step runs and every answer is the one the lesson states (11 runs)")


WRONG = """
title = "a lesson that is wrong"
[[step]]
title = "Leaky ReLU and He"
preset = "deep-sigmoid"
keys = "aaaii"
at = 20
text = "The gradient will not reach layer 1."
[step.question]
ask = "What will layer 1's gradient do?"
measure = "grad1"
after = 30
answer = "down"
"""


def test_a_lesson_that_states_the_wrong_answer_fails_naming_the_step(tmp_path: Path, capsys):
    path = tmp_path / "wrong.toml"
    path.write_text(WRONG, encoding="utf-8")
    assert main(["present", "--check", str(path), "--device", "cpu", "--seeds", "0,1"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("FAIL step 1 (Leaky ReLU and He; deep-sigmoid, seed 0): layer 1: ×")
    assert out[0].endswith("→ ↑; the lesson says ↓")
    assert out[1].startswith("FAIL step 1 (Leaky ReLU and He; deep-sigmoid, seed 1)")
    assert out[-1].endswith("0 of 2 step runs as the lesson says")
