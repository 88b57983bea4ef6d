"""Preset paths and option values a hostile or unlucky user gives: one line, exit 2, nothing read that is not a
regular file, and no value echoed at full length."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vgtui.cli import main

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def refused(capsys, *args: str) -> str:
    assert main(["run", *args, "--steps", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert len(err) < 400, f"{len(err)} characters: {err[:200]}"
    return err


@pytest.mark.parametrize("where", ["fifo", "/dev/zero", "folder"])
def test_a_preset_that_is_not_a_regular_file_is_refused_without_reading(tmp_path: Path, where):
    """A pipe nobody writes to used to hang the command, /dev/zero to fill the memory."""
    path = {"fifo": tmp_path / "scene.toml", "/dev/zero": Path("/dev/zero"), "folder": tmp_path}[where]
    if where == "fifo":
        os.mkfifo(path)
    proc = subprocess.run([sys.executable, "-m", "vgtui.cli", "run", str(path), "--steps", "1"], capture_output=True,
                          text=True, timeout=30, env=ENV)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and str(path) in err
    assert ("not a regular file" in err) if where != "folder" else ("is a folder" in err)


def test_a_huge_preset_file_is_refused(tmp_path: Path, capsys):
    path = tmp_path / "huge.toml"
    path.write_text("# " + "x" * (2 << 20) + "\n")
    assert "allowed: a preset file up to 1 MB" in refused(capsys, str(path))


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("n" * 256, "the name is 256 characters long"),
        ("n" * 100_000, "the name is 100,000 characters long"),
        ("/tmp/" + "p" * 300 + ".toml", "allowed: a name up to 255 characters"),
        ("/" + "d/" * 600 + "x.toml", "the path is 1,207 characters long"),
        ("bad\0name", "not a name or a path"),
        ("", "not a name or a path"),
    ],
)
def test_long_or_odd_preset_names_are_one_line(capsys, spec, fragment):
    assert fragment in refused(capsys, spec)


def test_unknown_preset_name_is_echoed_short(capsys):
    err = refused(capsys, "x" * 200)
    assert "unknown preset" in err and "…" in err


@pytest.mark.parametrize(
    "option, fragment",
    [
        ("model.depth=" + "9" * 100_000, "allowed: an integer from 1 to 64"),  # more digits than Python reads
        ("model.depth=" + "[" * 100_000, "allowed: an integer from 1 to 64"),
        ("model.activation=" + "r" * 100_000, "allowed: one of"),
        ("model." + "k" * 100_000 + "=3", "unknown key"),
        ("s" * 100_000 + ".depth=3", "unknown section"),
        ("x" * 100_000, "expected section.key=value"),
    ],
)
def test_a_huge_set_value_is_not_echoed_in_full(capsys, option, fragment):
    err = refused(capsys, "deep-sigmoid", "--set", option)
    assert fragment in err and ("…" in err or "..." in err), err


def test_a_huge_toggle_is_not_echoed_in_full(capsys):
    err = refused(capsys, "deep-sigmoid", "--toggle", "10:activation=" + "r" * 100_000)
    assert "--toggle" in err and "100,014 characters" in err
