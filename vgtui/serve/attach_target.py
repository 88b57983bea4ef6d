"""`vgtui serve --attach TARGET`: every browser tab runs `vgtui attach TARGET`, read-only unless --control.

Checked before the server starts, each problem one line (exit 2): the options that mean nothing here (a preset,
--set, --device, --theme), the target's spelling (NAME, unix:PATH or tcp://HOST:PORT, as `vgtui attach` takes it),
the token of a TCP run, and whether the run answers now (a 'join' that only asks for its hello, as
`vgtui attach --list` does). The tab's command is an argument list (no shell); the target goes in as the parsed,
checked `Target`, never as an option (it cannot start with '-'), and a TCP token travels in the tab's environment,
not on its command line (which every user of the machine can read in `ps`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import time
from pathlib import Path
from typing import Any

from vgtui.serve.options import READ_ONLY_ENV
from vgtui.serve.server import ServeError, Tab
from vgtui.watchdir import NAME_RE, Target, WatchDirError, listed_sockets, parse_target
from vgtui.wire import OUTBOUND_MAX, FrameReader, WireError, decode, encode

PROBE_TIMEOUT_S = 5.0
MAX_TARGET = 1024  # characters in --attach
MAX_TOKEN = 512
LIST_HINT = "vgtui attach --list shows the running ones"


def attach_tab(args: argparse.Namespace) -> tuple[Tab, list[str]]:
    """The Tab each browser session runs for --attach, and the banner lines; ServeError (one line) on a problem."""
    text = args.attach
    _check_options(args)
    target = _parse(text)
    token = _token(args, target)
    hello = probe(target, token, text)
    name = str(hello.get("name", ""))
    name = name if NAME_RE.match(name) else "the watched run"
    cli = [str(target)]
    env = {"VGTUI_TOKEN": token} if token else {}
    if not args.control:
        cli.append("--read-only")
        env[READ_ONLY_ENV] = "1"
    if args.refresh_hz is not None:
        cli += ["--refresh-hz", str(args.refresh_hz)]
    tab = Tab("attach", tuple(cli), env, title=f"vgtui: {name}", each="shows the watched run")
    how = (
        "and may steer it (--control: the last command wins)"
        if args.control
        else "read-only (--control lets the tabs steer it)"
    )
    step, status, pid = hello.get("step", 0), hello.get("status", "?"), hello.get("pid", "?")
    return tab, [f"vgtui: each tab shows the watched run {name} (step {step}, {status}, pid {pid}) {how}"]


def exposure(args: argparse.Namespace) -> str:
    """What a stranger with the URL could do (the warning off loopback)."""
    return "can watch and steer the watched run" if args.control else "can watch the watched run"


def _check_options(args: argparse.Namespace) -> None:
    if args.preset:
        raise ServeError(f"--attach shows a watched run, not a preset: give either a preset ({args.preset}) or "
                         "--attach TARGET")  # fmt: skip
    if args.sets:
        raise ServeError("--set changes a preset; --attach shows a watched run as its script trains it")
    if args.device != "auto":
        raise ServeError(f"--device {args.device}: with --attach the watched run trains where its script put it")
    if args.theme:
        raise ServeError("--theme works with presets; vgtui attach draws in the default theme")
    if args.refresh_hz is not None and not 0.1 <= args.refresh_hz <= 60:
        raise ServeError(f"--refresh-hz {args.refresh_hz:g}: allowed: a number from 0.1 to 60")
    if not 6 <= args.font_size <= 64:
        raise ServeError(f"--font-size {args.font_size}: allowed: an integer from 6 to 64")


def _parse(text: str) -> Target:
    allowed = f"allowed: NAME ({LIST_HINT}), unix:PATH or tcp://HOST:PORT"
    shown = _show(text)
    if not text or len(text) > MAX_TARGET or not text.isprintable() or text.startswith("-"):
        raise ServeError(f"--attach {shown}: not a target; {allowed}")
    try:
        target = parse_target(text)
    except WatchDirError as exc:  # (its message says what is allowed)
        raise ServeError(f"--attach {shown}: {exc}") from None
    if target.kind == "tcp" and not target.host.replace(".", "").replace(":", "").replace("-", "").isalnum():
        raise ServeError(f"--attach {shown}: the host is not a name or an address; {allowed}")
    return target


def _token(args: argparse.Namespace, target: Target) -> str | None:
    if target.kind != "tcp":
        if args.token_file:
            raise ServeError(f"--token-file is for tcp:// targets; {target} is a Unix socket, which needs none")
        return None
    if args.token_file:
        try:
            token = Path(args.token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a text file"
            raise ServeError(f"--token-file {_show(args.token_file)}: cannot read it: {why}") from None
        where = f"--token-file {_show(args.token_file)}"
    else:
        token = os.environ.get("VGTUI_TOKEN", "").strip()
        where = "$VGTUI_TOKEN"
        if not token:
            raise ServeError(f"--attach {target}: a TCP watch needs its token: --token-file F (vgtui.watch wrote "
                             "NAME.token beside its socket) or $VGTUI_TOKEN")  # fmt: skip
    if not token or len(token) > MAX_TOKEN or not token.isprintable() or " " in token:
        raise ServeError(f"{where}: not a token; allowed: the one line vgtui.watch wrote (up to {MAX_TOKEN} "
                         "characters, no spaces)")  # fmt: skip
    return token


def probe(target: Target, token: str | None, text: str, timeout: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
    """The run's hello (name, pid, step, status), asked for as `vgtui attach --list` does; ServeError if none."""
    shown = _show(text)
    if target.kind == "unix" and not Path(target.path).exists():
        raise ServeError(f"--attach {shown}: {_missing(text)}")
    try:
        if target.kind == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(target.path)
        else:
            sock = socket.create_connection((target.host, target.port), timeout=timeout)
    except OSError as exc:
        unix = target.kind == "unix"
        hint = LIST_HINT if unix else "is the script with vgtui.watch(..., tcp=(HOST, PORT)) running?"
        if isinstance(exc, ConnectionRefusedError):
            why = "not running (its socket was left by a run that ended)" if unix else "nothing listens"
        else:
            why = f"cannot reach it: {exc.strerror or exc}"
        raise ServeError(f"--attach {shown}: {why}; {hint}") from None
    try:
        return _hello(sock, token, timeout, shown)
    finally:
        with contextlib.suppress(OSError):
            sock.close()


