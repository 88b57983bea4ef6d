"""Writing the run log: bad --out paths are refused with one line (exit 2), an existing file needs --force, and a
write that fails mid-run (full disk, /dev/full, `ulimit -f`) stops the run with one line, exit 1, no hang, and a
file that is valid JSON Lines up to its last line."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ends_with_the_test, sigint_as_from_a_terminal

from vgtui.cli import main
from vgtui.runlog import Recorder, RunLogError, RunLogWriter, next_free_path, read_runlog

SMALL = ["--set", "model.depth=4", "--set", "model.width=8", "--steps", "20", "--quiet"]
ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def valid_json_lines(path: Path) -> list[dict]:
    text = path.read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


# --------------------------------------------------------------------------- the writer


def test_writer_refuses_what_it_cannot_or_should_not_write(tmp_path: Path):
    cases = {
        tmp_path / "no-such-folder" / "x.jsonl": "folder",
        tmp_path: "is a folder",
        tmp_path / ("n" * 300 + ".jsonl"): "too long",
    }
    (tmp_path / "old.jsonl").write_text("keep me\n")
    cases[tmp_path / "old.jsonl"] = "exists; use --force to overwrite, or another name"
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
    cases[tmp_path / "link.jsonl"] = "exists; use --force"
    for path, fragment in cases.items():
        with pytest.raises(RunLogError) as info:
            RunLogWriter(path)
        message = str(info.value)
        assert fragment in message and len(message.splitlines()) == 1 and len(message) < 300, message
        assert message.startswith(str(path)[:20])
    assert (tmp_path / "old.jsonl").read_text() == "keep me\n"
    assert not (tmp_path / "nowhere.jsonl").exists()


def test_force_overwrites_and_close_is_idempotent(tmp_path: Path):
    path = tmp_path / "run.jsonl"
    path.write_text("old\n" * 100)
    writer = RunLogWriter(path, force=True)
    writer.write({"type": "meta", "x": float("nan")})
    writer.close()
    writer.close()
    assert writer.closed and valid_json_lines(path) == [{"type": "meta", "x": None}]
    with pytest.raises(RunLogError, match="closed"):
        writer.write({"type": "step"})


def test_numbered_names_never_overwrite(tmp_path: Path):
    path = tmp_path / "demo.jsonl"
    assert next_free_path(path) == path
    path.write_text("")
    assert next_free_path(path) == tmp_path / "demo-2.jsonl"
    (tmp_path / "demo-2.jsonl").write_text("")
    writer = RunLogWriter.numbered(path)
    assert writer.path == tmp_path / "demo-3.jsonl"
    writer.close()
    assert next_free_path(tmp_path / "plain") == tmp_path / "plain"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_dev_full_fails_at_the_first_write_and_closes():
    writer = RunLogWriter("/dev/full")
    with pytest.raises(RunLogError) as info:
        writer.write({"type": "meta"})
    assert "ENOSPC" in str(info.value) and info.value.reason.startswith("No space left")
    assert writer.closed


def test_a_failed_write_leaves_only_whole_lines(tmp_path: Path, monkeypatch):
    """A short write and then ENOSPC in the middle of a line: the file is cut back to the last whole line."""
    import vgtui.runlog as runlog

    path = tmp_path / "full.jsonl"
    writer = RunLogWriter(path)
    for i in range(3):
        writer.write({"type": "step", "step": i})
    real_write, calls = os.write, {"n": 0}

    def short_then_full(fd, data):
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, bytes(data[:7]))  # a partial line reaches the disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runlog.os, "write", short_then_full)
    with pytest.raises(RunLogError, match="No space left on device"):
        writer.write({"type": "step", "step": 3, "padding": "x" * 100})
    assert writer.closed and writer.lines == 3
    assert [r["step"] for r in valid_json_lines(path)] == [0, 1, 2]


def test_recorder_says_where_the_log_stopped(tmp_path: Path):
    class Full(RunLogWriter):
        def write(self, record):
            if record.get("type") == "step" and record["step"] >= 30:
                raise RunLogError(f"{self.path}: cannot write: disk full (ENOSPC)", "disk full (ENOSPC)")
            super().write(record)

    from vgtui.config import apply_sets
    from vgtui.engine.session import Session
    from vgtui.presets import resolve

    cfg = apply_sets(resolve("deep-sigmoid"), ["model.depth=4", "model.width=8", "train.log_every=10"])
    recorder = Recorder(Full(tmp_path / "r.jsonl"))
    session = Session(cfg, device="cpu", max_steps=10_000, on_publish=recorder).start()
    assert session.done.wait(30), "a failing subscriber must end the run"
    session.stop(timeout=5)
    assert not session.alive
    last = session.latest()
    assert last.status == "error" and "stopped at step 20 because of: disk full (ENOSPC)" in last.error
    assert any("training stopped" in n.text for n in last.notices)
    assert str(recorder.error).startswith(str(tmp_path / "r.jsonl"))


# --------------------------------------------------------------------------- vgtui run --out


@pytest.mark.parametrize(
    "where, fragment",
    [
        ("missing-folder", "does not exist"),
        ("folder", "is a folder; give a file name"),
        ("existing", "exists; use --force to overwrite, or another name"),
        ("symlink", "exists; use --force"),
        ("long-name", "the name is too long; allowed: up to 255 bytes"),
    ],
)
def test_bad_out_is_refused_before_training(tmp_path: Path, capsys, where, fragment):
    out = {
        "missing-folder": tmp_path / "nope" / "r.jsonl",
        "folder": tmp_path,
        "existing": tmp_path / "e.jsonl",
        "symlink": tmp_path / "s.jsonl",
        "long-name": tmp_path / ("r" * 256),
    }[where]
    (tmp_path / "e.jsonl").write_text("precious\n")
    (tmp_path / "s.jsonl").symlink_to(tmp_path / "e.jsonl")
    t0 = time.monotonic()
    assert main(["run", "deep-sigmoid", *SMALL, "--out", str(out)]) == 2
    assert time.monotonic() - t0 < 5
    err = one_line(capsys)
    assert err.startswith("vgtui: error: ") and fragment in err, err
    assert (tmp_path / "e.jsonl").read_text() == "precious\n"


@pytest.mark.skipif(os.geteuid() == 0 and not Path("/sys/kernel").is_dir(), reason="needs a path root cannot write")
def test_unwritable_out_is_refused(tmp_path: Path, capsys):
    if os.geteuid() == 0:
        out = Path("/sys/kernel/vgtui-test.jsonl")  # sysfs: even root cannot create a file there
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        out = locked / "r.jsonl"
    assert main(["run", "deep-sigmoid", *SMALL, "--out", str(out)]) == 2
    err = one_line(capsys)
    assert "not writable" in err or "cannot write" in err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_dev_full_exits_1_with_one_line(capsys):
    assert main(["run", "deep-sigmoid", *SMALL, "--out", "/dev/full"]) == 1
    err = one_line(capsys)
    assert "/dev/full" in err and "No space left on device" in err and "nothing was trained" in err


def test_existing_out_needs_force(tmp_path: Path, capsys):
    out = tmp_path / "r.jsonl"
    assert main(["run", "deep-sigmoid", *SMALL, "--out", str(out)]) == 0
    first = out.read_text()
    capsys.readouterr()
    assert main(["run", "deep-sigmoid", *SMALL, "--out", str(out)]) == 2
    assert "use --force" in one_line(capsys)
    assert out.read_text() == first
    assert main(["run", "deep-sigmoid", *SMALL, "--seed", "3", "--out", str(out), "--force"]) == 0
    records = read_runlog(out)
    assert records[0]["config"]["train"]["seed"] == 3 and records[-1]["type"] in ("step", "diagnosis", "notice")
    capsys.readouterr()
    assert main(["run", "deep-sigmoid", *SMALL, "--force"]) == 2
    assert "--out" in one_line(capsys)


def test_a_run_that_cannot_start_leaves_no_empty_log(tmp_path: Path, capsys):
    out = tmp_path / "r.jsonl"
    assert main(["run", "deep-sigmoid", *SMALL, "--device", "tpu", "--out", str(out)]) == 2
    one_line(capsys)
    assert not out.exists()  # so the next try is not refused for an existing file


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="POSIX file size limits")
def test_file_size_limit_mid_run_stops_with_one_line_and_a_valid_log(tmp_path: Path):
    """`ulimit -f 40`: past 40 KB every write fails with EFBIG (SIGXFSZ is ignored, so it does not kill the run).
    It used to print a worker traceback and hang forever."""
    out = tmp_path / "f.jsonl"
    cmd = f"ulimit -f 40; exec {sys.executable} -m vgtui.cli run deep-sigmoid --steps 600 --out {out} --quiet"
    t0 = time.monotonic()
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=60, env=ENV)
    assert time.monotonic() - t0 < 45
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "File too large" in err and "training stopped" in err
    records = valid_json_lines(out)
    assert out.stat().st_size <= 40 * 1024
    last_step = [r["step"] for r in records if r["type"] == "step"][-1]
    assert f"stopped at step {last_step} because of" in err


def test_ctrl_c_claims_only_what_the_log_holds(tmp_path: Path):
    out = tmp_path / "int.jsonl"
    cmd = [sys.executable, "-m", "vgtui.cli", "run", "deep-sigmoid", "--set", "model.depth=4", "--set",
           "model.width=8", "--steps", "10000000", "--out", str(out), "--quiet"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            preexec_fn=sigint_as_from_a_terminal)  # fmt: skip
    with ends_with_the_test(proc):
        end = time.monotonic() + 60
        while time.monotonic() < end and (not out.exists() or out.stat().st_size < 20_000):
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    last_step = [r["step"] for r in valid_json_lines(out) if r["type"] == "step"][-1]
    assert f"is complete up to step {last_step}" in " ".join(stderr.split())
