"""vgtui.watch under torchrun (2 ranks, gloo, CPU): DDP, FSDP1 (use_orig_params=True) and FSDP2 (fully_shard).

One torchrun launch trains the three wrappers in turn (tests/watch_scripts/dist_train.py); a viewer attached to
rank 0 must receive the per-layer gradient norms of a single-process reference trained on the concatenated global
batch, a pause must hold both ranks at the same step, a clip toggle must apply at the same step on both ranks (the
DDP replicas stay identical), and a second viewer leaving mid-run changes nothing. A second launch kills one rank:
the watch ends with a message, nothing hangs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from watch_helpers import ROOT, SCRIPTS, child_env, wait_for, watch_dir_fixture  # noqa: F401 - fixture

from vgtui.attach import connect
from vgtui.contract import Pause, Resume, Toggle

pytestmark = pytest.mark.usefixtures("watch_dir")
WRAPPERS = ("ddp", "fsdp1", "fsdp2")
RENDEZVOUS_FAILED = ("rendezvous", "RendezvousTimeout", "EADDRINUSE", "Address already in use", "connect() timed out")


def torchrun(out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "--monitor-interval=0.5", str(SCRIPTS / "dist_train.py"), "--out", str(out), *extra]  # fmt: skip
    return subprocess.Popen(cmd, cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)  # fmt: skip


def kill(proc: subprocess.Popen) -> None:
    """torchrun, its ranks and anything they started (a session of their own)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def finish(proc: subprocess.Popen, timeout: float) -> str:
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        raise AssertionError(f"torchrun did not end in {timeout:.0f} s:\n{output[-3000:]}") from None
    return output


def attach(name: str, out: Path, proc: subprocess.Popen, ready: str):
    wait_for(lambda: (out / ready).exists() or proc.poll() is not None, 120, f"{name} to start")
    if proc.poll() is not None:
        return None
    end = time.monotonic() + 30
    while True:
        try:
            return connect(name)
        except Exception:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def drive(out: Path, proc: subprocess.Popen) -> dict[str, dict]:
    """Per wrapper: attach two viewers, drop one, pause ~1.5 s, resume, clip; the staying viewer's history."""
    seen: dict[str, dict] = {}
    for kind in WRAPPERS:
        viewer = attach(f"dist-{kind}", out, proc, f"{kind}.ready")
        if viewer is None:
            return seen
        leaver = connect(f"dist-{kind}")
        wait_for(lambda v=viewer: v.latest() is not None and v.latest().step >= 8, 60, f"{kind}: steps")
        leaver.stop()  # a viewer leaving mid-run
        viewer.send(Pause())
        wait_for(lambda v=viewer: v.latest().status == "paused", 60, f"{kind}: paused")
        paused_at = viewer.latest().step
        time.sleep(1.5)
        viewer.send(Resume())
        wait_for(lambda v=viewer, at=paused_at: v.latest().step > at + 3, 60, f"{kind}: running again")
        viewer.send(Toggle("lr", "0.25"))
        viewer.send(Toggle("clip", "0.005"))  # below every total here: it clips each step
        wait_for(lambda v=viewer: v.ended.is_set(), 120, f"{kind}: the end of the run")
        v = viewer.history.view()
        snap = viewer.latest()
        seen[kind] = {"steps": v.steps, "grad": v["grad_norm"], "loss": v["loss"], "clipped": v["clipped"],
                      "events": [(e.step, e.name, e.value) for e in snap.events], "paused_at": paused_at,
                      "extra": snap.extra, "names": snap.layer_names, "weight": snap.weight_norm,
                      "update": snap.update_ratio, "mean_abs": snap.weight_mean_abs,
                      "stats_step": snap.stats_step, "hist": snap.hist_counts}  # fmt: skip
        viewer.stop()
    return seen


