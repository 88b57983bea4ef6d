"""Command line: `vgtui launch | run | replay | serve | plot | presets | attach | present`. Thin: parse, build the
config, call the engine or the dashboard."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

from vgtui import __version__
from vgtui.compare_cli import add_compare_args, compare_options
from vgtui.config import ConfigError, RunConfig, apply_sets
from vgtui.contract import Toggle
from vgtui.present_cli import add_present_parser, cmd_present
from vgtui.printed import CHARTS

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad options as one line and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"vgtui: error: {message} (see '{self.prog} --help')\n")


MAX_OPTION = 255  # characters in one --toggle


def _clip(text: str, limit: int = 80) -> str:
    """A value echoed in a message: its first `limit` characters, then '…'."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


THEME_HELP = "dashboard colours: dark, light or a Textual theme name (remembered for the next runs)"


def chosen_theme(requested: str | None) -> str | None:
    from vgtui.settings import chosen_theme as choose

    return choose(requested)


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
        "  vgtui launch rnn-long --refresh-hz 2\n  vgtui launch deep-sigmoid --compare activation=leaky_relu,init=he",
    )
    launch.add_argument("preset", nargs="?", help="preset name or path to a .toml file (default: the picker)")
    launch.add_argument("--refresh-hz", type=float, default=None, help="dashboard redraws per second (default 4)")
    launch.add_argument(
        "--record",
        default=None,
        metavar="FILE.jsonl",
        help="write the run log (same format as vgtui run --out), toggles and diagnoses included; another preset "
        "picked later records to FILE-2.jsonl, FILE-3.jsonl...",
    )
    launch.add_argument("--force", action="store_true", help="overwrite the --record file if it exists")
    launch.add_argument("--theme", default=None, help=THEME_HELP)
    launch.add_argument(
        "--worker",
        choices=("process", "thread"),
        default="process",
        help="train in a child process (default: drawing never slows training) or in a thread",
    )
    add_compare_args(launch, fork_at=False)

    run = sub.add_parser(
        "run",
        parents=[common],
        help="train headless and write a JSON Lines run log",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  vgtui run deep-sigmoid --steps 600 --out sig.jsonl\n"
        "  vgtui run deep-sigmoid --toggle 300:activation=leaky_relu --toggle 300:init=he\n"
        "  vgtui run exploding --set train.clip=1.0",
    )
    run.epilog += '\n  vgtui run deep-sigmoid --compare "activation=leaky_relu,init=he" --out ab.jsonl'
    run.add_argument("preset", help="preset name or path to a .toml file")
    run.add_argument("--steps", type=int, default=None, help="number of steps (default: the preset's train.steps)")
    run.add_argument("--seed", type=int, default=None, help="random seed (default: the preset's train.seed)")
    run.add_argument("--toggle", dest="toggles", action="append", default=[], metavar="STEP:NAME=VALUE",
                     help="apply a toggle at a step, e.g. 200:activation=relu, or 200:reset (repeatable); "
                          "a diverged run takes the next scheduled group at once")  # fmt: skip
    run.add_argument("--out", default=None, metavar="FILE.jsonl",
                     help="write the run log here (an existing file is refused unless --force)")  # fmt: skip
    run.add_argument("--force", action="store_true", help="overwrite the --out file if it exists")
    run.add_argument("--quiet", action="store_true", help="no progress bar and no charts, only the summary")
    run.add_argument("--plot", action="store_true",
                     help="print the closing charts even when stdout is not a terminal (a CI log)")  # fmt: skip
    add_compare_args(run)

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
    replay.add_argument("--theme", default=None, help=THEME_HELP)

    serve = sub.add_parser(
        "serve",
        parents=[common],
        help="serve the dashboard in a web page (for projectors); loopback only unless --host says otherwise",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  vgtui serve deep-sigmoid              # then open http://127.0.0.1:8000\n"
        "  ssh -L 8000:127.0.0.1:8000 gpu-box  # on your laptop, to reach a remote vgtui serve\n"
        "  vgtui serve deep-sigmoid --host 0.0.0.0 --max-sessions 4   # prints a URL with a token\n"
        "  vgtui serve --attach exp3             # a run watched with vgtui.watch, read-only (--control steers)",
    )
    serve.add_argument("preset", nargs="?", help="preset name or .toml path (default: the picker)")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only; else a token)"
    )
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--refresh-hz", type=float, default=None, help="dashboard redraws per second (default 4)")
    serve.add_argument("--theme", default=None, help=THEME_HELP)
    serve.add_argument("--font-size", type=int, default=16,
                       help="the page's font size in pixels, 6-64 (default 16; a projector wants ~26); "
                       "?fontsize=N in the address overrides it")  # fmt: skip
    serve.add_argument(
        "--token", default=None, help="required in the URL (?token=...); off loopback one is made up and printed"
    )
    serve.add_argument(
        "--max-sessions",
        type=int,
        default=None,
        metavar="N",
        help="browser sessions at once (default: min(CPUs, available memory / 500 MB), at least 1)",
    )
    serve.add_argument(
        "--allow-host",
        dest="allow_hosts",
        action="append",
        default=[],
        metavar="NAME",
        help="one more host name the server is reached at, e.g. gpu-box.lan with --host 0.0.0.0 (repeatable)",
    )
    from vgtui.serve.options import add_options  # --attach, --control, --token-file

    add_options(serve)

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
    add_present_parser(sub)
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


