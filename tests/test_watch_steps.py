"""What happens between backward() and step() in the user's loop: their own clipping is detected and labelled,
skipped steps are told apart from gradient accumulation, and step 1 has activation statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from watch_helpers import one_torch_thread_fixture, wait_for, watch_dir_fixture  # noqa: F401 - fixtures

import vgtui
from vgtui.attach import connect
from vgtui.tui.panels import status_text
from vgtui.watch.report import user_clip_factor

pytestmark = pytest.mark.usefixtures("one_torch_thread", "watch_dir")


def _model(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.Sigmoid(), nn.Linear(16, 16), nn.Sigmoid(), nn.Linear(16, 2))


def _data(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(100 + seed)
    return torch.randn(32, 4, generator=gen) * 5, torch.randint(0, 2, (32,), generator=gen)


def _finish(w, s):
    w.close()
    wait_for(lambda: s.ended.is_set(), 30, "the end")
    return s.latest()


@pytest.mark.parametrize("seed", range(3))
def test_the_users_own_clipping_is_detected_with_its_factor_and_labelled(seed):
    model = _model(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _data(seed)
    factors = {}
    with vgtui.watch(model, opt, name="uclip", quiet=True, heavy_every=4, publish_every=0.01) as w:
        s = connect("uclip")
        for step in range(1, 13):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            total = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 0.05))
            factors[step] = min(1.0, 0.05 / (total + 1e-6))
            w.log(loss=total)
            opt.step()
        snap = _finish(w, s)
    label = snap.extra["watch"]["user_clip"]
    assert label["step"] == 12 and label["checked_steps"] == 5  # heavy steps 1, 2, 4, 8, 12
    assert factors[12] < 0.9 and label["factor"] == pytest.approx(factors[12], rel=1e-5)
    assert any("your own gradient clipping" in n.text and "after it" in n.text for n in snap.notices)
    assert "after your clipping" in status_text(snap, "uclip").plain
    s.stop()


def test_clipping_that_does_not_clip_and_no_clipping_at_all_are_not_labelled():
    for clip in (1e9, None):
        model = _model(0)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        x, y = _data(0)
        with vgtui.watch(model, opt, name="noclip", quiet=True, heavy_every=2, publish_every=0.01) as w:
            s = connect("noclip")
            for _ in range(6):
                opt.zero_grad()
                F.cross_entropy(model(x), y).backward()
                if clip is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                w.log(loss=1.0)
                opt.step()
            snap = _finish(w, s)
        assert "user_clip" not in snap.extra["watch"] and "after your clipping" not in status_text(snap, "x").plain
        s.stop()


def test_clipping_under_grad_scaler_is_measured_on_the_unscaled_gradients():
    model = _model(1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    x, y = _data(1)
    with vgtui.watch(model, opt, name="amp", quiet=True, heavy_every=1000, publish_every=0.01) as w:
        s = connect("amp")
        opt.zero_grad()
        scaler.scale(F.cross_entropy(model(x), y)).backward()
        scaler.unscale_(opt)
        total = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 0.05))
        scaler.step(opt)
        scaler.update()
        snap = _finish(w, s)
    assert snap.extra["watch"]["user_clip"]["factor"] == pytest.approx(0.05 / (total + 1e-6), rel=1e-5)
    s.stop()


def test_a_loss_scale_is_not_taken_for_clipping():
    assert user_clip_factor(1.0) is None and user_clip_factor(2.0**-16) is None and user_clip_factor(math.nan) is None
    assert user_clip_factor(0.42) == 0.42 and user_clip_factor(0.5) == 0.5


def _backward(model, x, y) -> torch.Tensor:
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    return loss


@pytest.mark.parametrize("set_to_none", [True, False])
def test_gradient_accumulation_that_logs_every_micro_batch_is_no_skipped_step(set_to_none):
    model = _model(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _data(0)
    with vgtui.watch(model, opt, name="accum", quiet=True) as w:
        s = connect("accum")
        for _ in range(5):
            opt.zero_grad(set_to_none=set_to_none)
            for k in range(4):
                w.log(loss=_backward(model, x[k::4], y[k::4]))
            w.log(acc=0.5)  # a second log() for another metric, no backward: no skip either
            opt.step()
        snap = _finish(w, s)
    assert snap.step == 5 and snap.extra["watch"]["skipped_steps"] == 0
    assert not any("skipped" in n.text for n in snap.notices)
    s.stop()


@pytest.mark.parametrize("set_to_none", [True, False])
def test_a_step_skipped_after_zero_grad_is_counted(set_to_none):
    model = _model(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _data(0)
    with vgtui.watch(model, opt, name="skip2", quiet=True) as w:
        s = connect("skip2")
        for i in range(6):
            opt.zero_grad(set_to_none=set_to_none)
            w.log(loss=_backward(model, x, y))
            if i not in (2, 3):  # as GradScaler on inf gradients: no optimizer.step()
                opt.step()
        snap = _finish(w, s)
    assert snap.step == 4 and snap.extra["watch"]["skipped_steps"] == 2 and "2 skipped steps" in snap.device
    s.stop()


@pytest.mark.parametrize("seed", range(3))
def test_step_one_has_activation_statistics(seed):
    model = _model(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _data(seed)
    with torch.no_grad():
        a1 = torch.sigmoid(model[0](x))
        a2 = torch.sigmoid(model[2](a1))
    expected = [float((a * (1 - a)).mean()) for a in (a1, a2)]
    with vgtui.watch(model, opt, name="first", quiet=True, heavy_every=1000, publish_every=0.01):
        s = connect("first")
        opt.zero_grad()
        _backward(model, x, y)
        opt.step()
        wait_for(lambda: s.latest() is not None and s.latest().step == 1, 30, "step 1")
        snap = s.latest()
        assert snap.stats_step == 1
        np.testing.assert_allclose(snap.slope[:2], expected, rtol=1e-5)
        assert np.isnan(snap.slope[2])
        s.stop()
