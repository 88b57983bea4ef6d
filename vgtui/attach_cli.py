"""`vgtui attach`: open the dashboard on a run watched with vgtui.watch, record it headless, or list the runs.
No torch: the dashboard and the recorder read an AttachSession."""

from __future__ import annotations

import argparse
import os
import sys

from vgtui.attach import AttachError, AttachSession, list_watches
from vgtui.config import RunConfig


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
    session = AttachSession(target, token=token, read_only=args.read_only or bool(args.out))
    if args.out:
        return _record_attached(session, args.out)
    session.start()
    from vgtui.tui.app import run_dashboard
    from vgtui.watchlog import user_config

    config = user_config(str(session.hello.get("name", target)), session.latest(), session.hello.get("heavy_every", 0))
    sessions = [session]

    def factory(cfg: RunConfig) -> AttachSession:
        """The attached run; a fresh connection to it where the dashboard stopped the last one."""
        if sessions[-1].ended.is_set() or sessions[-1]._stop.is_set():
            sessions.append(AttachSession(target, token=token, read_only=args.read_only))
        return sessions[-1]

    return run_dashboard(config, factory, refresh_hz=args.refresh_hz)


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


def _record_attached(session, out: str) -> int:
    """--out: write the run log headless until the watched run ends (or Ctrl+C)."""
    from vgtui.watchlog import SnapshotLog

    log = None
    try:
        session.open()
        name = str(session.hello.get("name", "watch"))
        log = SnapshotLog(out, name, int(session.hello.get("heavy_every", 0)))
        session.on_snapshot = log.write
        if session._latest is not None:
            log.write(session._latest, len(session.events))
        session.start()
        print(f"vgtui: recording {name} to {out} until the run ends (Ctrl+C stops)", file=sys.stderr)
        while not session.ended.wait(0.5):
            pass
    except KeyboardInterrupt:
        print("vgtui: interrupted: the run log is complete up to the last publish", file=sys.stderr)
        return 130
    finally:
        session.stop()
        if log is not None:
            log.close()
    last = session.latest()
    print(f"vgtui: {log.records} publishes recorded to {out}; the run is {last.status if last else 'gone'}",
          file=sys.stderr)  # fmt: skip
    return 0 if last is not None and last.status == "done" else 1
