"""The options of `vgtui serve --attach` (argparse only: the command line builds its parser without importing the
server)."""

from __future__ import annotations

import argparse

READ_ONLY_ENV = "VGTUI_SERVE_READ_ONLY"  # tells a tab's `vgtui attach` why it may not send commands


def add_options(serve: argparse.ArgumentParser) -> None:
    """The --attach options of `vgtui serve`."""
    serve.add_argument(
        "--attach",
        metavar="TARGET",
        default=None,
        help="show a run watched with vgtui.watch instead of a preset: NAME (see vgtui attach --list), unix:PATH "
        "or tcp://HOST:PORT; each tab runs vgtui attach TARGET, read-only unless --control",
    )
    serve.add_argument(
        "--control",
        action="store_true",
        help="with --attach: let the tabs steer the watched run (pause, clipping, learning rate, ...); "
        "without it they only watch",
    )
    serve.add_argument(
        "--token-file",
        metavar="F",
        default=None,
        help="with --attach tcp://...: the run's token file (else $VGTUI_TOKEN)",
    )


def check_unused(args: argparse.Namespace) -> None:
    """--control and --token-file mean something only with --attach."""
    for flag, value in (("--control", args.control), ("--token-file", args.token_file)):
        if value:
            raise ValueError(f"{flag} goes with --attach TARGET (vgtui serve --attach NAME {flag} ...)")
