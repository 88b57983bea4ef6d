"""Find, list and load the preset scenes (presets/*.toml). No torch."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from vgtui.config import ConfigError, RunConfig, load_file, load_text

_HERE = Path(__file__).resolve().parent


def presets_dir() -> Path:
    """The shipped presets: inside the installed package, or the repository's top-level folder."""
    for candidate in (_HERE / "presets", _HERE.parent / "presets"):
        if candidate.is_dir() and any(candidate.glob("*.toml")):
            return candidate
    raise ConfigError("no presets folder found: reinstall vgtui (pip install .)")


def preset_names() -> list[str]:
    return sorted(p.stem for p in presets_dir().glob("*.toml"))


def list_presets() -> list[RunConfig]:
    """Every shipped preset, validated, in a teaching order (flagship first)."""
    order = {name: i for i, name in enumerate(TEACHING_ORDER)}
    configs = [load_file(p) for p in presets_dir().glob("*.toml")]
    return sorted(configs, key=lambda c: (order.get(c.name, len(order)), c.name))


TEACHING_ORDER = (
    "deep-sigmoid",
    "tanh-xavier",
    "relu-he",
    "dying-relu",
    "batchnorm",
    "resnet-skip",
    "shallow-vs-deep",
    "exploding",
    "rnn-long",
)


MAX_NAME = 255  # characters in a preset name, and bytes in one part of a path (what file systems allow)
MAX_PATH = 1024  # characters in a path to a preset file
MAX_BYTES = 1 << 20  # a preset file is a few hundred bytes; 1 MB is far more than any scene needs


def _shown(text: str, limit: int = 80) -> str:
    """A name or path for a message: in full up to `limit` characters, else its start and end around '…'."""
    return text if len(text) <= limit else text[: limit // 3] + "…" + text[-(limit - limit // 3 - 1) :]


def resolve(spec: str) -> RunConfig:
    """A preset name ('deep-sigmoid') or a path to a TOML file -> validated RunConfig."""
    allowed = "a preset name (vgtui presets) or a path to a .toml file"
    if "\0" in spec or not spec.strip():
        raise ConfigError(f"preset {_shown(repr(spec))}: not a name or a path; allowed: {allowed}")
    is_path = spec.endswith(".toml") or "/" in spec or os.sep in spec
    longest = max(len(os.fsencode(part)) for part in Path(spec).parts) if spec else 0
    if len(spec) > (MAX_PATH if is_path else MAX_NAME) or longest > MAX_NAME:
        what = "the path" if is_path else "the name"
        raise ConfigError(f"preset {_shown(spec)}: {what} is {len(spec):,} characters long; allowed: a name up to "
                          f"{MAX_NAME} characters, a path up to {MAX_PATH} (each part up to {MAX_NAME})")  # fmt: skip
    path = Path(spec)
    if is_path or path.exists():
        return load_preset_file(path)
    candidate = presets_dir() / f"{spec}.toml"
    if not candidate.exists():
        raise ConfigError(f"unknown preset {_shown(repr(spec))}; available: {', '.join(preset_names())} "
                          f"(or a path to a .toml file)")  # fmt: skip
    return load_file(candidate)


def load_preset_file(path: Path) -> RunConfig:
    """A preset file given by the user: a regular file up to MAX_BYTES (a pipe, /dev/zero or a folder is refused
    without being read), then validated like the shipped ones."""
    shown = _shown(str(path))
    text = read_small_text(path, "presets")
    return load_text(text, shown, path.stem)


def read_small_text(path: Path, what: str = "presets") -> str:
    """The UTF-8 text of a regular file of at most MAX_BYTES; ConfigError (one line) for anything else: a pipe,
    a device or a folder is refused without being read. `what` names the files in the message ("lessons")."""
    shown = _shown(str(path))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a pipe opens at once instead of waiting
    except FileNotFoundError:
        raise ConfigError(f"{shown}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read: {exc.strerror or exc}") from None
    st = os.fstat(fd)
    alt = " or a preset name" if what == "presets" else ""
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ConfigError(f"{shown}: is a folder; give a .toml file{alt}")
        raise ConfigError(f"{shown}: not a regular file (a pipe or a device); allowed: a .toml file{alt}")
    with os.fdopen(fd, "rb") as fh:
        try:
            data = fh.read(MAX_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"{shown}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES or st.st_size > MAX_BYTES:
        kind = "a preset file" if what == "presets" else "a lesson file"
        raise ConfigError(f"{shown}: {max(len(data), st.st_size):,} bytes; allowed: {kind} up to 1 MB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}: not valid UTF-8 (byte {exc.start}); {what} must be UTF-8 TOML") from None
