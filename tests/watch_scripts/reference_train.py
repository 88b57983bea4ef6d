"""A training script for the watch tests: trains a small Sequential under vgtui.watch and computes, itself and
independently of vgtui, what a viewer should see (per-layer gradient norms every step; weight norms, update size,
activation slope and dead share on heavy steps). Waits for `--viewers` viewers before training, writes the
reference numbers to --out (npz), then closes the watch.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import vgtui

parser = argparse.ArgumentParser()
parser.add_argument("--name", required=True)
parser.add_argument("--out", required=True)
parser.add_argument("--steps", type=int, default=60)
parser.add_argument("--heavy-every", type=int, default=5)
parser.add_argument("--viewers", type=int, default=1)
args = parser.parse_args()

torch.set_num_threads(1)
torch.manual_seed(0)
acts = [nn.Sigmoid(), nn.ReLU(inplace=True), nn.Sigmoid(), nn.ReLU()]
layers: list[nn.Module] = [nn.Linear(8, 16)]
for act in acts:
    layers += [act, nn.Linear(16, 16)]
layers[-1] = nn.Linear(16, 3)
model = nn.Sequential(*layers)
linears = [m for m in model if isinstance(m, nn.Linear)]
opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)

seen: dict[int, torch.Tensor] = {}
for i, act in enumerate(acts):  # the reference's own view of the activations (after Linear i)
    act.register_forward_hook(lambda m, a, out, i=i: seen.__setitem__(i, out.detach().clone()))

watch = vgtui.watch(model, opt, name=args.name, heavy_every=args.heavy_every, publish_every=0.05, quiet=True)
deadline = time.monotonic() + 60
while len(watch.viewer_stats()) < args.viewers and time.monotonic() < deadline:
    time.sleep(0.05)

x = torch.randn(512, 8)
y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()
ref: dict[str, list] = {k: [] for k in ("step", "grad", "heavy_step", "weight", "update", "slope", "dead", "sat")}
for step in range(1, args.steps + 1):
    idx = torch.randint(0, 512, (64,))
    out = model(x[idx])
    loss = F.cross_entropy(out, y[idx])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    watch.log(loss=loss)
    ref["step"].append(step)
    ref["grad"].append([torch.linalg.vector_norm(m.weight.grad).item() for m in linears])
    before = [m.weight.detach().clone() for m in linears]
    opt.step()
    if watch.hooks.heavy_due(step):
        ref["heavy_step"].append(step)
        ref["weight"].append([torch.linalg.vector_norm(m.weight).item() for m in linears])
        ref["update"].append(
            [
                (torch.linalg.vector_norm(m.weight - b) / torch.linalg.vector_norm(b)).item()
                for m, b in zip(linears, before, strict=True)
            ]
        )
        slope, dead, sat = [np.nan] * len(linears), [np.nan] * len(linears), [np.nan] * len(linears)
        for i, act in enumerate(acts):
            a = seen[i]
            if isinstance(act, nn.Sigmoid):
                slope[i] = (a * (1 - a)).mean().item()
                sat[i] = (a * (1 - a) < 0.01).float().mean().item()
            else:
                slope[i] = (a > 0).float().mean().item()
                dead[i] = ((a > 0).sum(dim=0) == 0).float().mean().item()
        ref["slope"].append(slope)
        ref["dead"].append(dead)
        ref["sat"].append(sat)
np.savez(args.out, **{k: np.array(v, dtype=float) for k, v in ref.items()})
watch.close()
print("reference written")
