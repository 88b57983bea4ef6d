"""A user-style training loop bare, under vgtui.watch (default cadence, one viewer attached from another process),
and under nn-htop-style hooks (forward + register_full_backward_hook on every leaf, .item() in each).

Measured as many short blocks, interleaved in rotating order (the box's own speed drifts by tens of percent over a
minute when it is shared; a ratio of two long runs taken one after the other measures that drift): per round, the
bare block's time over the variant's, for wall time (steps/s, the headline) and this process's CPU time (its
threads; the hub process's is not in it); the median over the rounds.

Also the cost of vgtui's own work: the step hooks on a step without a publish, the training thread's part of a
publish (hand-over), the sender thread's (pack, pickle, pipe write) and the hub process's (unpack, history,
diagnosis, encode, write to the viewers).
"""

from __future__ import annotations

import copy
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

import vgtui

MODELS = {"20x64": (20, 64, nn.Sigmoid), "8x512": (8, 512, nn.ReLU)}
BATCH = 128
VIEWER = "from vgtui.attach import connect; import sys; s = connect(sys.argv[1]); s.ended.wait(600)"


def mlp(depth: int, width: int, act: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(16, width), act()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), act()]
    return nn.Sequential(*layers, nn.Linear(width, 4))


def htop_style(model: nn.Module) -> None:
    """What nn-htop and torch-surgeon do: hooks on every leaf, a host sync (.item()) in each."""
    stats: dict[str, float] = {}
    for name, module in model.named_modules():
        if next(module.children(), None) is None:
            module.register_forward_hook(lambda m, i, o, n=name: stats.__setitem__(n, o.detach().abs().mean().item()))
            module.register_full_backward_hook(
                lambda m, gi, go, n=name: stats.__setitem__(n + "'", go[0].norm().item())
            )


class Loop:
    """One variant: its own copy of the model, optimizer and (for watch) watch and viewer."""

    def __init__(self, kind: str, base: nn.Module, name: str) -> None:
        self.kind = kind
        self.model = copy.deepcopy(base)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.watch = None
        self.viewer: subprocess.Popen | None = None
        if kind == "htop":
            htop_style(self.model)
        if kind == "watch":
            self.watch = vgtui.watch(self.model, self.opt, name=name, quiet=True)
            env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
            self.viewer = subprocess.Popen([sys.executable, "-c", VIEWER, name], env=env)
            end = time.monotonic() + 30
            while not self.watch.viewer_stats() and time.monotonic() < end:
                time.sleep(0.05)
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(4096, 16, generator=gen)
        self.y = torch.randint(0, 4, (4096,), generator=gen)
        self.gen = gen

    def steps(self, n: int) -> None:
        user_steps(self, n, BATCH)

    def close(self) -> None:
        close_loop(self)


def user_steps(loop, n: int, batch: int) -> None:
    """`n` steps of a user's loop over `loop`'s model, opt, x, y and gen, logging to loop.watch where it is set."""
    model, opt, w, x, y = loop.model, loop.opt, loop.watch, loop.x, loop.y
    for _ in range(n):
        idx = torch.randint(0, 4096, (batch,), generator=loop.gen)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if w is not None:
            w.log(loss=loss)
        opt.step()


def close_loop(loop) -> None:
    """Close `loop`'s watch and wait for its viewer to see the end."""
    if loop.watch is not None:
        loop.watch.close()
    if loop.viewer is not None:
        loop.viewer.wait(10)


def _timed(calls: list[float], fn: Callable) -> Callable:
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            calls.append(time.perf_counter() - t0)

    return wrapper


