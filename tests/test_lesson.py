"""The lesson format (vgtui/lesson.py): the shipped workshop loads; every problem in a lesson file is one line
naming the file, the step, what is wrong and what is allowed, never a traceback. And the measured answer
(vgtui/lesson_measure.py) read from snapshots as the dashboard receives them."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from vgtui.cli import main
from vgtui.contract import Reset, Toggle
from vgtui.lesson import LessonError, Question, default_lesson_path, load_lesson, parse_lesson
from vgtui.lesson_measure import Measurement, fmt_factor, verdict_line

try:
    from tui_fakes import FakeSession, fake_config
except ImportError:  # tests/ imported as a package
    from tests.tui_fakes import FakeSession, fake_config

GOOD = """
title = "t"
[[step]]
title = "one"
preset = "deep-sigmoid"
text = "the problem"
keys = "aaaii"
at = 300
[step.question]
ask = "What will layer 1's gradient do?"
measure = "grad1"
after = 100
answer = "up"
"""


def problems(text: str) -> list[str]:
    with pytest.raises(LessonError) as info:
        parse_lesson(text, "l.toml")
    return info.value.problems


def test_the_shipped_workshop_loads_and_tells_the_readme_sequence():
    lesson = load_lesson(default_lesson_path())
    titles = " | ".join(s.title for s in lesson.steps).lower()
    for part in ("problem", "signs", "why", "leaky relu", "batchnorm", "skips", "fewer layers", "init", "exploding",
                 "clipping", "through time"):  # fmt: skip
        assert part in titles
    assert sum(s.question is not None for s in lesson.steps) >= 6


def test_a_good_step_parses():
    step = parse_lesson(GOOD, "l.toml").steps[0]
    assert (step.number, step.preset, step.keys, step.at) == (1, "deep-sigmoid", "aaaii", 300)
    assert step.question == Question("What will layer 1's gradient do?", "grad1", 100, "up")
    assert step.question.choices == ("up", "down", "same")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('keys = "aaaii"', 'keys = "aqii"'), "l.toml: step 1: keys 'aqii': 'q' is not a lesson key; allowed: a i b"),
        (('keys = "aaaii"', 'keys = "l"'), "'l' (cell) does not apply to preset deep-sigmoid (an MLP); allowed: a i"),
        (('at = 300', 'at = -3'), "l.toml: step 1: at -3: allowed: a whole number of steps from 0 to 100,000"),
        (('at = 300', 'at = "soon"'), "at 'soon': allowed: a whole number"),
        (('preset = "deep-sigmoid"', 'preset = "nope"'), "l.toml: step 1: preset: unknown preset 'nope'; available:"),
        (('measure = "grad1"', 'measure = "speed"'), "measure 'speed': allowed: grad1, ratio, time1, loss, diverges"),
        (('measure = "grad1"', 'measure = "time1"'), "measure 'time1' is not published for an MLP; allowed: grad1"),
        (('answer = "up"', 'answer = "yes"'), "question: answer 'yes': allowed for measure 'grad1': up, down, same"),
        (('after = 100', ''), "l.toml: step 1: question: after missing: allowed: a whole number of steps from 1"),
        (('text = "the problem"', ''), "l.toml: step 1: text missing: allowed: text of 1 to 4,000 characters"),
        (('title = "one"', 'title = "one"\ncolour = 3'), "step 1: unknown key 'colour'; allowed: title, preset,"),
        (('at = 300', 'at = 0'), "measure 'grad1' compares with the gradient before the keys: allowed: at = 1"),
    ],
)  # fmt: skip
def test_each_problem_is_one_line_naming_file_step_and_what_is_allowed(change, expected):
    found = problems(GOOD.replace(*change))
    assert len(found) == 1, found
    assert expected in found[0]
    assert "\n" not in found[0]


def test_every_problem_of_a_file_is_reported_at_once():
    text = GOOD.replace('keys = "aaaii"', 'keys = "q"').replace('answer = "up"', 'answer = "maybe"')
    text += '[[step]]\ntitle = "two"\npreset = "exploding"\ntext = "x"\ncontinue = true\n'
    found = problems(text)
    assert [p.split(":")[1].strip() for p in found] == ["step 1", "step 1", "step 2"]
    assert "continue = true needs the step before to run the same preset (exploding)" in found[2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("title = ", "l.toml: not valid TOML: "),
        ('title = "t"', "l.toml: no steps; allowed: one or more [[step]] tables"),
        ('title = "t"\nsteps = 3\n[[step]]\n', "l.toml: unknown key 'steps'; allowed at the top: title, [[step]]"),
    ],
)
def test_a_file_that_is_not_a_lesson(text, expected):
    assert expected in problems(text)[0]


def test_the_command_line_prints_each_problem_on_its_own_line_and_exits_2(tmp_path: Path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace('keys = "aaaii"', 'keys = "q"').replace("at = 300", "at = -1"), encoding="utf-8")
    assert main(["present", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith(f"vgtui: error: {bad}: step 1: ") for line in err)
    assert "Traceback" not in "".join(err)
    assert main(["present", str(tmp_path / "missing.toml")]) == 2
    assert capsys.readouterr().err.strip().endswith("missing.toml: no such file")
    assert main(["present", str(tmp_path)]) == 2  # a folder
    assert "is a folder" in capsys.readouterr().err
    assert main(["present", "--check", "--seeds", "x"]) == 2
    assert "--seeds 'x': allowed: seeds like 0-4" in capsys.readouterr().err


# --------------------------------------------------------------------------- measuring from snapshots


def snaps(fake: FakeSession, steps: int, every: int = 10):
    out = []
    for _ in range(steps // every):
        fake.advance(every)
        out.append(fake.latest())
    return out


def test_a_gradient_that_reaches_layer_1_reads_up_with_its_factor():
    fake = FakeSession(fake_config())
    m = Measurement(Question("?", "grad1", 100, "up"))
    for s in snaps(fake, 300):
        assert m.see(s) is None
    m.mark(fake.step)
    fake.send(Toggle("activation", "leaky_relu"))
    answer = None
    for s in snaps(fake, 100):
        answer = m.see(s)
    assert answer is not None and answer.choice == "up" and answer.at_step == 400
    assert answer.text.startswith("layer 1: ×") and "e" in answer.text
    assert verdict_line(answer, "up", m.question).endswith("— you said ↑ ✓")
    assert verdict_line(answer, "down", m.question).endswith("— you said ↓ ✗")


def test_no_change_reads_same_and_a_loss_that_does_not_fall_reads_no():
    fake = FakeSession(fake_config())
    same, loss = Measurement(Question("?", "grad1", 50, "same")), Measurement(Question("?", "loss", 50, "no"))
    for s in snaps(fake, 100):
        same.see(s), loss.see(s)
    same.mark(100), loss.mark(100)
    for s in snaps(fake, 50):
        same.see(s), loss.see(s)
    assert same.answer.choice == "same" and same.answer.text.startswith("layer 1: ×0.9")
    assert loss.answer.choice == "no" and loss.answer.text.startswith("loss 0.")


def test_a_loss_that_goes_nan_answers_at_once():
    fake = FakeSession(fake_config())
    diverges = Measurement(Question("?", "diverges", 100, "yes"))
    falls = Measurement(Question("?", "loss", 100, "yes"))
    for m in (diverges, falls):
        m.mark(0)
    fake.advance(5)
    fake.diverge()
    for m in (diverges, falls):
        m.see(fake.latest())
    assert diverges.answer.choice == "yes" and diverges.answer.text == "loss NaN/Inf by step 5"
    assert falls.answer.choice == "no" and falls.answer.text == "loss – → NaN"


def test_from_a_nan_loss_falling_means_below_chance():
    fake = FakeSession(fake_config())
    m = Measurement(Question("?", "loss", 100, "yes"))
    fake.advance(5)
    fake.diverge()
    m.see(fake.latest())
    m.mark(5)
    fake.send(Reset())
    fake.loss = 0.2
    fake.advance(100)
    assert m.see(fake.latest()).choice == "yes"
    assert m.answer.text.startswith("loss NaN → 0.")


def test_factors_are_short():
    assert [fmt_factor(x) for x in (3e15, 2.4e-6, 1.26, 0.05, math.nan)] == ["3e15", "2e-6", "1.3", "0.05", "–"]


def test_a_preset_path_is_read_beside_the_lesson(tmp_path: Path, monkeypatch):
    from vgtui.presets import presets_dir

    (tmp_path / "scenes").mkdir()
    (tmp_path / "scenes" / "mine.toml").write_bytes((presets_dir() / "deep-sigmoid.toml").read_bytes())
    lesson = tmp_path / "l.toml"
    lesson.write_text(GOOD.replace('preset = "deep-sigmoid"', 'preset = "scenes/mine.toml"'), encoding="utf-8")
    monkeypatch.chdir("/")
    assert load_lesson(lesson).steps[0].preset == str(tmp_path / "scenes" / "mine.toml")


def test_present_options_that_do_not_fit_are_one_line_each(capsys):
    assert main(["present", "--start", "99"]) == 2
    assert "--start 99: allowed: 1 to 11 (the lesson's steps)" in capsys.readouterr().err
    assert main(["present", "--seeds", "0-4"]) == 2
    assert "--seeds goes with --check" in capsys.readouterr().err
    assert main(["present", "--serve", "--font-size", "99"]) == 2
    assert "--font-size 99: allowed: an integer from 6 to 64" in capsys.readouterr().err