def cmd_run(args: argparse.Namespace) -> int:
    from vgtui.engine.toggles import ToggleError, normalize, parse_scheduled

    if args.steps is not None and args.steps < 1:
        return _fail(f"--steps {args.steps}: allowed: an integer >= 1")
    for text in args.toggles:  # (the toggle parser echoes what it reads: keep a pasted megabyte off the screen)
        if len(text) > MAX_OPTION:
            return _fail(f"--toggle {_clip(text)} is {len(text):,} characters long; allowed: STEP:name=value, "
                         f"up to {MAX_OPTION}")  # fmt: skip
    config = resolve_config(args.preset, args.sets, args.steps, args.seed)
    schedule = [parse_scheduled(t) for t in args.toggles]
    for step, toggle in schedule:
        if not isinstance(toggle, Toggle):
            continue
        try:
            normalize(toggle, config.model.kind)
        except ToggleError as exc:
            raise ToggleError(f"--toggle {step}:{toggle.name}={_clip(toggle.value)}: {exc}") from None
    if args.force and not args.out:
        return _fail("--force overwrites the --out file; give --out FILE.jsonl too")
    compare, fork_at = compare_options(args, config)
    writer = None
    if args.out is not None:
        from vgtui.runlog import RunLogWriter

        writer = RunLogWriter(args.out, force=args.force)  # a bad path is refused now, before torch loads
    try:
        from vgtui.headless import run_headless
    except BaseException:
        if writer is not None:
            writer.discard()
        raise
    return run_headless(config, schedule, device=args.device, out=writer, quiet=args.quiet,
                        plot=True if args.plot else None, compare=compare, fork_at=fork_at)  # fmt: skip


def serve_launch_args(args: argparse.Namespace) -> list[str]:
    """The `vgtui launch` arguments each browser session runs, checked now as launch would check them."""
    if args.sets and not args.preset:
        raise ValueError("--set needs a preset: vgtui serve PRESET --set section.key=value")
    if args.refresh_hz is not None and not 0.1 <= args.refresh_hz <= 60:
        raise ValueError(f"--refresh-hz {args.refresh_hz:g}: allowed: a number from 0.1 to 60")
    parts = []
    if args.preset:
        resolve_config(args.preset, args.sets)  # a bad preset or --set fails here, not in every browser tab
        parts.append(args.preset)
    for assignment in args.sets:
        parts += ["--set", assignment]
    parts += ["--device", args.device]
    if args.refresh_hz is not None:
        parts += ["--refresh-hz", str(args.refresh_hz)]
    if args.theme:
        chosen_theme(args.theme)  # checked (and remembered) now
        parts += ["--theme", args.theme]
    if not 6 <= args.font_size <= 64:
        raise ValueError(f"--font-size {args.font_size}: allowed: an integer from 6 to 64")
    return parts


def serve_command(args: argparse.Namespace) -> str:
    """The `vgtui launch ...` command line each browser connection runs (checked before serving)."""
    import shlex

    return shlex.join([sys.executable, "-m", "vgtui.cli", "launch", *serve_launch_args(args)])


def cmd_serve(args: argparse.Namespace) -> int:
    from vgtui.serve.start import prepare

    if args.attach is not None:  # each tab: `vgtui attach TARGET`; the target must answer now
        from vgtui.serve.attach_target import attach_tab, exposure

        tab, notes = attach_tab(args)
        server, banner = prepare(args, tab, notes, exposure(args))
    else:
        from vgtui.serve.options import check_unused

        check_unused(args)
        server, banner = prepare(args, serve_launch_args(args))  # options, device, address: exit 2 on a problem
    for line in banner:
        print(line, file=sys.stderr)
    server.serve()
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from vgtui.replay import SPEEDS, ReplaySession

    if not SPEEDS[0] <= args.speed <= SPEEDS[1]:  # (NaN fails every comparison)
        return _fail(f"--speed {args.speed:g}: allowed: a number from {SPEEDS[0]:g} to {SPEEDS[1]:g}")
    if args.refresh_hz is not None and not 0.1 <= args.refresh_hz <= 60:
        return _fail(f"--refresh-hz {args.refresh_hz:g}: allowed: a number from 0.1 to 60")
    theme = chosen_theme(args.theme)
    session = ReplaySession(args.log, speed=args.speed)  # reads and checks the log before the screen changes
    from vgtui.tui.app import run_dashboard

    return run_dashboard(session.config, lambda cfg: session, refresh_hz=args.refresh_hz, theme=theme)


def cmd_attach(args: argparse.Namespace) -> int:
    """`vgtui attach`: the dashboard, a headless recording or the list of this user's watched runs."""
    from vgtui.attach import AttachError
    from vgtui.attach_cli import run_attach

    try:
        return run_attach(args)
    except AttachError as exc:
        return _fail(str(exc))


def main(argv: Sequence[str] | None = None) -> int:
    code = _main(argv)
    if code > 128:  # ended by a signal (128 + N): the terminal may be gone, as when an SSH connection drops
        _keep_signal_code(code)
    return code


def _keep_signal_code(code: int) -> None:
    """Where the terminal is gone, Python's own last flush of stdout fails and turns the exit code into 120: flush
    now, and if that fails, leave with 128 + N (everything else is done: files are closed, processes stopped)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            os._exit(code)


def _main(argv: Sequence[str] | None) -> int:
    if hasattr(signal, "SIGXFSZ"):  # past `ulimit -f` a write fails with EFBIG instead of killing the process
        with contextlib.suppress(ValueError):  # (signal handlers can only be set from the main thread)
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command in ("presets", "plot"):
            from vgtui.cli_print import cmd_plot, cmd_presets

            return cmd_presets(args.name) if args.command == "presets" else cmd_plot(args)
        if args.command == "run":
            return cmd_run(args)
        if args.command == "launch":
            from vgtui.launch_cli import cmd_launch

            return cmd_launch(args)
        if args.command == "replay":
            return cmd_replay(args)
        if args.command == "serve":
            return cmd_serve(args)
        if args.command == "attach":
            return cmd_attach(args)
        if args.command == "present":
            return cmd_present(args)
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
