"""Find, list and load the preset scenes (presets/*.toml). No torch."""

from __future__ import annotations

from pathlib import Path

from vgtui.config import ConfigError, RunConfig, load_file

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


def resolve(spec: str) -> RunConfig:
    """A preset name ('deep-sigmoid') or a path to a TOML file -> validated RunConfig."""
    path = Path(spec)
    if spec.endswith(".toml") or path.exists() or "/" in spec:
        if not path.exists():
            raise ConfigError(f"{spec}: no such file")
        if path.is_dir():
            raise ConfigError(f"{spec}: is a folder; give a .toml file or a preset name")
        return load_file(path)
    candidate = presets_dir() / f"{spec}.toml"
    if not candidate.exists():
        raise ConfigError(
            f"unknown preset {spec!r}; available: {', '.join(preset_names())} (or a path to a .toml file)"
        )
    return load_file(candidate)
