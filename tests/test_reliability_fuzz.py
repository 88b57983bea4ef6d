"""Property-based: generated presets and options are either accepted and run one step, or refused with
exit code 2 and one line naming the file/option, the key and what is allowed. No traceback, no hang."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from vgtui.cli import main
from vgtui.config import SCHEMA

KEYS = [(section, key) for section, keys in SCHEMA.items() for key in keys]
GOOD = {
    "kind": st.sampled_from(["mlp", "rnn"]),
    "task": st.sampled_from(["spirals", "moons", "checkerboard", "circles", "first-bit", "adding", "mnist"]),
    "activation": st.sampled_from(["sigmoid", "tanh", "relu", "leaky_relu", "softmax"]),
    "init": st.sampled_from(["default", "xavier", "he", "zeros"]),
    "cell": st.sampled_from(["rnn", "lstm", "gru", "transformer"]),
    "optimizer": st.sampled_from(["sgd", "adam", "lbfgs"]),
}
# numbers: mostly small and valid, plus the edges that break things
NUMBERS = st.one_of(
    st.integers(1, 8),
    st.integers(-3, 3),
    st.sampled_from([0, 16, 64, 1024, 10**6, 10**12, 2**63 - 1, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, 1e-9, 0.5, 1.0, 1e300, -0.0]),
)
SMALL_VALID = st.one_of(st.integers(1, 8), st.floats(0.01, 0.9), st.booleans())
VALUES = st.one_of(
    NUMBERS,
    st.booleans(),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


@st.composite
def documents(draw) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.binary(max_size=60))  # garbage, invalid UTF-8 included
    if kind == 1:
        depth = draw(st.integers(1, 40))
        return ("[model]\n" + "a = [" * depth + "1" + "]" * depth + "\n").encode()  # deep nesting
    if kind == 2:
        return b""
    lines: dict[str, list[str]] = {}
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.integers(0, 9)) == 0:
            section, key = (
                draw(st.sampled_from(["model", "data", "train", "extra"])),
                draw(st.text(min_size=1, max_size=6)),
            )
            key = json.dumps(key)
        else:
            section, key = draw(st.sampled_from(KEYS))
        strategy = GOOD.get(key, SMALL_VALID) if draw(st.integers(0, 4)) else VALUES  # 4 in 5 plausible
        lines.setdefault(section, []).append(f"{key} = {toml_value(draw(strategy))}")
    text = "".join(f"[{s}]\n" + "\n".join(dict.fromkeys(ls)) + "\n" for s, ls in lines.items())
    if draw(st.integers(0, 9)) == 0:
        text += draw(st.sampled_from(["title = 3\n", "suggest = [1]\n", 'unknown = "x"\n', "[model\n"]))
    return text.encode()


def check(args: list[str], capsys) -> None:
    try:
        code = main(args)
    except SystemExit as exc:  # argparse refuses malformed options this way
        code = exc.code
    captured = capsys.readouterr()
    event(f"exit code {code}")
    assert "Traceback" not in captured.err
    if code == 2:
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1, captured.err
        assert lines[0].startswith("vgtui: error: ")
        assert "allowed" in lines[0] or "valid" in lines[0] or "expected" in lines[0] or "no such" in lines[0], lines[0]
    else:
        assert code == 0, captured.err


SETTINGS = settings(
    max_examples=700,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
    database=None,
)


@SETTINGS
@given(doc=documents())
def test_generated_preset_files(doc: bytes, capsys):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "scene.toml"
        path.write_bytes(doc)
        check(["run", str(path), "--steps", "1", "--quiet"], capsys)


@settings(SETTINGS, max_examples=400)
@given(
    key=st.one_of(st.sampled_from([f"{s}.{k}" for s, k in KEYS]), st.text(max_size=12)),
    value=st.one_of(st.text(max_size=10), NUMBERS.map(str)),
    toggle=st.one_of(
        st.just(None),
        st.tuples(
            st.integers(-2, 3).map(str) | st.text(max_size=3),
            st.sampled_from(["activation", "init", "batchnorm", "skip", "clip", "lr", "depth", "cell", "x"]),
            st.text(max_size=8),
        ).map(lambda t: f"{t[0]}:{t[1]}={t[2]}"),
    ),
)
def test_generated_set_and_toggle_options(key: str, value: str, toggle: str | None, capsys):
    args = ["run", "deep-sigmoid", "--steps", "1", "--quiet", "--set", f"{key}={value}",
            "--set", "model.depth=3", "--set", "model.width=8"]  # fmt: skip
    if toggle is not None:
        args += ["--toggle", toggle]
    check(args, capsys)


@pytest.mark.parametrize(
    "doc",
    [
        "[model]\nwidth = 1024\ndepth = 64\n",
        "[model]\nkind='rnn'\nhidden=1024\n[data]\ntask='adding'\nseq_len=2000\n[train]\nbatch_size=4096\n",
    ],
)
def test_sizes_that_would_exhaust_memory_are_refused(doc, tmp_path: Path, capsys):
    path = tmp_path / "big.toml"
    path.write_text(doc)
    assert main(["run", str(path), "--steps", "1", "--quiet"]) == 2
    assert "too large for an interactive demo" in capsys.readouterr().err


@st.composite
def coherent_documents(draw) -> str:
    """Mostly valid scenes (kind and task agree), with one value sometimes pushed to or past an edge."""
    rnn = draw(st.booleans())
    model = {"kind": "rnn" if rnn else "mlp", "depth": draw(st.integers(1, 12)), "width": draw(st.integers(2, 48)),
             "activation": draw(GOOD["activation"].filter(lambda a: a != "softmax")),
             "init": draw(st.sampled_from(["default", "xavier", "he"])), "batchnorm": draw(st.booleans()),
             "skip": draw(st.booleans()), "cell": draw(st.sampled_from(["rnn", "lstm", "gru"])),
             "hidden": draw(st.integers(2, 32)), "init_gain": draw(st.floats(0.01, 3.0))}  # fmt: skip
    task = draw(st.sampled_from(["first-bit", "adding"] if rnn else ["spirals", "moons", "checkerboard", "circles"]))
    data = {"task": task, "samples": draw(st.integers(16, 512)), "noise": draw(st.floats(0, 2)),
            "seq_len": draw(st.integers(2, 30)), "classes": draw(st.integers(2, 8))}  # fmt: skip
    train = {"optimizer": draw(st.sampled_from(["sgd", "adam"])), "lr": draw(st.floats(1e-4, 5.0)),
             "momentum": draw(st.floats(0, 0.99)), "batch_size": draw(st.integers(1, 16)),
             "clip": draw(st.one_of(st.just(False), st.floats(0.01, 10))), "seed": draw(st.integers(0, 2**31 - 1)),
             "log_every": draw(st.integers(1, 5))}  # fmt: skip
    sections = {"model": model, "data": data, "train": train}
    if draw(st.integers(0, 3)) == 0:  # one value pushed to or past an edge
        section, key = draw(st.sampled_from(KEYS))
        sections[section][key] = draw(VALUES)
    return "".join(
        f"[{name}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in values.items())
        for name, values in sections.items()
    )


@settings(SETTINGS, max_examples=200)
@given(doc=coherent_documents())
def test_coherent_generated_scenes_run_one_step_or_are_refused(doc: str, capsys):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "scene.toml"
        path.write_text(doc)
        check(["run", str(path), "--steps", "1", "--quiet"], capsys)
