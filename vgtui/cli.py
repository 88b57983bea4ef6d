"""Command line: `vgtui launch | run | replay | serve | plot | presets`. Thin: parse, build the config, call the
engine or the dashboard."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Sequence
from typing import NoReturn

from vgtui import __version__
from vgtui.config import ConfigError, RunConfig, apply_sets
from vgtui.contract import Toggle
from vgtui.printed import CHARTS

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad options as one line and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"vgtui: error: {message} (see '{self.prog} --help')\n")


def _fail(message: str) -> int:
    one_line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
    print(f"vgtui: error: {one_line}", file=sys.stderr)
    return EXIT_BAD_INPUT


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vgtui",
        description="See the vanishing gradient problem, and fix it live.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  vgtui launch deep-sigmoid\n"
        "  vgtui run deep-sigmoid --toggle 300:activation=relu --out run.jsonl\n  vgtui presets",
    )
    parser.add_argument("--version", action="version", version=f"vgtui {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    common = _Parser(add_help=False)
    common.add_argument("--set", dest="sets", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a preset value, e.g. --set model.depth=30 (repeatable)")  # fmt: skip
    common.add_argument("--device", default="auto", help="auto (cuda, else mps, else cpu) | cpu | cuda | mps")

    launch = sub.add_parser(
        "launch",
        parents=[common],
        help="open the live dashboard",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  vgtui launch                 # pick a preset\n  vgtui launch deep-sigmoid\n"
        "  vgtui launch rnn-long --refresh-hz 2",
    )
    launch.add_argument("preset", nargs="?", help="preset name or path to a .toml file (default: the picker)")
    launch.add_argument("--refresh-hz", type=float, default=None, help="dashboard redraws per second (default 4)")
    launch.add_argument(
        "--record",
        default=None,
        metavar="FILE.jsonl",
        help="write the run log (same format as vgtui run --out), toggles and diagnoses included",
    )
    launch.add_argument(
        "--worker",
        choices=("process", "thread"),
        default="process",
        help="train in a child process (default: drawing never slows training) or in a thread",
    )

    run = sub.add_parser(
        "run",
        parents=[common],
        help="train headless and write a JSON Lines run log",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  vgtui run deep-sigmoid --steps 600 --out sig.jsonl\n"
        "  vgtui run deep-sigmoid --toggle 300:activation=leaky_relu --toggle 300:init=he\n"
        "  vgtui run exploding --set train.clip=1.0",
    )
    run.add_argument("preset", help="preset name or path to a .toml file")
    run.add_argument("--steps", type=int, default=None, help="number of steps (default: the preset's train.steps)")
    run.add_argument("--seed", type=int, default=None, help="random seed (default: the preset's train.seed)")
    run.add_argument("--toggle", dest="toggles", action="append", default=[], metavar="STEP:NAME=VALUE",
                     help="apply a toggle at a step, e.g. 200:activation=relu, or 200:reset (repeatable); "
                          "a diverged run takes the next scheduled group at once")  # fmt: skip
    run.add_argument("--out", default=None, metavar="FILE.jsonl", help="write the run log here")
    run.add_argument("--quiet", action="store_true", help="no progress bar, only the summary")

    replay = sub.add_parser(
        "replay",
        help="play a recorded run log in the dashboard (no training, no torch)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="keys: space play/pause, . and , one step forward/back, t next toggle, > and < speed, r start\n"
        "examples:\n  vgtui replay run.jsonl\n  vgtui replay workshop.jsonl --speed 4",
    )
    replay.add_argument("log", help="a run log from vgtui run --out or vgtui launch --record")
    replay.add_argument("--speed", type=float, default=1.0, help="playback speed, x0.5 .. x8 (default 1)")
    replay.add_argument("--refresh-hz", type=float, default=None, help="dashboard redraws per second (default 4)")

    serve = sub.add_parser(
        "serve",
        parents=[common],
        help="serve the dashboard in a web page (for projectors); loopback only unless --host says otherwise",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  vgtui serve deep-sigmoid              # then open http://127.0.0.1:8000\n"
        "  ssh -L 8000:127.0.0.1:8000 gpu-box  # on your laptop, to reach a remote vgtui serve",
    )
    serve.add_argument("preset", nargs="?", help="preset name or .toml path (default: the picker)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--refresh-hz", type=float, default=None, help="dashboard redraws per second (default 4)")

    plot = sub.add_parser(
        "plot",
        help="print charts of a run log (loss, per-layer gradients, weights, update ratio) to the terminal",
        epilog="examples:\n  vgtui plot run.jsonl\n  vgtui plot run.jsonl --what loss,grad --width 120 --height 20",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plot.add_argument("log", help="a run log written by vgtui run --out, launch --record or attach --out")
    plot.add_argument(
        "--what", default=",".join(CHARTS), help=f"charts, comma-separated (default: all of {','.join(CHARTS)})"
    )
    plot.add_argument("--width", type=int, default=None, help="chart width in columns (default: the terminal's)")
    plot.add_argument("--height", type=int, default=None, help="chart height in rows (default: fits the terminal)")
    plot.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                      help="colours: auto = on a terminal unless NO_COLOR is set")  # fmt: skip

    presets = sub.add_parser(
        "presets",
        help="list the preset scenes with what each shows, or show one",
        epilog="examples:\n  vgtui presets\n  vgtui presets exploding",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    presets.add_argument("name", nargs="?", help="a preset name or .toml path: show it with its suggested remedies")
    _add_attach_parser(sub)
    return parser


def _add_attach_parser(sub: argparse._SubParsersAction) -> None:
    """`vgtui attach`: the dashboard (or a headless recording) of a run watched with vgtui.watch."""
    attach = sub.add_parser(
        "attach",
        help="open the dashboard on your own model's run, watched with vgtui.watch(model, optimizer)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  vgtui attach --list                  # this user's watched runs\n"
        "  vgtui attach exp3\n  vgtui attach exp3 --read-only --out exp3.jsonl\n"
        "  vgtui attach tcp://127.0.0.1:7007 --token-file exp3.token\n"
        "  ssh -L 7007:/run/user/1000/vgtui/exp3.sock gpu-box   # then: vgtui attach unix:...",
    )
    attach.add_argument("target", nargs="?", help="NAME (see --list), unix:PATH or tcp://HOST:PORT")
    attach.add_argument("--read-only", action="store_true", help="watch only: send no commands")
    attach.add_argument("--token-file", metavar="F", help="the token of a TCP watch (else $VGTUI_TOKEN)")
    attach.add_argument("--out", metavar="FILE.jsonl", help="record the run log headless until the run ends")
    attach.add_argument("--list", action="store_true", help="list this user's watched runs and exit")
    attach.add_argument("--refresh-hz", type=float, default=None, help="dashboard redraws per second (default 4)")


def resolve_config(spec: str, sets: list[str], steps: int | None = None, seed: int | None = None) -> RunConfig:
    from vgtui.presets import resolve

    config = resolve(spec)
    extra = list(sets)
    if steps is not None:
        extra.append(f"train.steps={steps}")
    if seed is not None:
        extra.append(f"train.seed={seed}")
    return apply_sets(config, extra)


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


def cmd_run(args: argparse.Namespace) -> int:
    from vgtui.engine.toggles import ToggleError, normalize, parse_scheduled

    if args.steps is not None and args.steps < 1:
        return _fail(f"--steps {args.steps}: allowed: an integer >= 1")
    config = resolve_config(args.preset, args.sets, args.steps, args.seed)
    schedule = [parse_scheduled(t) for t in args.toggles]
    for step, toggle in schedule:
        if not isinstance(toggle, Toggle):
            continue
        try:
            normalize(toggle, config.model.kind)
        except ToggleError as exc:
            raise ToggleError(f"--toggle {step}:{toggle.name}={toggle.value}: {exc}") from None
    from vgtui.headless import run_headless

    return run_headless(config, schedule, device=args.device, out=args.out, quiet=args.quiet)


def cmd_launch(args: argparse.Namespace) -> int:
    config = resolve_config(args.preset, args.sets) if args.preset else None
    if args.preset is None and args.sets:
        return _fail("--set needs a preset: vgtui launch PRESET --set section.key=value")
    if args.refresh_hz is not None and not 0.1 <= args.refresh_hz <= 60:
        return _fail(f"--refresh-hz {args.refresh_hz:g}: allowed: a number from 0.1 to 60")
    if args.device not in ("auto", "cpu") or args.worker == "thread":
        from vgtui.engine.trainer import pick_device

        pick_device(args.device)  # fail early, before the screen is taken over
    from vgtui.tui.app import run_dashboard

    if args.worker == "thread":
        from vgtui.engine.session import Session as worker_class
    else:  # the parent never imports torch: the child does, while the dashboard starts
        from vgtui.engine.process import ProcessSession as worker_class

    def factory(cfg: RunConfig):
        return worker_class(cfg, device=args.device, record=args.record)

    return run_dashboard(config, factory, refresh_hz=args.refresh_hz)


def serve_command(args: argparse.Namespace) -> str:
    """The `vgtui launch ...` command line each browser connection runs (checked before serving)."""
    import shlex

    parts = [sys.executable, "-m", "vgtui.cli", "launch"]
    if args.preset:
        resolve_config(args.preset, args.sets)  # a bad preset fails here, not in every browser tab
        parts.append(args.preset)
    for assignment in args.sets:
        parts += ["--set", assignment]
    parts += ["--device", args.device]
    if args.refresh_hz is not None:
        parts += ["--refresh-hz", str(args.refresh_hz)]
    return shlex.join(parts)


def cmd_serve(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        return _fail(f"--port {args.port}: allowed: 1 to 65535")
    command = serve_command(args)
    from textual_serve.server import Server

    print(f"vgtui: serving on http://{args.host}:{args.port} (Ctrl+C stops)", file=sys.stderr)
    Server(command, host=args.host, port=args.port, title="vgtui").serve()
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    what = [w.strip() for w in args.what.split(",") if w.strip()]
    bad = [w for w in what if w not in CHARTS]
    if bad or not what:
        return _fail(f"--what {args.what[:80]!r}: allowed: a comma-separated list of {', '.join(CHARTS)}")
    for name, value, lo, hi in (("--width", args.width, 40, 1000), ("--height", args.height, 8, 500)):
        if value is not None and not lo <= value <= hi:
            return _fail(f"{name} {value}: allowed: an integer from {lo} to {hi}")
    from vgtui.printed import curves_from_records, render, terminal_size
    from vgtui.runlog import read_runlog

    curves = curves_from_records(read_runlog(args.log))
    if len(curves.steps) == 0:
        return _fail(f"{args.log}: the run log has no step records to plot")
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
    print(render(curves, what, *terminal_size(args.width, args.height), color=color))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from vgtui.replay import SPEEDS, ReplaySession

    if not SPEEDS[0] <= args.speed <= SPEEDS[1]:
        return _fail(f"--speed {args.speed:g}: allowed: a number from {SPEEDS[0]:g} to {SPEEDS[1]:g}")
    session = ReplaySession(args.log, speed=args.speed)  # reads and checks the log before the screen changes
    from vgtui.tui.app import run_dashboard

    return run_dashboard(session.config, lambda cfg: session, refresh_hz=args.refresh_hz)


def cmd_attach(args: argparse.Namespace) -> int:
    """`vgtui attach`: the dashboard, a headless recording or the list of this user's watched runs."""
    from vgtui.attach import AttachError
    from vgtui.attach_cli import run_attach

    try:
        return run_attach(args)
    except AttachError as exc:
        return _fail(str(exc))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "presets":
            return cmd_presets(args.name)
        if args.command == "run":
            return cmd_run(args)
        if args.command == "launch":
            return cmd_launch(args)
        if args.command == "replay":
            return cmd_replay(args)
        if args.command == "serve":
            return cmd_serve(args)
        if args.command == "plot":
            return cmd_plot(args)
        if args.command == "attach":
            return cmd_attach(args)
        parser.print_help()
        return 0
    except (ConfigError, ValueError) as exc:
        return _fail(str(exc))
    except OSError as exc:  # a file that cannot be read or written: which one, and why
        return _fail(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc))
    except KeyboardInterrupt:
        print("vgtui: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
