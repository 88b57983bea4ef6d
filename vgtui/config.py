"""The preset schema: TOML -> validated frozen dataclasses. No torch, no textual.

Every error is a `ConfigError` whose message is one line naming the source, the key, the
value and what is allowed.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from vgtui.contract import ACTIVATIONS, CELLS, INITS, ModelState

TASKS_MLP = ("spirals", "moons", "checkerboard", "circles")
TASKS_RNN = ("first-bit", "adding")
OPTIMIZERS = ("sgd", "adam")


MAX_PARAMS = 20_000_000  # weights of the hidden blocks
MAX_ACTIVATIONS = 50_000_000  # floats kept for one backward pass


class ConfigError(ValueError):
    """A preset, --set or --toggle value that is not allowed. str() is one line for the user."""


@dataclass(frozen=True)
class ModelConfig:
    kind: str = "mlp"
    depth: int = 8
    width: int = 32
    activation: str = "sigmoid"
    leaky_slope: float = 0.01
    init: str = "default"
    init_gain: float = 1.0
    batchnorm: bool = False
    skip: bool = False
    cell: str = "rnn"
    hidden: int = 32


@dataclass(frozen=True)
class DataConfig:
    task: str = "spirals"
    samples: int = 2048
    noise: float = 0.1
    seq_len: int = 50
    classes: int = 2


@dataclass(frozen=True)
class TrainConfig:
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    batch_size: int = 128
    clip: float | None = None
    steps: int = 1000
    seed: int = 0
    log_every: int = 10
    hist_layer: int = 1


@dataclass(frozen=True)
class RunConfig:
    """A whole scene: what a preset file holds after validation."""

    name: str = "custom"
    title: str = "Custom run"
    description: str = ""
    suggest: tuple[str, ...] = ()
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    source: str = "<defaults>"


# ----------------------------------------------------------------------------- the schema
# (section, key) -> (type, check, "what is allowed")


def _choice(options: tuple[str, ...]):
    return (lambda v: v in options), "one of " + ", ".join(options)


def _range(lo: float, hi: float, lo_open: bool = False):
    def ok(v: float) -> bool:
        if isinstance(v, float) and not math.isfinite(v):
            return False
        return (v > lo if lo_open else v >= lo) and v <= hi

    left = "(" if lo_open else "["
    return ok, f"a number in {left}{lo:g}, {hi:g}]"


def _int_range(lo: int, hi: int):
    return (lambda v: lo <= v <= hi), f"an integer from {lo} to {hi}"


SCHEMA: dict[str, dict[str, tuple[type, Any]]] = {
    "model": {
        "kind": (str, _choice(("mlp", "rnn"))),
        "depth": (int, _int_range(1, 64)),
        "width": (int, _int_range(2, 1024)),
        "activation": (str, _choice(ACTIVATIONS)),
        "leaky_slope": (float, _range(0.0, 1.0, lo_open=True)),
        "init": (str, _choice(INITS)),
        "init_gain": (float, _range(0.0, 10.0, lo_open=True)),
        "batchnorm": (bool, ((lambda v: True), "true or false")),
        "skip": (bool, ((lambda v: True), "true or false")),
        "cell": (str, _choice(CELLS)),
        "hidden": (int, _int_range(2, 1024)),
    },
    "data": {
        "task": (str, _choice(TASKS_MLP + TASKS_RNN)),
        "samples": (int, _int_range(16, 1_000_000)),
        "noise": (float, _range(0.0, 5.0)),
        "seq_len": (int, _int_range(2, 2000)),
        "classes": (int, _int_range(2, 8)),
    },
    "train": {
        "optimizer": (str, _choice(OPTIMIZERS)),
        "lr": (float, _range(0.0, 100.0, lo_open=True)),
        "momentum": (float, _range(0.0, 0.999)),
        "batch_size": (int, _int_range(1, 65536)),
        "clip": (float, _range(0.0, 1e6, lo_open=True)),  # or false / "off"
        "steps": (int, _int_range(1, 1_000_000_000)),
        "seed": (int, _int_range(0, 2**31 - 1)),
        "log_every": (int, _int_range(1, 100_000)),
        "hist_layer": (int, _int_range(1, 64)),
    },
}
TOP_LEVEL = {"title": str, "description": str, "suggest": list}
TYPE_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _coerce(source: str, dotted: str, raw: Any) -> Any:
    section, key = dotted.split(".", 1)
    typ, (check, allowed) = SCHEMA[section][key]
    value = raw
    if dotted == "train.clip" and (raw is False or (isinstance(raw, str) and raw.lower() in ("off", "none"))):
        return None
    if typ is float and isinstance(raw, int) and not isinstance(raw, bool):
        value = float(raw)
    if typ is bool and isinstance(raw, str) and raw.lower() in ("on", "off"):
        value = raw.lower() == "on"
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        what = allowed if dotted != "train.clip" else f"{allowed}, or false/off"
        raise ConfigError(f"{source}: {dotted} = {_show(raw)} is {_kind(raw)}; allowed: {what}")
    if not check(value):
        what = allowed if dotted != "train.clip" else f"{allowed}, or false/off"
        raise ConfigError(f"{source}: {dotted} = {_show(raw)} is out of range; allowed: {what}")
    return value


def _name(key: str) -> str:
    """A key as typed, quoted when it is not a plain name (so odd characters stay on one line), at most 80 chars."""
    return _clip(key if key.replace("_", "").isalnum() and key.isascii() else repr(key))


def _clip(text: str, limit: int = 80) -> str:
    """Text a message echoes (a --set option, a key): at most `limit` characters, the rest cut to '…'."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, dict):
        return "a table"
    if isinstance(v, list):
        return "a list"
    return type(v).__name__


