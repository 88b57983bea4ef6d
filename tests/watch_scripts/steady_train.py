"""A training script for the attach tests: a small MLP under vgtui.watch that trains `--steps` steps at a steady pace
(`--pace` seconds a step), prints "ready" once `--ready` steps are done, and at step `--hold` waits (up to 120 s)
until `--viewers` viewers are attached, so that a viewer started after "ready" joins while the run trains."""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

import vgtui

parser = argparse.ArgumentParser()
parser.add_argument("--name", required=True)
parser.add_argument("--steps", type=int, default=400)
parser.add_argument("--ready", type=int, default=40)
parser.add_argument("--hold", type=int, default=300)
parser.add_argument("--viewers", type=int, default=1)
parser.add_argument("--pace", type=float, default=0.01)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--heavy-every", type=int, default=5)
parser.add_argument("--hub-pid", default=None, help="write the hub process's pid to this file")
args = parser.parse_args()

torch.set_num_threads(1)
torch.manual_seed(args.seed)
model = nn.Sequential(nn.Linear(8, 16), nn.Sigmoid(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))
opt = torch.optim.SGD(model.parameters(), lr=0.2)
x = torch.randn(256, 8)
y = (x[:, 0] > 0).long() + (x[:, 1] > 1).long()
with vgtui.watch(model, opt, name=args.name, heavy_every=args.heavy_every, publish_every=0.05, quiet=True) as watch:
    if args.hub_pid:
        with open(args.hub_pid, "w") as fh:
            fh.write(str(watch.hub.pid))
    for step in range(1, args.steps + 1):
        idx = torch.randint(0, 256, (32,))
        out = model(x[idx])
        loss = F.cross_entropy(out, y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        watch.log(loss=loss, acc=(out.argmax(1) == y[idx]).float().mean())
        opt.step()
        if step == args.ready:
            print("ready", flush=True)
        if step == args.hold:
            deadline = time.monotonic() + 120
            while len(watch.viewer_stats()) < args.viewers and time.monotonic() < deadline:
                time.sleep(0.05)
        time.sleep(args.pace)
print(f"trained {args.steps} steps", flush=True)