def overheads(base: nn.Module, steps: int) -> dict[str, float]:
    """Median microseconds: step hooks without a publish; a publish on the training thread, on the sender thread
    and in the hub process."""
    loop = Loop("watch", base, f"bench-cost-{os.getpid()}")
    hooks, hub = loop.watch.hooks, loop.watch.hub
    pre, post, pub, heavy_steps = [], [], [], []
    timed_pre = _timed(pre, hooks.pre)

    def pre_noting_heavy(*args):
        heavy_steps.append(hooks.heavy_due(hooks.step + 1))  # the cadence may change during the run
        return timed_pre(*args)

    hooks.pre, hooks.post = pre_noting_heavy, _timed(post, hooks.post)
    hooks._publish = _timed(pub, hooks._publish)
    sender: list[float] = []  # the hub process's proxy: pack, pickle and write, on its thread in this process
    hub._send = _timed(sender, hub._send)
    for handle in hooks._handles:
        handle.remove()
    hooks._handles = [loop.opt.register_step_pre_hook(hooks.pre), loop.opt.register_step_post_hook(hooks.post)]
    loop.steps(steps)
    time.sleep(0.3)
    loop.close()
    both = list(zip(pre, post, heavy_steps, strict=False))
    light = [a + b for a, b, h in both if not h]
    heavy = [a + b for i, (a, b, h) in enumerate(both) if h and i > 2]
    return {
        "hooks_light_us": 1e6 * statistics.median(light),
        "hooks_heavy_us": 1e6 * statistics.median(heavy) if heavy else float("nan"),
        "publish_trainer_us": 1e6 * statistics.median(pub),
        "publish_sender_us": 1e6 * statistics.median(sender),
        "publish_hub_us": 1e6 * statistics.median(hub.publish_seconds),
        "publishes": len(pub),
        "heavy_every": hooks.heavy_every,
    }


def run(repeats: int = 5, steps: int = 300) -> dict[str, dict]:
    """`repeats` x 12 rounds of one block per variant; a block is steps // 15 steps (20x64) or steps // 50 (8x512)."""
    torch.set_num_threads(1)
    os.environ.setdefault("VGTUI_DIR", tempfile.mkdtemp(prefix="vgtui-bench-"))
    results: dict[str, dict] = {}
    for label, (depth, width, act) in MODELS.items():
        torch.manual_seed(0)
        base = mlp(depth, width, act)
        n = max(steps // 15, 5) if width < 256 else max(steps // 50, 3)
        loops = {k: Loop(k, base, f"bench-{label}-{os.getpid()}") for k in ("bare", "watch", "htop")}
        cpu: dict[str, list[float]] = {k: [] for k in loops}
        wall: dict[str, list[float]] = {k: [] for k in loops}
        for loop in loops.values():
            loop.steps(3 * n)  # warm up
        order = list(loops)
        for r in range(12 * repeats):
            for kind in order[r % 3 :] + order[: r % 3]:  # interleaved, rotated
                c0, w0 = time.process_time(), time.perf_counter()
                loops[kind].steps(n)
                cpu[kind].append((time.process_time() - c0) / n)
                wall[kind].append((time.perf_counter() - w0) / n)
        for loop in loops.values():
            loop.close()
        row = {f"{k}_ms_wall": 1e3 * statistics.median(wall[k]) for k in loops}
        row |= {f"{k}_ms_cpu": 1e3 * statistics.median(cpu[k]) for k in loops}
        for k in ("watch", "htop"):
            row[f"{k}_ratio_wall"] = statistics.median(b / v for b, v in zip(wall["bare"], wall[k], strict=True))
            row[f"{k}_ratio_cpu"] = statistics.median(b / v for b, v in zip(cpu["bare"], cpu[k], strict=True))
        row["rounds"], row["block_steps"] = 12 * repeats, n
        row |= overheads(base, 300 if width < 256 else 75)
        results[label] = row
        print(f"{label:>6}  bare {row['bare_ms_wall']:.2f} ms/step  watch {row['watch_ratio_wall']:.3f}x steps/s "
              f"(cpu {row['watch_ratio_cpu']:.3f}x)  nn-htop-style {row['htop_ratio_wall']:.3f}x (cpu "
              f"{row['htop_ratio_cpu']:.3f}x)  |  {row['rounds']} rounds of {n}-step blocks  |  hooks "
              f"{row['hooks_light_us']:.0f} us/step, heavy step {row['hooks_heavy_us']:.0f} us every "
              f"{row['heavy_every']}, publish {row['publish_trainer_us']:.0f} us trainer + "
              f"{row['publish_sender_us']:.0f} us sender thread + {row['publish_hub_us']:.0f} us hub "
              "process")  # fmt: skip
    return results