def _sections(model: ModelConfig, data: DataConfig, train: TrainConfig) -> dict[str, Any]:
    return {"model": model, "data": data, "train": train}


def from_dict(doc: dict[str, Any], source: str, name: str = "custom") -> RunConfig:
    """Validate a parsed TOML document into a RunConfig (defaults fill what is missing)."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: the document must be a TOML table")
    parts: dict[str, dict[str, Any]] = {"model": {}, "data": {}, "train": {}}
    top: dict[str, Any] = {}
    for key, value in doc.items():
        if key in SCHEMA:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: [{key}] must be a table, got {_kind(value)}")
            for sub, raw in value.items():
                if sub not in SCHEMA[key]:
                    raise ConfigError(
                        f"{source}: unknown key {key}.{_name(sub)}; allowed in [{key}]: {', '.join(SCHEMA[key])}"
                    )
                parts[key][sub] = _coerce(source, f"{key}.{sub}", raw)
        elif key in TOP_LEVEL:
            want = TOP_LEVEL[key]
            if key == "suggest" and isinstance(value, str):
                value = [value]
            if not isinstance(value, want) or (key == "suggest" and not all(isinstance(s, str) for s in value)):
                what = "a list of strings" if key == "suggest" else "a string"
                raise ConfigError(f"{source}: {key} = {_show(value)} is {_kind(value)}; allowed: {what}")
            top[key] = value
        else:
            allowed = ", ".join([*TOP_LEVEL, *(f"[{s}]" for s in SCHEMA)])
            raise ConfigError(f"{source}: unknown key {_clip(repr(key))}; allowed: {allowed}")
    cfg = RunConfig(
        name=name,
        title=top.get("title", name),
        description=" ".join(str(top.get("description", "")).split()),
        suggest=tuple(top.get("suggest", ())),
        model=ModelConfig(**parts["model"]),
        data=DataConfig(**parts["data"]),
        train=TrainConfig(**parts["train"]),
        source=source,
    )
    check_consistency(cfg)
    from vgtui.engine.toggles import ToggleError, parse_remedy  # no torch; imported late (it imports this module)

    for remedy in cfg.suggest:
        try:
            parse_remedy(remedy)
        except ToggleError as exc:
            raise ConfigError(f"{source}: suggest: {exc}") from None
    return cfg


def check_consistency(cfg: RunConfig) -> None:
    """Cross-field rules (an RNN task needs an RNN model, and so on)."""
    src = cfg.source
    if cfg.model.kind == "mlp" and cfg.data.task not in TASKS_MLP:
        raise ConfigError(
            f"{src}: data.task = {cfg.data.task!r} needs model.kind = 'rnn'; for an MLP allowed: {', '.join(TASKS_MLP)}"
        )
    if cfg.model.kind == "rnn" and cfg.data.task not in TASKS_RNN:
        raise ConfigError(
            f"{src}: data.task = {cfg.data.task!r} needs model.kind = 'mlp'; for an RNN allowed: {', '.join(TASKS_RNN)}"
        )
    m, d, t = cfg.model, cfg.data, cfg.train
    limits = (
        (m.kind == "mlp", m.depth * m.width * m.width, MAX_PARAMS, "model.depth x model.width^2 (weights)"),
        (m.kind == "mlp", t.batch_size * m.width * m.depth, MAX_ACTIVATIONS, "train.batch_size x width x depth"),
        (m.kind == "rnn", t.batch_size * d.seq_len * m.hidden, MAX_ACTIVATIONS, "batch_size x seq_len x hidden"),
        (m.kind == "rnn", d.samples * d.seq_len, MAX_ACTIVATIONS, "data.samples x data.seq_len"),
    )
    for applies, size, limit, what in limits:
        if applies and size > limit:
            raise ConfigError(f"{src}: too large for an interactive demo: {what} = {size:,}; allowed: up to {limit:,}")
    if m.kind == "mlp" and m.batchnorm and t.batch_size < 2:
        raise ConfigError(f"{src}: model.batchnorm = true needs train.batch_size >= 2; allowed: batch_size 2 or more")
    if cfg.train.batch_size > cfg.data.samples:
        raise ConfigError(
            f"{src}: train.batch_size = {cfg.train.batch_size} is larger than data.samples = {cfg.data.samples}; "
            f"allowed: 1 to data.samples"
        )


def load_text(text: str, source: str, name: str = "custom") -> RunConfig:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: not valid TOML: nested too deeply") from None
    return from_dict(doc, source, name)


def load_file(path: Path, name: str | None = None) -> RunConfig:
    """Read and validate one TOML file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 (byte {exc.start}); presets must be UTF-8 TOML") from None
    return load_text(text, str(path), name or path.stem)


