"""python -m benchmarks [engine|memory|dashboard|watch|all] [--world N] — prints a table of medians and ratios."""

from __future__ import annotations

import argparse
import json
import platform

import torch


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("which", nargs="?", default="all", choices=["engine", "memory", "dashboard", "watch", "all"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--memory-steps", type=int, default=1_000_000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--world", type=int, default=1, help="watch: ranks of a torchrun job (DDP and FSDP2, gloo)")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, device {args.device}")  # fmt: skip
    results: dict[str, object] = {}
    if args.which in ("engine", "all"):
        from benchmarks import engine_speed

        results["engine"] = engine_speed.run(args.repeats, args.steps, args.device)
    if args.which in ("memory", "all"):
        from benchmarks import memory

        results["memory"] = memory.run(args.memory_steps)
    if args.which in ("dashboard", "all"):
        from benchmarks import dashboard

        results["dashboard"] = dashboard.run(args.repeats)
    if args.which in ("watch", "all"):
        if args.world > 1:
            from benchmarks import watch_dist

            results["watch_dist"] = watch_dist.run(args.world, args.repeats, args.steps)
        else:
            from benchmarks import watch_speed

            results["watch"] = watch_speed.run(args.repeats, args.steps)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
