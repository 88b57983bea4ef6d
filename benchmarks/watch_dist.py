"""`python -m benchmarks watch --world 2`: a DDP training loop bare and under vgtui.watch (default cadence, one viewer
attached to rank 0), on `world` ranks launched by torchrun (gloo, CPU, one torch thread per rank). Both variants
live in the same processes and are stepped in many short blocks, interleaved in rotating order (as
benchmarks.watch_speed: the box's own drift cancels); per round the bare block's time over the watched one's, from
wall time (the ranks move in lockstep: steps/s) and rank 0's process CPU time; the medians over the rounds. Also
an FSDP2 loop bare and watched: under FSDP the every-step path adds one all_reduce of (layers + 3) floats.
"""

from __future__ import annotations

import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH = 64  # per rank


def run(world: int, repeats: int, steps: int) -> dict:
    """Launch the torchrun job and return rank 0's results (printed there too)."""
    with tempfile.TemporaryDirectory(prefix="vgtui-bench-dist-") as tmp:
        out = Path(tmp) / "result.json"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "VGTUI_DIR": str(Path(tmp) / "w")}
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={world}",
               str(Path(__file__).resolve()), str(out), str(repeats), str(steps)]  # fmt: skip
        subprocess.run(cmd, check=True, env=env, cwd=ROOT)
        return json.loads(out.read_text())


def _worker(out: str, repeats: int, steps: int) -> None:
    import torch
    import torch.distributed as dist
    from torch import nn

    import vgtui
    from benchmarks.watch_speed import MODELS, VIEWER, close_loop, mlp, user_steps

    torch.set_num_threads(1)
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=120))
    rank, world = dist.get_rank(), dist.get_world_size()

    def wrapped(kind: str, base: nn.Module) -> nn.Module:
        import copy

        model = copy.deepcopy(base)
        if kind == "DDP":
            return nn.parallel.DistributedDataParallel(model)
        from torch.distributed.fsdp import fully_shard

        for layer in model:
            if isinstance(layer, nn.Linear):
                fully_shard(layer)
        return fully_shard(model)

    class Loop:
        def __init__(self, model: nn.Module, watched: str | None) -> None:
            self.model = model
            self.opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            self.watch = vgtui.watch(model, self.opt, name=watched, quiet=True) if watched else None
            self.viewer = None
            if self.watch is not None and rank == 0:
                self.viewer = subprocess.Popen([sys.executable, "-c", VIEWER, watched])
                end = time.monotonic() + 30
                while not self.watch.viewer_stats() and time.monotonic() < end:
                    time.sleep(0.05)
            dist.barrier()
            self.gen = torch.Generator().manual_seed(rank)
            self.x = torch.randn(4096, 16, generator=self.gen)
            self.y = torch.randint(0, 4, (4096,), generator=self.gen)

        def steps(self, n: int) -> None:
            user_steps(self, n, BATCH)

        def close(self) -> None:
            close_loop(self)

    def measure(wrapper: str, label: str) -> dict:
        depth, width, act = MODELS[label]
        torch.manual_seed(0)
        base = mlp(depth, width, act)
        n = max(steps // 15, 5) if width < 256 else max(steps // 50, 3)
        n = n if wrapper == "DDP" else max(n // 4, 3)  # FSDP2 on gloo/CPU: ~100 ms a step on this box
        loops = {
            "bare": Loop(wrapped(wrapper, base), None),
            "watch": Loop(wrapped(wrapper, base), f"bench-{wrapper}-{label}-{os.getpid()}"),
        }
        cpu: dict[str, list[float]] = {k: [] for k in loops}
        wall: dict[str, list[float]] = {k: [] for k in loops}
        for loop in loops.values():
            loop.steps(20)  # warm up
        order = list(loops)
        for r in range(12 * repeats):
            for kind in order[r % 2 :] + order[: r % 2]:  # interleaved, rotated
                dist.barrier()
                c0, w0 = time.process_time(), time.perf_counter()
                loops[kind].steps(n)
                cpu[kind].append((time.process_time() - c0) / n)
                wall[kind].append((time.perf_counter() - w0) / n)
        sync = loops["watch"].watch.dist
        watched_s = sum(wall["watch"]) * n
        for loop in loops.values():
            loop.close()
        each = [b / w for b, w in zip(wall["bare"], wall["watch"], strict=True)]
        return {
            "bare_steps_per_s": 1 / statistics.median(wall["bare"]),
            "watch_steps_per_s": 1 / statistics.median(wall["watch"]),
            "ratio_wall": statistics.median(each),
            "ratio_cpu": statistics.median(b / w for b, w in zip(cpu["bare"], cpu["watch"], strict=True)),
            "ratio_wall_quartiles": statistics.quantiles(each, n=4),
            "rounds": len(each),
            "collectives": sync.collectives,
            "collective_us": 1e6 * sync.collective_s / max(sync.collectives, 1),
            "collective_share": sync.collective_s / watched_s,
        }

    results: dict[str, dict] = {}
    for wrapper, label in (("DDP", "20x64"), ("DDP", "8x512"), ("FSDP2", "20x64")):
        row = results[f"{wrapper} {label}"] = measure(wrapper, label)
        if rank == 0:
            print(f"{wrapper:>5} {label:>6} x{world} ranks  bare {row['bare_steps_per_s']:7.1f} steps/s  "
                  f"watch {row['watch_steps_per_s']:7.1f} steps/s  ratio {row['ratio_wall']:.3f}x wall "
                  f"({row['ratio_cpu']:.3f}x cpu, rank 0's process); {row['rounds']} rounds, quartiles "
                  f"{' '.join(f'{r:.3f}' for r in row['ratio_wall_quartiles'])}; vgtui's collectives: "
                  f"{row['collectives']} of {row['collective_us']:.0f} us, {100 * row['collective_share']:.2f} % of "
                  "the watched loop's time", flush=True)  # fmt: skip
    if rank == 0:
        Path(out).write_text(json.dumps(results, indent=2))
    dist.destroy_process_group()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    _worker(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