def _hello(sock: socket.socket, token: str | None, timeout: float, shown: str) -> dict[str, Any]:
    join: dict[str, Any] = {"t": "join", "list": True, "client": "vgtui serve --attach"}
    if token:
        join["token"] = token
    reader = FrameReader(OUTBOUND_MAX)
    end = time.monotonic() + timeout
    try:
        sock.sendall(encode(join))
        while time.monotonic() < end:
            data = sock.recv(1 << 16)
            if not data:
                break
            for body in reader.feed(data):
                header, _ = decode(body, OUTBOUND_MAX)
                if header.get("t") == "hello":
                    return header
                if header.get("t") == "refused":
                    reason = str(header.get("reason", "refused"))[:200]
                    raise ServeError(f"--attach {shown}: the watched run refused: {reason}")
    except (OSError, WireError) as exc:
        raise ServeError(f"--attach {shown}: no answer from the watched run ({exc})") from None
    raise ServeError(f"--attach {shown}: no answer from the watched run within {timeout:g} s")


def _missing(text: str) -> str:
    """Why a Unix target is not there, naming the runs that are."""
    if text.startswith("unix:"):
        return f"no socket at {_show(text[5:])}; {LIST_HINT}"
    try:
        running = [p.stem for p in listed_sockets()]
    except OSError:
        running = []
    names = ", ".join(running[:8]) + (", ..." if len(running) > 8 else "")
    now = f"watched runs here now: {names}" if running else "no watched run is running for this user"
    return f"no watched run named {text} ({now}); {LIST_HINT}"


def _show(text: str, limit: int = 80) -> str:
    """A value echoed in a message: printable, at most `limit` characters."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
