"""The lesson format of `vgtui present`: a TOML file of steps, each a preset, its narration, the dashboard keys it
presses and an optional question for the room. No torch, no textual.

    title = "The vanishing gradient"
    [[step]]
    title = "Leaky ReLU and He init"
    preset = "deep-sigmoid"
    text = "..."                       # the narration (shown large)
    keys = "aaaii"                     # dashboard keys, pressed once the run reaches step `at`
    at = 300
    [step.question]
    ask = "What will layer 1's gradient do?"
    measure = "grad1"                  # what answers it (MEASURES)
    after = 100                        # steps after the keys at which the answer is read
    answer = "up"                      # what the narration states: `vgtui present --check` measures it

Every problem is one line naming the file, the step, what is wrong and what is allowed (LessonError.problems).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vgtui.config import ConfigError

# The dashboard keys a lesson may press, and the action each one is (vgtui/tui/keys.py turns them into Toggles).
LESSON_KEYS = {"a": "activation", "i": "init", "b": "batchnorm", "s": "skip", "c": "clip", "+": "lr_up",
               "-": "lr_down", "[": "depth_down", "]": "depth_up", "l": "cell", "r": "reset"}  # fmt: skip
MLP_KEYS, RNN_KEYS = "abs[]", "l"  # keys that only the one kind of model takes

UP, DOWN, SAME, YES, NO = "up", "down", "same", "yes", "no"
CHOICE_LABELS = {UP: "↑", DOWN: "↓", SAME: "=", YES: "yes", NO: "no"}


@dataclass(frozen=True)
class Measure:
    """A measured quantity that answers a question: its name in the answer line and the choices it can take."""

    label: str
    choices: tuple[str, ...]
    kinds: tuple[str, ...] = ("mlp", "rnn")  # the model kinds that publish it
    help: str = ""


RATIO_CHOICES = (UP, DOWN, SAME)
MEASURES = {
    "grad1": Measure("layer 1", RATIO_CHOICES, ("mlp",),
                     "layer 1's weight gradient, after ÷ before: up from ×10, down below ×0.1, else same"),
    "ratio": Measure("layer 1 / last", RATIO_CHOICES, ("mlp",),
                     "layer 1's weight gradient over the last layer's, after ÷ before (same thresholds)"),
    "time1": Measure("first time step", RATIO_CHOICES, ("rnn",),
                     "the gradient reaching time step 1 over the last step's, after ÷ before (same thresholds)"),
    "loss": Measure("loss", (YES, NO), help="does the loss fall: yes when it ends at least 0.1 below where it was "
                    "(below chance when it was NaN)"),
    "diverges": Measure("loss", (YES, NO), help="does the loss become NaN/Inf within `after` steps"),
}  # fmt: skip
MAX_STEPS = 100_000  # `at` and `after`: a lesson step is minutes of training, not days
MAX_TEXT = 4000  # characters of narration in one step


class LessonError(ConfigError):
    """A lesson that cannot be used; `problems` holds one line per problem (str() joins them)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Question:
    ask: str
    measure: str
    after: int
    answer: str

    @property
    def choices(self) -> tuple[str, ...]:
        return MEASURES[self.measure].choices


@dataclass(frozen=True)
class LessonStep:
    number: int  # 1-based, as messages and the panel show it
    title: str
    preset: str
    text: str
    keys: str = ""
    at: int = 0
    keep: bool = False  # `continue = true`: go on with the previous step's run instead of a fresh one
    question: Question | None = None


@dataclass(frozen=True)
class Lesson:
    title: str
    steps: tuple[LessonStep, ...]
    source: str


def default_lesson_path() -> Path:
    """The shipped workshop: inside the installed package, or the repository's top-level lessons/ folder."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "lessons" / "workshop.toml", here.parent / "lessons" / "workshop.toml"):
        if candidate.is_file():
            return candidate
    raise ConfigError("the shipped lesson lessons/workshop.toml is missing: reinstall vgtui (pip install .)")


def load_lesson(path: str | Path) -> Lesson:
    """Read and validate a lesson file; LessonError with every problem found, one line each."""
    from vgtui.presets import _shown, read_small_text

    path = Path(path)
    text = read_small_text(path, "lessons")
    return parse_lesson(text, _shown(str(path)), base=path.resolve().parent)


def parse_lesson(text: str, source: str, base: Path | None = None) -> Lesson:
    """`base`: the lesson's folder, which a preset given as a relative path is read from."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LessonError([f"{source}: not valid TOML: {exc}"]) from None
    problems: list[str] = []
    for key in sorted(set(data) - {"title", "step"}):
        problems.append(f"{source}: unknown key {key!r}; allowed at the top: title, [[step]]")
    title = data.get("title", "")
    if not isinstance(title, str) or not title.strip():
        problems.append(f"{source}: title {_show(title)}: allowed: a line of text")
        title = ""
    raw_steps = data.get("step", [])
    if not isinstance(raw_steps, list) or not raw_steps or not all(isinstance(s, dict) for s in raw_steps):
        problems.append(f"{source}: no steps; allowed: one or more [[step]] tables")
        raise LessonError(problems)
    steps = []
    for number, raw in enumerate(raw_steps, start=1):
        step = _step(raw, number, f"{source}: step {number}", problems, steps[-1] if steps else None, base)
        if step is not None:
            steps.append(step)
    if problems:
        raise LessonError(problems)
    return Lesson(title.strip(), tuple(steps), source)


