"""`vgtui attach` on the command line, names that are taken, and the no-sync promise on a GPU."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from watch_helpers import one_torch_thread_fixture, watch_dir_fixture  # noqa: F401 - fixtures

import vgtui
from vgtui.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread", "watch_dir")


def _watched(name: str):
    model = nn.Linear(3, 2)
    return vgtui.watch(model, torch.optim.SGD(model.parameters(), 0.1), name=name, quiet=True)


def test_attach_list_shows_live_runs_and_a_taken_name_gets_a_suffix(capsys):
    with _watched("exp3") as a, _watched("exp3") as b:
        assert (a.name, b.name) == ("exp3", "exp3-2")
        assert main(["attach", "--list"]) == 0
        out = capsys.readouterr().out
        assert "exp3 " in out and "exp3-2" in out and "pid" in out
    assert main(["attach", "--list"]) == 0
    assert "no watched runs" in capsys.readouterr().out


def test_attach_to_nothing_is_one_line_and_exit_2(capsys):
    assert main(["attach", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vgtui: error: no watched run at") and err.count("\n") == 1
    assert main(["attach", "tcp://127.0.0.1"]) == 2
    assert main(["attach", "bad name!"]) == 2


def test_a_socket_left_by_a_dead_run_is_reused(watch_dir):
    import socket

    watch_dir.mkdir(mode=0o700, exist_ok=True)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(watch_dir / "old.sock"))
    stale.close()  # bound, never listening: what a killed run leaves
    with _watched("old") as w:
        assert w.name == "old"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_no_host_sync_on_cuda():
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.Sigmoid(), nn.Linear(64, 4)).cuda()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x, y = torch.randn(128, 32, device="cuda"), torch.randint(0, 4, (128,), device="cuda")
    with vgtui.watch(model, opt, name="gpu", quiet=True, heavy_every=3, publish_every=0.01) as w:
        w.hooks.clip = 1.0  # vgtui's clipping on: still no sync
        for _ in range(2):  # the first step sets up (shapes, buffers); syncs there are allowed
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            w.log(loss=loss)
            opt.step()
        torch.cuda.set_sync_debug_mode("error")
        try:
            for _ in range(20):
                loss = torch.nn.functional.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # the user's own: measured on heavy steps
                w.log(loss=loss, acc=(model(x).argmax(1) == y).float().mean())
                opt.step()
        finally:
            torch.cuda.set_sync_debug_mode(0)
        assert not w.hooks.off and w.step == 22 and w.hub.publish_errors == 0