def test_ddp_fsdp1_fsdp2_viewers_see_the_global_numbers_and_commands_apply_on_every_rank(tmp_path: Path):
    for attempt in range(2):  # a loaded box sometimes fails the rendezvous itself: retry that once
        out = tmp_path / f"try{attempt}"
        out.mkdir()
        proc = torchrun(out)
        try:
            seen = drive(out, proc)
        except BaseException:
            kill(proc)
            raise
        output = finish(proc, 240)
        if proc.returncode == 0 or not any(s in output for s in RENDEZVOUS_FAILED) or attempt:
            break
    assert proc.returncode == 0, output[-3000:]
    for kind in WRAPPERS:
        got = seen[kind]
        ranks = [json.loads((out / f"{kind}-rank{r}.json").read_text()) for r in range(2)]
        ref_grad, ref_loss = np.array(ranks[0]["ref_grad"]), np.array(ranks[0]["ref_loss"])
        steps = got["steps"]
        assert len(steps) == len(ref_grad) and steps[-1] == len(ref_grad), kind  # every step reached the viewer
        np.testing.assert_allclose(got["grad"], ref_grad[steps - 1], rtol=1e-5, err_msg=kind)
        assert got["names"] == ("[0]", "[2]", "[4]", "[6]"), got["names"]
        assert got["extra"]["dist"] == {"world": 2, "wrapper": kind.upper()}
        # the loss: the mean over the ranks' batches under FSDP (= the reference's); rank 0's own under DDP
        want = ref_loss if kind != "ddp" else np.array(ranks[0]["loss"])
        np.testing.assert_allclose(got["loss"], want[steps - 1], rtol=1e-5, err_msg=kind)
        # heavy statistics: the weight norms after the last heavy step, the update sizes, the histogram's counts
        ref_weight = np.array(ranks[0]["ref_weight"])[got["stats_step"] - 1]
        np.testing.assert_allclose(got["weight"], ref_weight, rtol=1e-5, err_msg=kind)
        ref_mean_abs = np.array(ranks[0]["ref_mean_abs"])[got["stats_step"] - 1]
        np.testing.assert_allclose(got["mean_abs"], ref_mean_abs, rtol=1e-5, err_msg=kind)
        assert np.isfinite(got["update"]).all() and (got["update"] > 0).all()
        assert got["hist"].sum() == 16 * 8  # every element of layer 1's gradient, over both ranks' shards
        # the clip applied at the same step on both ranks, and the viewer saw it from that step on
        first = [next(i for i, c in enumerate(r["clip"]) if c is not None) for r in ranks]
        assert first[0] == first[1] and ranks[0]["clip"] == ranks[1]["clip"], kind
        assert not got["clipped"][: first[0]].any() and got["clipped"][first[0] :].all(), kind
        assert ("clip", "0.005") in [(n, v) for _, n, v in got["events"]]
        assert ranks[0]["lr"] == ranks[1]["lr"] and ranks[0]["lr"][0] == 0.5 and ranks[0]["lr"][-1] == 0.25, kind
        assert (out / f"{kind}.jsonl").stat().st_size > 0 and not list(out.glob("*rank1*.jsonl"))
        # the pause held both ranks after the same step
        waited = [r["time"][got["paused_at"] - 1] - r["time"][got["paused_at"] - 2] for r in ranks]
        assert min(waited) > 1.0, (kind, waited)  # both ranks waited inside that step's optimizer.step()
    refused = [json.loads((out / f"refused-rank{r}.json").read_text()) for r in range(2)]
    assert refused == [{"off": True, "hub": False, "nohub_off": True}] * 2  # not watched, on every rank
    assert output.count("not watching: FSDP without use_orig_params=True") == 1, output[-3000:]  # rank 0 says so
    ddp = [np.array(json.loads((out / f"ddp-rank{r}.json").read_text())["params"]) for r in range(2)]
    np.testing.assert_array_equal(ddp[0], ddp[1])  # the replicas stayed identical through clip and pause


def test_a_rank_that_dies_ends_the_watch_with_a_message(tmp_path: Path):
    for attempt in range(2):
        out = tmp_path / f"try{attempt}"
        out.mkdir()
        proc = torchrun(out, "--wrappers", "ddp", "--hang", "--prefix", "dies", "--max-steps", "400")
        viewer = None
        try:
            viewer = attach("dies-ddp", out, proc, "ddp.ready")
            if viewer is not None:
                wait_for(lambda v=viewer: v.latest() is not None and v.latest().step >= 2, 60, "steps")
                os.kill(int((out / "rank1.pid").read_text()), signal.SIGKILL)
                wait_for(viewer.ended.is_set, 90, "the viewer to hear that the run ended")
        except BaseException:
            kill(proc)
            raise
        output = finish(proc, 120)
        if viewer is not None or attempt or not any(s in output for s in RENDEZVOUS_FAILED):
            break
    assert viewer is not None, output[-3000:]
    snap = viewer.latest()
    assert snap.status == "error", (snap.status, output[-2000:])
    assert any("rank" in n.text for n in snap.notices), ([n.text for n in snap.notices], output[-3000:])
    assert proc.returncode != 0
    viewer.stop()


def test_the_status_bar_names_the_wrapper_and_the_world_size():
    from dataclasses import replace

    from tui_fakes import FakeSession, fake_config

    from vgtui.tui.panels import status_text

    fake = FakeSession(fake_config())
    fake.advance(5)
    snap = fake.latest()
    assert "ranks" not in status_text(snap, "x", width=200).plain  # a single process shows none
    shown = status_text(replace(snap, extra={"dist": {"world": 4, "wrapper": "FSDP2"}}), "x", width=200).plain
    assert "FSDP2 × 4 ranks" in shown.splitlines()[0]


def test_deepspeed_is_declined_with_the_reason(capsys: pytest.CaptureFixture[str]):
    import torch
    from torch import nn

    import vgtui

    engine = type("DeepSpeedEngine", (nn.Module,), {})()  # what deepspeed.initialize returns, by its name
    engine.layer = nn.Linear(3, 3)
    watch = vgtui.watch(engine, torch.optim.SGD(engine.parameters(), lr=0.1), name="ds")
    assert watch.hooks.off and watch.hub is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "DeepSpeed is not supported" in err and "p.grad is None" in err
    watch.close()


def test_every_command_a_viewer_may_send_crosses_the_broadcast_unchanged():
    from vgtui.contract import Pause, Resume, SelectLayer, Step, Toggle
    from vgtui.watch.dist import _decode, _encode

    sent = [Pause(), Resume(), Step(3), SelectLayer(2), Toggle("clip", "0.005"), Toggle("clip", "off"),
            Toggle("lr", "0.25"), Toggle("activation", "leaky_relu")]  # fmt: skip
    assert [_decode(*_encode(c)) for c in sent] == sent
    assert _encode(Toggle("depth", "3")) is None  # anything else is not sent to the ranks
