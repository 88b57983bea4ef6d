"""Who may use `vgtui serve`, and how much. Pure checks with no aiohttp, so they are tested directly.

- Host header: one of the names the server is served at, else 403 (a DNS-rebinding page reaches the
  server under its own name, so its requests carry that name).
- Origin of a WebSocket: `http://NAME:PORT` for one of those names, else 403 (a page on another site
  may open a WebSocket to 127.0.0.1; browsers always send its Origin).
- Token: required off loopback (and wherever --token is given), compared in constant time.
- Sessions: at most `default_max_sessions()` tabs at once unless --max-sessions says otherwise.
- Terminal size: a browser's resize is clamped to MAX_WIDTH x MAX_HEIGHT cells.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import re
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

SESSION_BYTES = 500 * 2**20  # one tab: dashboard + trainer measured at ~350 MB, plus headroom
MAX_WIDTH, MAX_HEIGHT = 500, 200  # cells; a 4000x4000 request took a session to 437 MB and 19.7 MB frames
TOKEN_CHARS = re.compile(r"[A-Za-z0-9._~-]{8,128}")


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 and ::1: reachable only from this machine."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    return host.strip("[]") in ("", "0.0.0.0", "::")


def bad_host(host: str) -> str | None:
    """A message for a host that is plainly not an address (checked before a DNS lookup could stall)."""
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return f"--host {host}: not an IPv4 address (each part 0-255, e.g. 127.0.0.1)"
    return None


def url_host(name: str) -> str:
    """A name as it is written in a URL (IPv6 in brackets)."""
    return f"[{name}]" if ":" in name else name


def served_names(host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The names a browser may use to reach a server bound to `host` (plus --allow-host names)."""
    host = host.strip("[]").lower()
    names = {name.strip("[]").lower() for name in extra}
    if is_wildcard(host):  # every address of this machine: its loopback names, its host name and addresses
        names |= {"localhost", "127.0.0.1", *(("::1",) if host == "::" else ())}
        names |= _machine_names()
    else:
        names.add(host)
        if host == "localhost":  # bound to whichever loopback address it resolved to first
            names |= {"127.0.0.1", "::1"}
        elif is_loopback(host):
            names.add("localhost")
    return frozenset(names)


def _machine_names() -> set[str]:
    names: set[str] = set()
    hostname = socket.gethostname().lower()
    if not hostname:
        return names
    names.add(hostname)
    try:
        infos = socket.getaddrinfo(hostname, None)
    except OSError:
        return names
    names.update(str(info[4][0]).split("%")[0].lower() for info in infos)
    return names


def split_host_header(value: str) -> tuple[str, int | None] | None:
    """'name:port' / '[v6]:port' / 'name' -> (name, port or None); None if malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1 :]
    elif value.count(":") == 1:
        name, _, port = value.partition(":")
        rest = ":" + port
    else:
        name, rest = value, ""
    if not rest:
        return name, None
    if not rest.startswith(":") or not rest[1:].isdigit():
        return None
    return name, int(rest[1:])


def token_problem(token: str) -> str | None:
    if TOKEN_CHARS.fullmatch(token):
        return None
    return "--token: allowed: 8 to 128 URL-safe characters (letters, digits, - _ . ~)"


def choose_token(host: str, given: str | None) -> str | None:
    """--token if given; else a random one off loopback (printed in the URL); none on loopback."""
    if given is not None:
        return given
    return None if is_loopback(host) else secrets.token_urlsafe(18)


@dataclass(frozen=True)
class Refusal:
    """Why a request gets 403: `key` says what to log once (an origin, a host, a peer), `text` the log line."""

    key: str
    text: str
    body: str


@dataclass(frozen=True)
class Guard:
    names: frozenset[str]
    port: int
    token: str | None = None

    def host_ok(self, header: str | None) -> bool:
        parsed = split_host_header(header or "")
        return parsed is not None and parsed[0] in self.names and (parsed[1] or 80) == self.port

    def origin_ok(self, origin: str | None) -> bool:
        if not origin:
            return False
        try:
            parts = urlsplit(origin)
            port = parts.port
        except ValueError:
            return False
        if parts.scheme != "http" or parts.path not in ("", "/") or parts.username or parts.query:
            return False
        return parts.hostname in self.names and (port or 80) == self.port

    def token_ok(self, given: str | None) -> bool:
        if self.token is None:
            return True
        return given is not None and hmac.compare_digest(given.encode("utf-8"), self.token.encode("utf-8"))

    def refuse(
        self, *, host: str | None, origin: str | None, token: str | None, websocket: bool, public: bool, peer: str
    ) -> Refusal | None:
        """None if the request may go on; `public` paths (static files) need no token."""
        if not self.host_ok(host):
            names = ", ".join(sorted(self.names))
            return Refusal(
                f"host {host!r}",
                f"refused a request for Host {host!r}: not a name this server is served at ({names}; "
                "add one with --allow-host)",
                "403: vgtui serve does not answer to this host name.",
            )
        if websocket and not self.origin_ok(origin):
            return Refusal(
                f"origin {origin!r}",
                f"refused a WebSocket from Origin {origin!r}: not this server's address",
                "403: vgtui serve refuses WebSockets from other sites.",
            )
        if not public and not self.token_ok(token):
            return Refusal(
                f"token from {peer}",
                f"refused a request from {peer} without the right token",
                "403: this vgtui serve needs its token: open the URL it printed when it started (…/?token=…).",
            )
        return None


class OnceLog:
    """Log each refusal key once (a hostile client must not fill the log); stop remembering after `limit` keys."""

    def __init__(self, log: logging.Logger, limit: int = 256) -> None:
        self.log = log
        self.limit = limit
        self.seen: set[str] = set()
        self.full = False

    def __call__(self, key: str, text: str) -> None:
        if key in self.seen or self.full:
            return
        if len(self.seen) >= self.limit:
            self.full = True
            self.log.warning("vgtui serve: more refusals than %d kinds; no longer logging new ones", self.limit)
            return
        self.seen.add(key)
        self.log.warning("vgtui serve: %s (403; logged once)", text)


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def available_memory() -> int | None:
    """Bytes the kernel says are available without swapping (MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def default_max_sessions(cpus: int | None = None, available: int | None = None) -> int:
    """max(1, min(CPUs, available memory // 500 MB)): each tab runs a dashboard and a busy trainer
    (~350 MB and about one core), so more tabs than that only slow every tab down."""
    cpus = usable_cpus() if cpus is None else cpus
    available = available_memory() if available is None else available
    by_memory = cpus if available is None else available // SESSION_BYTES
    return max(1, min(cpus, by_memory))


def clamp_size(width: object, height: object) -> tuple[int, int] | None:
    """A terminal size from a browser, clamped to 1..MAX_WIDTH x 1..MAX_HEIGHT; None if not numbers."""
    try:
        w, h = int(width), int(height)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return None
    return min(max(w, 1), MAX_WIDTH), min(max(h, 1), MAX_HEIGHT)
