"""Where watched runs listen: a per-user directory of Unix sockets, and the targets `vgtui attach` takes. No torch.

The directory is $VGTUI_DIR, else $XDG_RUNTIME_DIR/vgtui, else /tmp/vgtui-UID; it is created 0700 and refused if
another user owns it or it is open to others (on a shared box /tmp/vgtui-UID could be planted by someone else).
Each run's socket is NAME.sock (0600); a TCP run also leaves NAME.token (0600) there.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
UNIX_PATH_MAX = 104  # sun_path is 108 bytes on Linux, 104 on macOS


class WatchDirError(OSError):
    """The per-user directory is missing, unsafe, or a name/target is not allowed; str() is one line."""


@dataclass(frozen=True)
class Target:
    """Where to attach: a Unix socket path, or a TCP host and port."""

    kind: str  # "unix" | "tcp"
    path: str = ""
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.kind == "unix" else f"tcp://{self.host}:{self.port}"


def watch_dir(create: bool = False) -> Path:
    """The per-user directory of watch sockets (created 0700 when `create`); WatchDirError where it is unsafe."""
    if os.environ.get("VGTUI_DIR"):
        path = Path(os.environ["VGTUI_DIR"])
    else:
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        base = Path(runtime) if runtime and Path(runtime).is_dir() else None
        path = base / "vgtui" if base is not None else Path(tempfile.gettempdir()) / f"vgtui-{os.getuid()}"
    if create:
        try:
            path.mkdir(mode=0o700, parents=False, exist_ok=True)
        except FileNotFoundError:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.exists():
        check_private(path)
    return path


def check_private(path: Path) -> None:
    """Refuse a directory that is not ours or that others may enter; tighten one of ours to 0700."""
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode):
        raise WatchDirError(f"{path}: not a directory")
    if st.st_uid != os.getuid():
        raise WatchDirError(f"{path}: owned by uid {st.st_uid}, not by you: refusing to use it (set VGTUI_DIR)")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise WatchDirError(f"watch name {name!r}: allowed: letters, digits, '.', '_' and '-' (up to 64)")
    return name


def socket_path(name: str, directory: Path | None = None) -> Path:
    path = (directory or watch_dir()) / f"{check_name(name)}.sock"
    if len(os.fsencode(path)) >= UNIX_PATH_MAX:
        raise WatchDirError(f"{path}: too long for a Unix socket ({UNIX_PATH_MAX - 1} bytes at most); set VGTUI_DIR")
    return path


def token_path(name: str, directory: Path | None = None) -> Path:
    return (directory or watch_dir()) / f"{check_name(name)}.token"


def parse_target(text: str) -> Target:
    """NAME | unix:PATH | tcp://HOST:PORT -> Target; WatchDirError with what is allowed."""
    if text.startswith("unix:"):
        if not text[5:]:
            raise WatchDirError("unix: needs a socket path, e.g. unix:/run/user/1000/vgtui/exp3.sock")
        return Target("unix", path=text[5:])
    if text.startswith("tcp://"):
        host, sep, port = text[6:].rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise WatchDirError(f"{text!r}: expected tcp://HOST:PORT, e.g. tcp://127.0.0.1:7007")
        return Target("tcp", host=host, port=int(port))
    return Target("unix", path=str(socket_path(text)))


def listed_sockets(directory: Path | None = None) -> list[Path]:
    """The sockets in the per-user directory, by name (live or left behind by a killed run)."""
    d = directory or watch_dir()
    if not d.is_dir():
        return []
    return sorted(p for p in d.glob("*.sock") if stat.S_ISSOCK(p.lstat().st_mode))
