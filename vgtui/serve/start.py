"""Everything `vgtui serve` checks before it serves: options, the device, the address (bound here).

A problem found here is one line on stderr and exit 2, never a page of blank tabs.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
from collections.abc import Sequence

from vgtui.serve.guard import (
    Guard,
    bad_host,
    choose_token,
    default_max_sessions,
    is_loopback,
    is_wildcard,
    served_names,
    token_problem,
    url_host,
)
from vgtui.serve.server import ServeError, Tab, VgtuiServer

_DEVICE_CHECK = """import sys
from vgtui.engine.trainer import pick_device
try:
    pick_device(sys.argv[1])
except ValueError as exc:
    sys.exit(str(exc))
"""


def check_device(device: str) -> None:
    """--device cuda/mps must exist here; checked in a child process so the server never imports torch."""
    if device in ("auto", "cpu"):
        return
    if device not in ("cuda", "mps"):
        raise ServeError(f"--device {device!r}: allowed: auto, cpu, cuda, mps")
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _DEVICE_CHECK, device], capture_output=True, text=True, timeout=180
        )
    except subprocess.TimeoutExpired:
        raise ServeError(f"--device {device}: checking the device took over 180 s") from None
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise ServeError(lines[-1] if lines else f"--device {device}: the device check failed")


def prepare(
    args: argparse.Namespace,
    tab: Tab | Sequence[str],
    notes: Sequence[str] = (),
    exposure: str = "can run training sessions on this machine",
) -> tuple[VgtuiServer, list[str]]:
    """Check the serve options, bind the address; return the server and the lines to print. `tab`: what each
    tab runs (a Tab, or the `vgtui launch` arguments); `notes`: banner lines about it; `exposure`: what whoever
    has the URL can do (the warning off loopback)."""
    if not 1 <= args.port <= 65535:
        raise ServeError(f"--port {args.port}: allowed: 1 to 65535")
    if problem := bad_host(args.host):
        raise ServeError(problem)
    if args.max_sessions is not None and args.max_sessions < 1:
        raise ServeError(f"--max-sessions {args.max_sessions}: allowed: 1 or more")
    if args.token is not None and (problem := token_problem(args.token)):
        raise ServeError(problem)
    check_device(args.device)

    loopback = is_loopback(args.host)
    token = choose_token(args.host, args.token)
    guard = Guard(served_names(args.host, args.allow_hosts), args.port, token)
    limit = args.max_sessions or default_max_sessions()
    server = VgtuiServer(tab, host=args.host, port=args.port, guard=guard, max_sessions=limit,
                         font_size=getattr(args, "font_size", 16))  # fmt: skip
    server.bind()

    shown = socket.gethostname() if is_wildcard(args.host) else args.host
    url = f"http://{url_host(shown)}:{args.port}/" + (f"?token={token}" if token else "")
    lines = []
    if not loopback:
        lines.append(
            f"vgtui: warning: --host {args.host} exposes the dashboard to the network: whoever has the URL "
            f"below {exposure} (safer: the default 127.0.0.1 and an SSH tunnel)"
        )
    lines += notes
    lines.append(f"vgtui: serving on {url} (Ctrl+C stops)")
    how = "--max-sessions" if args.max_sessions else "min(CPUs, available memory / 500 MB); --max-sessions to change"
    lines.append(f"vgtui: at most {limit} sessions at once ({how}); host names: {', '.join(sorted(guard.names))}")
    return server, lines
