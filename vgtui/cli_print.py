"""The commands that print to the terminal: `vgtui presets [NAME]` and `vgtui plot FILE.jsonl`. No torch."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap

from vgtui.cli import _fail
from vgtui.contract import Toggle
from vgtui.printed import CHARTS


def cmd_presets(name: str | None = None) -> int:
    from rich.console import Console
    from rich.text import Text

    from vgtui.engine.toggles import parse_remedy
    from vgtui.presets import list_presets, resolve

    console = Console()
    for cfg in [resolve(name)] if name else list_presets():
        m = cfg.model
        model = f"RNN, {m.cell} cell" if m.kind == "rnn" else f"MLP {m.depth}x{m.width} {m.activation}, {m.init} init"
        console.print(Text.assemble((cfg.name, "bold cyan"), "  ", (cfg.title, "bold"), f"  ({model})"))
        width = max(40, min(console.width, 100))
        console.print(textwrap.fill(cfg.description, width, initial_indent="  ", subsequent_indent="  "))
        for remedy in cfg.suggest:
            toggles = " ".join(f"--toggle 300:{c.name}={c.value}" if isinstance(c, Toggle) else "--toggle 300:reset"
                               for c in parse_remedy(remedy))  # fmt: skip
            console.print(Text.assemble("  try: ", (remedy, "cyan"), "   vgtui run: ", (toggles, "dim")))
        console.print()
    if not name:
        console.print("vgtui launch NAME opens one in the dashboard; vgtui presets NAME shows one.")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    what = [w.strip() for w in args.what.split(",") if w.strip()]
    bad = [w for w in what if w not in CHARTS]
    if bad or not what:
        return _fail(f"--what {args.what[:80]!r}: allowed: a comma-separated list of {', '.join(CHARTS)}")
    for name, value, lo, hi in (("--width", args.width, 40, 1000), ("--height", args.height, 8, 500)):
        if value is not None and not lo <= value <= hi:
            return _fail(f"{name} {value}: allowed: an integer from {lo} to {hi}")
    from vgtui.logreader import iter_records
    from vgtui.printed import curves_from_records, render, terminal_size

    curves = curves_from_records(iter_records(args.log))  # streamed: a log of any length in a bounded History
    if len(curves.steps) == 0:
        return _fail(f"{args.log}: the run log has no step records to plot")
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
    print(render(curves, what, *terminal_size(args.width, args.height), color=color))
    return 0