STEP_KEYS = ("title", "preset", "text", "keys", "at", "continue", "question")
QUESTION_KEYS = ("ask", "measure", "after", "answer")


def _step(raw: dict[str, Any], number: int, where: str, problems: list[str], previous: LessonStep | None,
          base: Path | None):  # fmt: skip
    start = len(problems)
    for key in sorted(set(raw) - set(STEP_KEYS)):
        problems.append(f"{where}: unknown key {key!r}; allowed: {', '.join(STEP_KEYS)}")
    title = _text(raw, "title", where, problems, limit=80)
    text = _text(raw, "text", where, problems, limit=MAX_TEXT)
    preset = _text(raw, "preset", where, problems, limit=1024)
    if preset and base is not None and (preset.endswith(".toml") or "/" in preset) and not Path(preset).is_absolute():
        preset = str(base / preset)  # a preset file beside the lesson, wherever vgtui present is run from
    kind = _preset_kind(preset, where, problems) if preset else None
    keys = raw.get("keys", "")
    if not isinstance(keys, str):
        problems.append(f'{where}: keys {_show(keys)}: allowed: a string of dashboard keys, e.g. "aaaii"')
        keys = ""
    keys = keys.replace(" ", "")
    for k in dict.fromkeys(keys):
        if k not in LESSON_KEYS:
            problems.append(f"{where}: keys {keys!r}: {k!r} is not a lesson key; allowed: {' '.join(LESSON_KEYS)}")
        elif kind is not None and k in (RNN_KEYS if kind == "mlp" else MLP_KEYS):
            problems.append(f"{where}: keys {keys!r}: {k!r} ({LESSON_KEYS[k]}) does not apply to preset {preset} "
                            f"(an {kind.upper()}); allowed: {_keys_for(kind)}")  # fmt: skip
    at = _int(raw, "at", where, problems, default=0, low=0)
    keep = raw.get("continue", False)
    if not isinstance(keep, bool):
        problems.append(f"{where}: continue {_show(keep)}: allowed: true or false")
        keep = False
    if keep and (previous is None or previous.preset != preset or previous.keys):
        problems.append(f"{where}: continue = true needs the step before to run the same preset ({preset}) "
                        "and press no keys (--check runs each step from its preset); "
                        "allowed: continue = false")  # fmt: skip
    question = None
    if "question" in raw:
        question = _question(raw["question"], where, problems, kind, at)
    if len(problems) > start:
        return None
    return LessonStep(number, title, preset, text, keys, at or 0, keep, question)


def _question(raw: object, where: str, problems: list[str], kind: str | None, at: int | None) -> Question | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: question {_show(raw)}: allowed: a table [step.question] with "
                        f"{', '.join(QUESTION_KEYS)}")  # fmt: skip
        return None
    where = f"{where}: question"
    start = len(problems)
    for key in sorted(set(raw) - set(QUESTION_KEYS)):
        problems.append(f"{where}: unknown key {key!r}; allowed: {', '.join(QUESTION_KEYS)}")
    ask = _text(raw, "ask", where, problems, limit=200)
    measure = raw.get("measure")
    if measure not in MEASURES:
        problems.append(f"{where}: measure {_show(measure)}: allowed: {', '.join(MEASURES)}")
    elif kind is not None and kind not in MEASURES[measure].kinds:
        allowed = ", ".join(m for m, spec in MEASURES.items() if kind in spec.kinds)
        problems.append(f"{where}: measure {measure!r} is not published for an {kind.upper()}; allowed: {allowed}")
    elif measure in ("grad1", "ratio", "time1") and at is not None and at < 1:
        problems.append(f"{where}: measure {measure!r} compares with the gradient before the keys: "
                        "allowed: at = 1 or more")  # fmt: skip
    after = _int(raw, "after", where, problems, default=None, low=1)
    answer = raw.get("answer")
    if measure in MEASURES and answer not in MEASURES[measure].choices:
        problems.append(f"{where}: answer {_show(answer)}: allowed for measure {measure!r}: "
                        f"{', '.join(MEASURES[measure].choices)}")  # fmt: skip
    if len(problems) > start:
        return None
    return Question(ask, str(measure), int(after or 1), str(answer))


def _preset_kind(preset: str, where: str, problems: list[str]) -> str | None:
    from vgtui.presets import resolve

    try:
        return resolve(preset).model.kind
    except ConfigError as exc:
        problems.append(f"{where}: preset: {exc}")
        return None


def _keys_for(kind: str) -> str:
    banned = RNN_KEYS if kind == "mlp" else MLP_KEYS
    return " ".join(k for k in LESSON_KEYS if k not in banned)


def _text(raw: dict[str, Any], key: str, where: str, problems: list[str], limit: int) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        what = "missing" if value is None else _show(value)
        problems.append(f"{where}: {key} {what}: allowed: text of 1 to {limit:,} characters")
        return ""
    return value.strip()


def _int(raw: dict[str, Any], key: str, where: str, problems: list[str], default: int | None, low: int) -> int | None:
    """The whole number at `key`, or None (and a problem) when it is not one in low..MAX_STEPS."""
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_STEPS:
        what = "missing" if value is None else _show(value)
        problems.append(f"{where}: {key} {what}: allowed: a whole number of steps from {low} to {MAX_STEPS:,}")
        return None
    return value


def _show(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
