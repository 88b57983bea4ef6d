"""Our fused optimizers take exactly the steps torch.optim takes (they exist to keep torch._dynamo out)."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch

from vgtui.engine.optim import SGD, Adam


@pytest.mark.parametrize("kind", ["sgd", "sgd-plain", "adam"])
def test_same_updates_as_torch_optim(kind):
    torch.manual_seed(0)
    ours_model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    ref_model = copy.deepcopy(ours_model)
    if kind == "adam":
        ours, ref = Adam(ours_model.parameters(), 0.01), torch.optim.Adam(ref_model.parameters(), 0.01)
    else:
        mom = 0.9 if kind == "sgd" else 0.0
        ours = SGD(ours_model.parameters(), 0.1, mom)
        ref = torch.optim.SGD(ref_model.parameters(), 0.1, momentum=mom)
    for _ in range(20):
        x = torch.randn(16, 4)
        for model, opt in ((ours_model, ours), (ref_model, ref)):
            opt.zero_grad()
            model(x).pow(2).sum().backward()
            opt.step()
    for a, b in zip(ours_model.parameters(), ref_model.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_training_does_not_import_dynamo():
    code = (
        "import sys; from vgtui.presets import resolve; from vgtui.engine.trainer import Trainer; "
        "t = Trainer(resolve('deep-sigmoid')); t.train_step(); t.collect(); "
        "assert 'torch._dynamo' not in sys.modules"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
