"""`vgtui launch`: the live dashboard, its session factory (thread or child process), `--record` and `--compare`."""

from __future__ import annotations

import argparse

from vgtui.cli import _fail, chosen_theme, resolve_config
from vgtui.compare_cli import compare_options
from vgtui.config import RunConfig


def cmd_launch(args: argparse.Namespace) -> int:
    config = resolve_config(args.preset, args.sets) if args.preset else None
    theme = chosen_theme(args.theme)
    if args.preset is None and (args.sets or args.compare is not None):
        return _fail("--set and --compare need a preset: vgtui launch PRESET --set section.key=value")
    compare = compare_options(args, config)[0] if config is not None else None
    if args.refresh_hz is not None and not 0.1 <= args.refresh_hz <= 60:
        return _fail(f"--refresh-hz {args.refresh_hz:g}: allowed: a number from 0.1 to 60")
    if args.device not in ("auto", "cpu") or args.worker == "thread":
        from vgtui.engine.trainer import pick_device

        pick_device(args.device)  # fail early, before the screen is taken over
    from vgtui.tui.app import run_dashboard

    if args.worker == "thread":
        from vgtui.engine.compare import CompareSession as worker_class
    else:  # the parent never imports torch: the child does, while the dashboard starts
        from vgtui.engine.process import ProcessSession as worker_class

    from vgtui.runlog import Recordings

    recordings = Recordings(args.record, args.force) if args.record else None

    def factory(cfg: RunConfig):
        ab = {"compare": compare} if compare is not None and cfg is config else {}  # B beside the launched preset
        if recordings is None:
            return worker_class(cfg, device=args.device, **ab)
        return worker_class(cfg, device=args.device, record=recordings.next(), record_force=True, **ab)

    return run_dashboard(config, factory, refresh_hz=args.refresh_hz, theme=theme)
