"""`vgtui present [LESSON] [--check]`: its options and what it runs (kept out of cli.py, which stays thin)."""

from __future__ import annotations

import argparse
import sys

PRESENT_EPILOG = """\
keys: n next step · p step back · 1 2 3 the room's guess · enter press a step's keys (no question) ·
      space pause · every other dashboard key works as in vgtui launch (single step and the preset
      picker: in the command palette, ctrl+p)
examples:
  vgtui present                                  # the shipped workshop (lessons/workshop.toml)
  vgtui present my-lesson.toml --start 4         # from step 4
  vgtui present --check                          # run every step headless, check every answer
  vgtui present --check lessons/workshop.toml --seeds 0-4
  vgtui present --serve --font-size 26           # in a browser on a projector: http://127.0.0.1:8000
"""


def add_present_parser(sub: argparse._SubParsersAction) -> None:
    present = sub.add_parser(
        "present",
        help="run a lesson: the dashboard with narration, questions for the room and measured answers",
        description="Run a lesson: each step loads a preset, shows its narration in a panel under the dashboard, "
        "asks the room its question, presses its keys and shows the measured answer beside the room's guess.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=PRESENT_EPILOG,
    )
    present.add_argument("lesson", nargs="?", help="a lesson .toml file (default: the shipped workshop)")
    present.add_argument("--check", action="store_true",
                         help="no screen: run every step headless and check each question's measured answer is "
                         "the one the lesson states; exit 0 (all as stated) or 1")  # fmt: skip
    present.add_argument("--seeds", default=None, metavar="LIST",
                         help="--check only: the seeds to run each step on, e.g. 0-4 or 0,3 "
                         "(default: each preset's own)")  # fmt: skip
    present.add_argument("--device", default="auto", help="auto (cuda, else mps, else cpu) | cpu | cuda | mps")
    present.add_argument("--start", type=int, default=1, metavar="N", help="begin at step N (default 1)")
    present.add_argument("--refresh-hz", type=float, default=None, help="dashboard redraws per second (default 4)")
    present.add_argument("--theme", default=None, help="dashboard colours: dark, light or a Textual theme name")
    present.add_argument("--worker", choices=("process", "thread"), default="process",
                         help="train in a child process (default) or in a thread")  # fmt: skip
    web = present.add_argument_group("in a web page (vgtui serve's page and guard)")
    web.add_argument("--serve", action="store_true", help="serve the lesson in a web page instead of this terminal")
    web.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    web.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    web.add_argument("--font-size", type=int, default=26,
                     help="the page's font size in pixels, 6-64 (default 26, for a projector)")  # fmt: skip
    web.add_argument("--token", default=None, help="required in the URL; off loopback one is made up and printed")
    web.add_argument("--max-sessions", type=int, default=2, metavar="N", help="browser tabs at once (default 2)")
    web.add_argument("--allow-host", dest="allow_hosts", action="append", default=[], metavar="NAME",
                     help="one more host name the server is reached at (repeatable)")  # fmt: skip


def parse_seeds(text: str | None) -> list[int | None]:
    """'0-4' → [0, 1, 2, 3, 4]; '0,3' → [0, 3]; None → [None] (each preset's own seed)."""
    if text is None:
        return [None]
    seeds: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            seeds += range(int(lo), int(hi) + 1) if hi else [int(lo)]
    except ValueError:
        raise ValueError(f"--seeds {text[:40]!r}: allowed: seeds like 0-4 or 0,3 (whole numbers >= 0)") from None
    if not seeds or len(seeds) > 100 or min(seeds) < 0:
        raise ValueError(f"--seeds {text[:40]!r}: allowed: 1 to 100 seeds, each a whole number >= 0")
    return list(dict.fromkeys(seeds))


def cmd_present(args: argparse.Namespace) -> int:
    from vgtui.lesson import LessonError, default_lesson_path, load_lesson

    try:
        lesson = load_lesson(args.lesson or default_lesson_path())
    except LessonError as exc:
        for line in exc.problems:
            print(f"vgtui: error: {line}", file=sys.stderr)
        return 2
    if args.check:
        from vgtui.present_check import main_check

        return main_check(lesson, parse_seeds(args.seeds), args.device)
    if args.seeds is not None:
        raise ValueError("--seeds goes with --check (the dashboard runs each preset's own seed)")
    if args.serve:
        return _serve(args)
    if not 1 <= args.start <= len(lesson.steps):
        raise ValueError(f"--start {args.start}: allowed: 1 to {len(lesson.steps)} (the lesson's steps)")
    if args.refresh_hz is not None and not 0.1 <= args.refresh_hz <= 60:
        raise ValueError(f"--refresh-hz {args.refresh_hz:g}: allowed: a number from 0.1 to 60")
    from vgtui.cli import chosen_theme

    theme = chosen_theme(args.theme)
    if args.device not in ("auto", "cpu") or args.worker == "thread":
        from vgtui.engine.trainer import pick_device

        pick_device(args.device)  # fail early, before the screen is taken over
    if args.worker == "thread":
        from vgtui.engine.session import Session as worker_class
    else:  # the parent never imports torch: the child does, while the dashboard starts
        from vgtui.engine.process import ProcessSession as worker_class
    from vgtui.tui.present import run_present

    return run_present(lesson, lambda cfg: worker_class(cfg, device=args.device), refresh_hz=args.refresh_hz,
                       theme=theme, start=args.start)  # fmt: skip


def served_args(args: argparse.Namespace, lesson_path: str) -> list[str]:
    """The `vgtui present` arguments each browser tab runs: this lesson, from the same step."""
    parts = [lesson_path, "--start", str(args.start), "--device", args.device]
    if args.refresh_hz is not None:
        parts += ["--refresh-hz", str(args.refresh_hz)]
    if args.theme:
        parts += ["--theme", args.theme]
    return parts


def _serve(args: argparse.Namespace) -> int:
    """`vgtui present --serve`: vgtui serve's server, each tab running this lesson."""
    from pathlib import Path

    from vgtui.cli import chosen_theme
    from vgtui.lesson import default_lesson_path
    from vgtui.serve.server import Tab
    from vgtui.serve.start import prepare

    if not 6 <= args.font_size <= 64:
        raise ValueError(f"--font-size {args.font_size}: allowed: an integer from 6 to 64")
    if args.theme:
        chosen_theme(args.theme)
    path = str(Path(args.lesson or default_lesson_path()).resolve())
    tab = Tab("present", tuple(served_args(args, path)), title="vgtui present", each="trains a model")
    server, banner = prepare(args, tab)
    for line in banner:
        print(line, file=sys.stderr)
    server.serve()
    return 0
