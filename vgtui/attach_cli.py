"""`vgtui attach`: open the dashboard on a run watched with vgtui.watch, record it headless, or list the runs.
No torch: the dashboard and the recorder read an AttachSession."""

from __future__ import annotations

import argparse
import os

from vgtui.attach import AttachError, AttachSession, list_watches
from vgtui.config import RunConfig
from vgtui.serve.options import READ_ONLY_ENV


def run_attach(args: argparse.Namespace) -> int:
    """The exit code; AttachError (one line for the user) where there is nothing to attach to."""
    if args.list:
        return _print_watches(list_watches())
    target = args.target
    if target is None:
        live = [w for w in list_watches() if not w.get("stale")]
        if len(live) != 1:
            _print_watches(live)
            raise AttachError("which run? name one: vgtui attach NAME" if live else "no watched run is running")
        target = live[0]["name"]
    if args.refresh_hz is not None and not 0.1 <= args.refresh_hz <= 60:
        raise AttachError(f"--refresh-hz {args.refresh_hz:g}: allowed: a number from 0.1 to 60")
    token = os.environ.get("VGTUI_TOKEN")
    if args.token_file:
        token = open(args.token_file, encoding="utf-8").read().strip()  # noqa: SIM115
    if args.out:  # headless: the whole run the viewer can see, one step line per step (vgtui.attach_record)
        from vgtui.attach_record import RecordingSession, record

        return record(RecordingSession(target, token=token, read_only=True), args.out)
    session = _session(target, token, args.read_only)
    session.start()
    from vgtui.tui.app import run_dashboard
    from vgtui.watchlog import user_config

    config = user_config(str(session.hello.get("name", target)), session.latest(), session.hello.get("heavy_every", 0))
    sessions = [session]

    def factory(cfg: RunConfig) -> AttachSession:
        """The attached run; a fresh connection to it where the dashboard stopped the last one."""
        if sessions[-1].ended.is_set() or sessions[-1]._stop.is_set():
            sessions.append(_session(target, token, args.read_only))
        return sessions[-1]

    return run_dashboard(config, factory, refresh_hz=args.refresh_hz)


def _session(target: str, token: str | None, read_only: bool) -> AttachSession:
    session = AttachSession(target, token=token, read_only=read_only)
    if read_only and os.environ.get(READ_ONLY_ENV):  # a tab of `vgtui serve --attach` without --control
        session.read_only_text = (
            "read-only: this page was served without --control (vgtui serve --attach NAME --control lets the tabs "
            "steer the run)"
        )
    return session


def _print_watches(watches: list[dict]) -> int:
    if not watches:
        print("no watched runs (start one with vgtui.watch(model, optimizer) in your training script)")
    for w in watches:
        if w.get("stale"):
            print(f"{w['name']:<24} (left behind by a run that ended: {w['path']})")
            continue
        print(f"{w['name']:<24} step {w.get('step', 0):>8,}  {w.get('status', '?'):<8} pid {w.get('pid')}  "
              f"{w.get('device', '')}  {w.get('script', '')}")  # fmt: skip
    return 0
