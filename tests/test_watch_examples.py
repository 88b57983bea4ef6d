"""The examples run as a user would run them, with vgtui.watch, and clients attach from other processes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from watch_helpers import ROOT, child_env, spawn, wait_for, watch_dir_fixture  # noqa: F401 - fixtures

from vgtui.attach import connect
from vgtui.watchdir import socket_path

EXAMPLES = [
    (["examples/deep_mlp.py", "--act", "sigmoid", "--steps", "1500", "--allow-swap"], "deep-mlp", "[0]", "vanishing"),
    (["examples/custom_forward.py", "--steps", "1200", "--depth", "4"], "custom-forward", "stem", None),
]


@pytest.mark.parametrize("args, name, first, verdict", EXAMPLES, ids=["deep_mlp", "custom_forward"])
def test_an_example_runs_watched_and_viewers_attach_from_other_processes(
    watch_dir, tmp_path, args, name, first, verdict
):
    proc = spawn(args)
    recorder = None
    try:
        wait_for(lambda: socket_path(name).exists() or proc.poll() is not None, 60, "the example's socket")
        assert proc.poll() is None, proc.communicate()[1]
        out = tmp_path / "attached.jsonl"
        recorder = subprocess.Popen(
            [sys.executable, "-m", "vgtui.cli", "attach", name, "--out", str(out)],
            cwd=ROOT,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        session = connect(name)
        wait_for(lambda: session.ended.is_set(), 180, "the example to finish")
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr
        assert recorder.wait(timeout=30) == 0, recorder.stderr.read() if recorder.stderr else ""
    finally:
        for p in (proc, recorder):
            if p is not None and p.poll() is None:
                p.kill()
    snap = session.latest()
    assert snap.status == "done" and snap.layer_names[0] == first and len(session.history) > 10
    assert f"watching {name}" in stderr and "done:" in stdout
    if verdict:
        assert verdict in [v.code for v in snap.verdicts]
        assert "activation" in snap.model.capabilities  # --allow-swap: its 20 sigmoids are all hidden
        swap = next(v for v in snap.verdicts if v.code == verdict).remedies[0]
        assert "hidden sigmoid/tanh (a), live" in swap
    else:
        blocks = snap.extra["blocks"]
        assert blocks["names"][0] == "blocks.0" and all(g > 0 for g in blocks["grad_in"])
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records[0]["type"] == "meta" and records[0]["preset"] == name
    assert [r for r in records if r["type"] == "step"][-1]["status"] == "done"
    session.stop()
