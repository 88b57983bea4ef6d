"""A torchrun training script for the distributed watch tests (gloo, CPU, 2 ranks).

For each wrapper named in --wrappers (ddp, fsdp1, fsdp2), in turn: a small MLP wrapped so, trained under
vgtui.watch on each rank's half of a global batch, until vgtui's clipping (sent by a viewer) has been on for
--clip-steps steps. Rank 0 also trains a plain single-process copy on the concatenated global batch (clipped where
the watched run was) and records its per-layer gradient norms and loss: the reference a viewer's numbers must match.
Every rank writes what it saw (the vgtui clip each step used, step times, its final parameters) to --out.
With --hang, rank 1 writes its pid and trains on slowly (the test kills it).
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

import vgtui

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
parser.add_argument("--prefix", default="dist")
parser.add_argument("--wrappers", default="ddp,fsdp1,fsdp2")
parser.add_argument("--viewers", type=int, default=1)
parser.add_argument("--clip-steps", type=int, default=12)
parser.add_argument("--max-steps", type=int, default=3000)
parser.add_argument("--hang", action="store_true")
args = parser.parse_args()

torch.set_num_threads(1)
dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
rank, world = dist.get_rank(), dist.get_world_size()
out = Path(args.out)
LOCAL = 16


def net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 16), nn.Sigmoid(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 3)
    )


def wrap(kind: str, model: nn.Module) -> nn.Module:
    if kind == "ddp":
        return nn.parallel.DistributedDataParallel(model)
    if kind == "fsdp1":
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        from torch.distributed.fsdp.wrap import ModuleWrapPolicy

        policy = ModuleWrapPolicy({nn.Linear})
        return FSDP(model, use_orig_params=True, device_id=torch.device("cpu"), auto_wrap_policy=policy)
    from torch.distributed.fsdp import fully_shard

    for layer in model:
        if isinstance(layer, nn.Linear):
            fully_shard(layer)
    fully_shard(model)
    return model


def phase(kind: str) -> None:
    base = net()
    ref = copy.deepcopy(base)
    model = wrap(kind, base)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.5)
    ref_linears = [m for m in ref if isinstance(m, nn.Linear)]
    record_to = out / f"{kind}.jsonl"  # every rank passes it; rank 0 alone writes it
    watch = vgtui.watch(model, opt, name=f"{args.prefix}-{kind}", heavy_every=5, publish_every=0.05, quiet=True,
                        record=record_to)  # fmt: skip
    if rank == 0:
        (out / f"{kind}.ready").write_text(str(os.getpid()))
        deadline = time.monotonic() + 40
        while len(watch.viewer_stats()) < args.viewers and time.monotonic() < deadline:
            time.sleep(0.05)
    if args.hang and rank == 1:
        (out / "rank1.pid").write_text(str(os.getpid()))
    dist.barrier()
    gen = torch.Generator().manual_seed(1)
    record: dict[str, list] = {
        "clip": [],
        "time": [],
        "ref_grad": [],
        "ref_loss": [],
        "loss": [],
        "ref_weight": [],
        "ref_mean_abs": [],
        "lr": [],
    }
    clipped_for = 0
    step = 0
    while clipped_for < args.clip_steps and step < args.max_steps:
        step += 1
        x = torch.randn(world * LOCAL, 8, generator=gen)
        y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()
        xl, yl = x[rank * LOCAL : (rank + 1) * LOCAL], y[rank * LOCAL : (rank + 1) * LOCAL]
        loss = F.cross_entropy(model(xl), yl)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        watch.log(loss=loss)
        clip = watch.hooks.clip  # what this step's pre-hook will use
        record["lr"].append(opt.param_groups[0]["lr"] * watch.hooks.lr_factor)
        opt.step()
        record["clip"].append(clip)
        record["time"].append(time.monotonic())
        record["loss"].append(loss.item())
        clipped_for += clip is not None
        if rank == 0:
            ref_loss = F.cross_entropy(ref(x), y)
            ref_opt.zero_grad(set_to_none=True)
            ref_loss.backward()
            record["ref_grad"].append([torch.linalg.vector_norm(m.weight.grad).item() for m in ref_linears])
            record["ref_loss"].append(ref_loss.item())
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(ref.parameters(), clip)
            ref_opt.param_groups[0]["lr"] = record["lr"][-1]  # lr x k, as the watched run used it
            ref_opt.step()
            record["ref_weight"].append([torch.linalg.vector_norm(m.weight).item() for m in ref_linears])
            record["ref_mean_abs"].append([m.weight.abs().mean().item() for m in ref_linears])
        time.sleep(0.3 if args.hang else 0.01)
    watch.close()
    if kind == "ddp":
        flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        record["params"] = flat.tolist()
    (out / f"{kind}-rank{rank}.json").write_text(json.dumps(record))


def refusals() -> None:
    """FSDP1 without use_orig_params=True: one line, nothing watched, on every rank."""
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    model = FSDP(net(), device_id=torch.device("cpu"))
    watch = vgtui.watch(model, torch.optim.SGD(model.parameters(), lr=0.1), name="flat", quiet=True)
    refused = {"off": watch.hooks.off, "hub": watch.hub is not None}
    watch.close()
    # rank 0's hub cannot start (an address no one can bind): no rank watches, and training goes on on both
    model = nn.parallel.DistributedDataParallel(net())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    watch = vgtui.watch(model, opt, name="nohub", tcp=("256.0.0.1", 0), quiet=True)
    refused["nohub_off"] = watch.hooks.off
    for _ in range(3):
        F.mse_loss(model(torch.randn(4, 8)), torch.zeros(4, 3)).backward()
        opt.step()
    watch.close()
    (out / f"refused-rank{rank}.json").write_text(json.dumps(refused))


if "fsdp1" in args.wrappers:
    refusals()
for kind in args.wrappers.split(","):
    phase(kind)
    dist.barrier()
dist.destroy_process_group()