def parse_assignment(text: str, what: str = "--set") -> tuple[str, Any]:
    """'model.depth=30' -> ('model.depth', 30). The value is read as TOML, else as a bare string."""
    if "=" not in text:
        raise ConfigError(f"{what} {_clip(repr(text))}: expected section.key=value, e.g. model.depth=30")
    key, raw = text.split("=", 1)
    key, raw = key.strip(), raw.strip()
    if raw == "":
        raise ConfigError(f"{what} {_clip(repr(text))}: the value after '=' is empty; expected section.key=value")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except (ValueError, RecursionError):  # (not TOML, or an integer of more than 4,300 digits): a bare string
        value = raw
    return key, value


def apply_sets(cfg: RunConfig, assignments: list[str]) -> RunConfig:
    """Apply --set section.key=value overrides, validating each like a preset value."""
    for text in assignments:
        key, value = parse_assignment(text)
        source = f"--set {_clip(text)}"
        if "." not in key:
            raise ConfigError(f"{source}: expected section.key, sections: {', '.join(SCHEMA)}")
        section, sub = key.split(".", 1)
        if section not in SCHEMA:
            raise ConfigError(f"{source}: unknown section {_clip(repr(section))}; allowed: {', '.join(SCHEMA)}")
        if sub not in SCHEMA[section]:
            raise ConfigError(
                f"{source}: unknown key {section}.{_name(sub)}; allowed in [{section}]: {', '.join(SCHEMA[section])}"
            )
        coerced = _coerce(source, key, value)
        part = getattr(cfg, section)
        cfg = replace(cfg, **{section: replace(part, **{sub: coerced})})
        check_consistency(replace(cfg, source=source))
    return cfg


def to_dict(cfg: RunConfig) -> dict[str, Any]:
    """The resolved config as plain JSON-able data (for the run log's meta line)."""
    out: dict[str, Any] = {
        "name": cfg.name,
        "title": cfg.title,
        "description": cfg.description,
        "suggest": list(cfg.suggest),
        "source": cfg.source,
    }
    for section in ("model", "data", "train"):
        part = getattr(cfg, section)
        out[section] = {f.name: getattr(part, f.name) for f in fields(part)}
    return out


def from_resolved(data: dict[str, Any]) -> RunConfig:
    """Inverse of to_dict (used by replay)."""
    return RunConfig(
        name=data.get("name", "custom"),
        title=data.get("title", ""),
        description=data.get("description", ""),
        suggest=tuple(data.get("suggest", ())),
        model=ModelConfig(**data.get("model", {})),
        data=DataConfig(**data.get("data", {})),
        train=TrainConfig(**data.get("train", {})),
        source=data.get("source", "<log>"),
    )


def config_with_state(cfg: RunConfig, state: ModelState) -> RunConfig:
    """The scene with the settings a model has now (after toggles): what a fresh start with them needs."""
    m, t = cfg.model, cfg.train
    depth = state.depth if state.kind == "mlp" else m.depth
    model = replace(m, activation=state.activation, init=state.init, batchnorm=state.batchnorm, skip=state.skip,
                    depth=depth, cell=state.cell)  # fmt: skip
    return replace(cfg, model=model, train=replace(t, clip=state.clip, lr=state.lr))


def model_state(cfg: RunConfig) -> ModelState:
    """The model a scene starts with, before any toggle (depth is 1 for an RNN)."""
    m, t = cfg.model, cfg.train
    return ModelState(
        kind=m.kind,
        activation=m.activation,
        init=m.init,
        batchnorm=m.batchnorm,
        skip=m.skip,
        clip=t.clip,
        lr=t.lr,
        depth=m.depth if m.kind == "mlp" else 1,
        cell=m.cell,
        optimizer=t.optimizer,
    )
