"""vgtui.watch inside the user's process: which layers, in which order, named how; blocks; skipped steps; errors in
vgtui's hooks never reach the user's loop; the run log it records replays."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from watch_helpers import ROOT, one_torch_thread_fixture, wait_for, watch_dir_fixture  # noqa: F401 - fixtures

import vgtui
from vgtui.attach import connect
from vgtui.watch import probes as probes_module
from vgtui.watch.light import LightPlan

pytestmark = pytest.mark.usefixtures("one_torch_thread", "watch_dir")


class Backwards(nn.Module):
    """Modules defined in the reverse of the order the forward pass uses them, plus an LSTM (two matrices)."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(8, 2)
        self.lstm = nn.LSTM(8, 8, batch_first=True)
        self.embed = nn.Linear(4, 8)
        self.unused = nn.Linear(3, 3)
        self.act = nn.Tanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(self.act(self.embed(x)))
        return self.head(h[:, -1])


def _step(model, opt, w, x, y, log: bool = True) -> None:
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if log:
        w.log(loss=loss, acc=0.5, tokens=128)
    opt.step()


def test_layers_follow_the_first_forward_pass_and_are_named_by_module_path():
    model = Backwards()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x, y = torch.randn(4, 5, 4), torch.tensor([0, 1, 0, 1])
    with vgtui.watch(model, opt, name="order", quiet=True, publish_every=0.01) as w:
        s = connect("order")
        for _ in range(3):
            _step(model, opt, w, x, y)
        wait_for(lambda: s.latest() is not None and s.latest().step == 3, 30, "step 3")
        snap = s.latest()
        assert snap.layer_names == ("embed", "lstm.weight_ih_l0", "lstm.weight_hh_l0", "head", "unused")
        assert snap.grad_norm[-1] == 0 and (snap.grad_norm[:-1] > 0).all()  # unused: no gradient
        assert snap.model.kind == "user" and snap.model.optimizer == "Adam" and snap.model.activation == "tanh"
        assert snap.extra["metrics"] == {"tokens": 128.0} and snap.acc == 0.5
        assert np.isfinite(snap.slope[0]) and np.isnan(snap.slope[1:]).all()  # the Tanh after embed
        s.stop()


def test_many_layers_are_thinned_to_64_with_a_note():
    model = nn.Sequential(*[nn.Linear(4, 4) for _ in range(100)])
    opt = torch.optim.SGD(model.parameters(), 0.01)
    with vgtui.watch(model, opt, name="many", quiet=True, publish_every=0.01) as w:
        s = connect("many")
        x = torch.randn(2, 4)
        for _ in range(2):
            opt.zero_grad()
            model(x).sum().backward()
            opt.step()
        wait_for(lambda: s.latest() is not None and s.latest().step == 2, 30, "step 2")
        names = s.latest().layer_names
        assert len(names) == 64 and names[0] == "[0]" and names[-1] == "[99]"
        assert any("showing 64 of 100 layers" in n.text for n in s.latest().notices)
        s.stop()
        w.close()


class Chain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(4, 8)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(8, 8), nn.Tanh()) for _ in range(3))
        self.head = nn.Linear(8, 2)
        self.kept: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        self.kept = [h]
        for block in self.blocks:
            h = block(h)
            self.kept.append(h)
        for t in self.kept:
            t.retain_grad()  # the test's own, independent view of dL/dh
        return self.head(h)


def test_blocks_get_the_gradient_that_reaches_them():
    torch.manual_seed(0)
    model = Chain()
    opt = torch.optim.SGD(model.parameters(), 0.1)
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    with vgtui.watch(model, opt, name="blocks", blocks=model.blocks, heavy_every=1000, quiet=True) as w:
        s = connect("blocks")
        _step(model, opt, w, x, y)
        _step(model, opt, w, x, y)  # step 2: heavy, the probes armed
        expected = [t.grad.norm().item() for t in model.kept]
        _step(model, opt, w, x, y)
        wait_for(lambda: s.latest() is not None and s.latest().step == 3, 30, "step 3")
        blocks = s.latest().extra["blocks"]
        assert blocks["names"] == ["blocks.0", "blocks.1", "blocks.2"]
        np.testing.assert_allclose(blocks["grad_in"], expected[:3], rtol=1e-5)
        np.testing.assert_allclose(blocks["grad_out"], expected[1:], rtol=1e-5)
        gain, product = s.latest().gain, s.latest().gain_product  # at each block's last layer (blocks.i.0)
        np.testing.assert_allclose(gain[1:4], np.array(expected[:3]) / expected[1:], rtol=1e-5)
        np.testing.assert_allclose(product[1:4], np.array(expected[:3]) / expected[3], rtol=1e-5)
        assert np.isnan(gain[0]) and np.isnan(gain[4])
        s.stop()


