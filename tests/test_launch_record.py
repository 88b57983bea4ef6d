"""`vgtui launch --record`: the path is checked before the screen is taken over, an existing file needs --force,
and every session after the first (another preset picked) records to its own numbered file."""

from __future__ import annotations

from pathlib import Path

from vgtui.cli import main
from vgtui.runlog import Recordings


def test_a_bad_or_existing_record_path_is_one_line_before_the_screen(tmp_path: Path, capsys):
    assert main(["launch", "deep-sigmoid", "--record", str(tmp_path / "no" / "x.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
    existing = tmp_path / "ws.jsonl"
    existing.write_text("keep me\n")
    assert main(["launch", "deep-sigmoid", "--record", str(existing)]) == 2
    assert "--force" in capsys.readouterr().err
    assert existing.read_text() == "keep me\n"


def test_each_later_session_records_to_a_new_numbered_file(tmp_path: Path):
    rec = Recordings(str(tmp_path / "ws.jsonl"), force=False)
    assert not (tmp_path / "ws.jsonl").exists()  # checked, not left behind
    first = rec.next()
    Path(first).write_text("{}\n")  # the first session's child writes it
    second, third = rec.next(), rec.next()
    assert [Path(p).name for p in (first, second, third)] == ["ws.jsonl", "ws-2.jsonl", "ws-3.jsonl"]
    assert Path(first).read_text() == "{}\n"


def test_the_session_says_where_it_records(tmp_path: Path):
    from helpers import preset

    from vgtui.engine.session import Session

    out = tmp_path / "r.jsonl"
    session = Session(preset("deep-sigmoid", "model.depth=3"), device="cpu", record=str(out), max_steps=5)
    try:
        session.start()
        assert session.done.wait(20)
    finally:
        session.stop()
    assert any(f"recording the run log to {out}" in n.text for n in session.latest().notices)
    assert out.read_text().count("\n") >= 2