def test_skipped_optimizer_steps_are_counted():
    model = nn.Sequential(nn.Linear(4, 2))
    opt = torch.optim.SGD(model.parameters(), 0.1)
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    with vgtui.watch(model, opt, name="skip", quiet=True) as w:
        s = connect("skip")
        _step(model, opt, w, x, y)
        w.log(loss=torch.tensor(float("inf")))  # as under GradScaler: log() ran, step() was skipped
        _step(model, opt, w, x, y)
        w.close()
        wait_for(lambda: s.ended.is_set(), 30, "the end")
        snap = s.latest()
        assert snap.extra["watch"]["skipped_steps"] == 1 and "1 skipped steps" in snap.device
        assert any("skipped" in n.text for n in snap.notices)
        s.stop()


def test_an_error_in_an_activation_hook_switches_that_statistic_off(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(probes_module, "act_summary", broken)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(inplace=True), nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), 0.1)
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    with vgtui.watch(model, opt, name="err", quiet=True, heavy_every=2) as w:
        s = connect("err")
        for _ in range(6):
            _step(model, opt, w, x, y)  # the user's loop never sees the error
        w.close()
        wait_for(lambda: s.ended.is_set(), 30, "the end")
        snap = s.latest()
        assert snap.step == 6 and snap.status == "done" and np.isfinite(snap.grad_norm).all()
        assert any("activations statistics switched off" in n.text and "boom" in n.text for n in snap.notices)
        s.stop()


def test_an_error_in_the_every_step_path_stops_watching_with_one_warning(monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("kaput")

    monkeypatch.setattr(LightPlan, "norms", broken)
    model = nn.Sequential(nn.Linear(4, 2))
    opt = torch.optim.SGD(model.parameters(), 0.1)
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    with vgtui.watch(model, opt, name="core", quiet=True) as w:
        s = connect("core")
        before = model[0].weight.detach().clone()
        for _ in range(3):
            _step(model, opt, w, x, y)
        assert not torch.equal(before, model[0].weight)  # training went on
        wait_for(lambda: s.latest() is not None and s.latest().status == "error", 30, "the error status")
        assert any("kaput" in n.text for n in s.latest().notices)
        s.stop()
    assert capsys.readouterr().err.count("vgtui.watch: stopped watching") == 1


def test_the_run_log_it_records_replays_and_plots(tmp_path):
    from vgtui.cli import main
    from vgtui.replay import ReplaySession

    model = nn.Sequential(nn.Linear(4, 8), nn.Sigmoid(), nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), 0.1)
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    log = tmp_path / "run.jsonl"
    with vgtui.watch(model, opt, name="rec", record=log, quiet=True, publish_every=0.01, heavy_every=5) as w:
        for _ in range(40):
            _step(model, opt, w, x, y)
    replay = ReplaySession(log)
    last = replay.snapshot(len(replay.steps) - 1)
    assert last.step == 40 and last.layer_names == ("[0]", "[2]") and last.model.kind == "user"
    assert replay.config.name == "rec" and last.status == "done"
    assert main(["plot", str(log), "--width", "60", "--height", "20", "--color", "never"]) == 0


def test_importing_vgtui_imports_neither_torch_nor_textual_and_watching_no_textual():
    code = (
        "import sys, vgtui; assert 'torch' not in sys.modules and 'textual' not in sys.modules; "
        "import torch; m = torch.nn.Linear(2, 2); o = torch.optim.SGD(m.parameters(), 0.1); "
        "w = vgtui.watch(m, o, name='imp', quiet=True); m(torch.ones(1, 2)).sum().backward(); o.step(); w.close(); "
        "assert 'textual' not in sys.modules, [k for k in sys.modules if 'textual' in k]; "
        "assert callable(vgtui.watch) and vgtui.watch.Watch"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("nesterov", [False, True])
def test_a_big_models_norms_are_taken_beside_the_optimizer_step_and_stay_exact(nesterov):
    """From 4 MiB of gradients on CPU, with a core to spare, the norms are taken on a helper thread while step() runs,
    where the optimizer does not write into the gradients (SGD's nesterov does: there they stay on the training
    thread)."""
    assert torch.get_num_threads() == 1 and (os.cpu_count() or 1) >= 2  # one torch thread here: a core to spare
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 4))
    opt = torch.optim.SGD(model.parameters(), 0.01, momentum=0.9, nesterov=nesterov)
    x, y = torch.randn(32, 64), torch.randint(0, 4, (32,))
    expected = []
    with vgtui.watch(model, opt, name="big", quiet=True, heavy_every=4) as w:
        s = connect("big")
        wait_for(lambda: w.viewer_stats(), 30, "the viewer")
        for _ in range(12):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            w.log(loss=loss)
            expected.append([float(m.weight.grad.norm()) for m in model if isinstance(m, nn.Linear)])
            opt.step()
        helper = w.hooks.helper
        assert (helper is not None) == (not nesterov)
    wait_for(lambda: s.ended.is_set(), 30, "the end of the run")
    view = s.history.view()
    assert list(view.steps) == list(range(1, 13))
    np.testing.assert_allclose(view["grad_norm"], np.array(expected), rtol=1e-6)  # as the script's own norm()
    if helper is not None:
        wait_for(lambda: not helper._thread.is_alive(), 5, "the norms thread to end with the watch")
    s.stop()
