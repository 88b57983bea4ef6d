"""What a run log record may hold: one check per record type, and the meta record's config. No torch.

Every check raises `Bad` with what was wrong and what is allowed; the reader adds the file and the line. Keys a
record does not know are ignored (a newer vgtui may add some); keys it knows must have the right type, so that
nothing downstream (the dashboard) meets a value it cannot draw.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, fields, replace
from typing import Any

from vgtui.config import OPTIMIZERS, ConfigError, ModelConfig, RunConfig, TrainConfig, from_dict
from vgtui.contract import ACTIVATIONS, CELLS, HIST_BINS, INITS, ModelState
from vgtui.history import LAYERWISE

TYPES = ("meta", "step", "event", "diagnosis", "notice")
STATUSES = ("running", "paused", "diverged", "error", "done")
SEVERITIES = ("ok", "warn", "bad")
LEVELS = ("info", "warn", "error")
RUNS = ("A", "B")  # a compare log: which run a step, event, diagnosis or notice belongs to (no "run": A)
MAX_LAYERS = 1024
MAX_TIME_STEPS = 100_000
NUMBERS = ("loss", "acc", "lr", "grad_total", "steps_per_sec")
PER_LAYER = LAYERWISE  # every per-layer statistic a step record can carry (the History keeps the same)
PER_TIME_STEP = ("time_grad_norm", "time_cell_grad_norm")
CONFIG_KEYS = ("name", "title", "description", "suggest", "source", "model", "data", "train")
STATE_CHOICES = {
    "kind": ("mlp", "rnn"),
    "activation": ACTIVATIONS,
    "init": INITS,
    "cell": CELLS,
    "optimizer": OPTIMIZERS,
}
STATE_FIELDS = {f.name: f for f in fields(ModelState)}


class Bad(ValueError):
    """A record that breaks the format: str() says what and what is allowed (no file, no line)."""


def clip(text: str, limit: int = 80) -> str:
    """A value echoed in a message: at most `limit` characters, the rest cut to '…'."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def show(value: Any) -> str:
    return clip(repr(value) if not isinstance(value, (list, dict)) else _json_like(value))


def _json_like(value: Any) -> str:
    try:
        return json.dumps(value)[:200]
    except (TypeError, ValueError, RecursionError):
        return type(value).__name__


def kind(value: Any) -> str:
    """What a JSON value is, in words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _what(value: Any) -> str:
    return kind(value) if isinstance(value, (list, dict)) or value is None else f"{kind(value)} {show(value)}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _int(rec: dict, key: str, required: bool = False, lo: int = 0, hi: int | None = None) -> None:
    allowed = f"an integer from {lo}" + (f" to {hi}" if hi is not None else "")
    if rec.get(key) is None:
        if required:
            raise Bad(f"'{key}' is {'missing' if key not in rec else 'null'}; allowed: {allowed}")
        return
    value = rec[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < lo or (hi is not None and value > hi):
        raise Bad(f"'{key}' is {_what(value)}; allowed: {allowed}")


def _string(rec: dict, key: str, required: bool = False, choices: tuple[str, ...] = ()) -> None:
    if key not in rec:
        if required:
            raise Bad(f"'{key}' is missing; allowed: " + (f"one of {', '.join(choices)}" if choices else "a string"))
        return
    value = rec[key]
    if not isinstance(value, str) or (choices and value not in choices):
        raise Bad(f"'{key}' is {_what(value)}; allowed: " + (f"one of {', '.join(choices)}" if choices else "a string"))


def _numbers(rec: dict, key: str, most: int, exactly: int | None = None) -> None:
    value = rec.get(key)
    if value is None:
        return
    what = f"a list of {exactly} numbers (or null)" if exactly else f"a list of up to {most:,} numbers (or null)"
    if not isinstance(value, list) or len(value) > most:
        raise Bad(f"'{key}' is {_what(value)}" + (f" of {len(value):,}" if isinstance(value, list) else "") +
                  f"; allowed: {what}")  # fmt: skip
    if exactly is not None and value and len(value) != exactly:
        raise Bad(f"'{key}' has {len(value)} values; allowed: {what}")
    for i, v in enumerate(value):
        if v is not None and not _is_number(v):
            raise Bad(f"'{key}'[{i}] is {_what(v)}; allowed: a number or null")


def _strings(rec: dict, key: str, most: int) -> None:
    value = rec.get(key)
    if value is None:
        return
    if not isinstance(value, list) or len(value) > most or not all(isinstance(s, str) for s in value):
        raise Bad(f"'{key}' is {_what(value)}; allowed: a list of up to {most} strings")


def check_step(rec: dict) -> None:
    _int(rec, "step", required=True)
    for key in NUMBERS:
        value = rec.get(key)
        if value is not None and not _is_number(value):
            raise Bad(f"'{key}' is {_what(value)}; allowed: a number or null")
    if rec.get("clipped") is not None and not isinstance(rec["clipped"], (bool, int, float)):
        raise Bad(f"'clipped' is {_what(rec['clipped'])}; allowed: true or false")
    _strings(rec, "layers", MAX_LAYERS)
    for key in PER_LAYER:
        _numbers(rec, key, MAX_LAYERS)
    _numbers(rec, "hist_counts", HIST_BINS, exactly=HIST_BINS)
    for key in PER_TIME_STEP:
        _numbers(rec, key, MAX_TIME_STEPS)
    _int(rec, "hist_layer", lo=0, hi=MAX_LAYERS)
    _int(rec, "stats_step")
    _int(rec, "grad_step")
    if rec.get("status") is not None:
        _string(rec, "status", choices=STATUSES)
    if rec.get("model") is not None:
        _string(rec, "model")
    if rec.get("model_state") is not None:
        check_model_state(rec["model_state"])


def check_model_state(state: Any) -> None:
    if not isinstance(state, dict):
        raise Bad(f"'model_state' is {_what(state)}; allowed: an object with {', '.join(STATE_FIELDS)}")
    for key in state:
        if key not in STATE_FIELDS:
            raise Bad(f"'model_state' has an unknown key {show(key)}; allowed: {', '.join(STATE_FIELDS)}")
    if state.get("kind") == "user":  # a watched user model: free-form names, checked for type and size only
        return _check_user_state(state)
    for name, f in STATE_FIELDS.items():
        where = f"'model_state.{name}'"
        if name not in state:
            if f.default is MISSING:  # a required field
                raise Bad(f"{where} is missing; allowed: an object with {', '.join(STATE_FIELDS)}")
            continue
        value = state[name]
        if name in STATE_CHOICES:
            if value not in STATE_CHOICES[name]:
                raise Bad(f"{where} is {_what(value)}; allowed: one of {', '.join(STATE_CHOICES[name])}")
        elif name in ("batchnorm", "skip"):
            if not isinstance(value, bool):
                raise Bad(f"{where} is {_what(value)}; allowed: true or false")
        elif name == "depth":
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_LAYERS:
                raise Bad(f"{where} is {_what(value)}; allowed: an integer from 1 to {MAX_LAYERS}")
        elif name == "clip":
            if value is not None and (not _is_number(value) or not value > 0):
                raise Bad(f"{where} is {_what(value)}; allowed: a number > 0, or null (off)")
        elif name == "lr" and not _is_number(value):
            raise Bad(f"{where} is {_what(value)}; allowed: a number")


def _check_user_state(state: dict[str, Any]) -> None:
    for name, value in state.items():
        where = f"'model_state.{name}'"
        if name in ("activation", "init", "cell", "optimizer"):
            if not isinstance(value, str) or len(value) > 80:
                raise Bad(f"{where} is {_what(value)}; allowed: a short string")
        elif name in ("batchnorm", "skip") and not isinstance(value, bool):
            raise Bad(f"{where} is {_what(value)}; allowed: true or false")
        elif name == "depth" and (
            not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_LAYERS
        ):
            raise Bad(f"{where} is {_what(value)}; allowed: an integer from 0 to {MAX_LAYERS}")
        elif name == "clip" and value is not None and (not _is_number(value) or not value > 0):
            raise Bad(f"{where} is {_what(value)}; allowed: a number > 0, or null (off)")
        elif name == "lr" and not _is_number(value):
            raise Bad(f"{where} is {_what(value)}; allowed: a number")
        elif name == "capabilities" and (
            not isinstance(value, list) or len(value) > 40 or not all(isinstance(v, str) and len(v) < 40 for v in value)
        ):
            raise Bad(f"{where} is {_what(value)}; allowed: a list of short strings")


def check_event(rec: dict) -> None:
    _int(rec, "step", required=True)
    _string(rec, "name", required=True)
    value = rec.get("value")
    if isinstance(value, (list, dict)):
        raise Bad(f"'value' is {kind(value)}; allowed: a string, a number, true/false or null")


def check_diagnosis(rec: dict) -> None:
    _int(rec, "step", required=True)
    verdicts = rec.get("verdicts")
    if not isinstance(verdicts, list) or len(verdicts) > 64:
        got = "missing" if "verdicts" not in rec else f"{_what(verdicts)}"
        raise Bad(f"'verdicts' is {got}; allowed: a list of up to 64 verdicts {{code, severity, text, remedies}}")
    for i, v in enumerate(verdicts):
        if not isinstance(v, dict):
            raise Bad(f"'verdicts'[{i}] is {_what(v)}; allowed: an object {{code, severity, text, remedies}}")
        try:
            _string(v, "code", required=True)
            _string(v, "severity", required=True, choices=SEVERITIES)
            _string(v, "text", required=True)
            _strings(v, "remedies", 64)
        except Bad as exc:
            raise Bad(f"'verdicts'[{i}]: {exc}") from None


def check_notice(rec: dict) -> None:
    _int(rec, "step", required=True)
    _string(rec, "text", required=True)
    if rec.get("level") is not None:
        _string(rec, "level", choices=LEVELS)


def check_meta(rec: dict) -> None:
    for key in ("version", "preset", "title", "device"):
        if rec.get(key) is not None:
            _string(rec, key)
    _strings(rec, "layers", MAX_LAYERS)
    if "config" not in rec:
        raise Bad("the meta record has no 'config'; allowed: the resolved preset, as vgtui run --out writes it")
    if rec.get("compare") is not None:
        _check_compare(rec["compare"])


def _check_compare(value: Any) -> None:
    """The meta record's "compare": {"toggles": ["activation=relu", ...], "fork_at": STEP or null, "label": ...}."""
    allowed = "allowed: an object {toggles: a list of name=value strings, fork_at: a step or null, label: a string}"
    if not isinstance(value, dict):
        raise Bad(f"'compare' is {_what(value)}; {allowed}")
    try:
        _strings(value, "toggles", 16)
        _int(value, "fork_at")
        _string(value, "label")
    except Bad as exc:
        raise Bad(f"'compare': {exc}") from None


CHECKS = {
    "meta": check_meta,
    "step": check_step,
    "event": check_event,
    "diagnosis": check_diagnosis,
    "notice": check_notice,
}


def check_record(rec: Any) -> str:
    """The record's type, once its fields are checked."""
    if not isinstance(rec, dict):
        raise Bad(f"the line is {_what(rec)}; allowed: a JSON object with a 'type' ({', '.join(TYPES)})")
    kind_ = rec.get("type")
    if kind_ not in CHECKS:
        got = "a record without a 'type'" if "type" not in rec else f"unknown record type {show(kind_)}"
        raise Bad(f"{got}; allowed: {', '.join(TYPES)}")
    try:
        CHECKS[kind_](rec)
        if kind_ != "meta":
            _string(rec, "run", choices=RUNS)
    except Bad as exc:
        raise Bad(f"{kind_} record: {exc}") from None
    return kind_


def config_from_log(data: Any, source: str) -> RunConfig:
    """The meta record's 'config' (vgtui.config.to_dict) back to a RunConfig, checked like a preset file."""
    if not isinstance(data, dict):
        raise Bad(f"'config' is {_what(data)}; allowed: an object (the resolved preset)")
    for key in data:
        if key not in CONFIG_KEYS:
            raise Bad(f"'config' has an unknown key {show(key)}; allowed: {', '.join(CONFIG_KEYS)}")
    for key in ("name", "source"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise Bad(f"'config.{key}' is {_what(data[key])}; allowed: a string")
    doc = {k: data[k] for k in ("title", "description", "suggest", "model", "data", "train") if k in data}
    train = doc.get("train")
    if isinstance(train, dict) and "clip" in train and train["clip"] is None:
        doc["train"] = {**train, "clip": False}  # to_dict writes clipping off as null
    model = doc.get("model")
    user = isinstance(model, dict) and model.get("kind") == "user"  # a watched user model (vgtui attach --out)
    train = doc.get("train") if user else None
    if user:
        doc = {**doc, "model": {}, "train": {}}  # not a preset's model and training: checked below instead
    try:
        cfg = from_dict(doc, f"{source}: config", name=data.get("name") or "custom")
    except ConfigError as exc:
        raise Bad(str(exc).removeprefix(f"{source}: ")) from None
    if user:
        cfg = replace(cfg, model=_user_model(model), train=_user_train(train if isinstance(train, dict) else {}))
    return replace(cfg, source=data["source"]) if isinstance(data.get("source"), str) else cfg


def _user_model(model: dict[str, Any]) -> ModelConfig:
    """The model part of a watched run's config: only its kind, depth and activation mean anything."""
    depth, activation = model.get("depth", 0), model.get("activation", "none")
    if not isinstance(depth, int) or isinstance(depth, bool) or not 0 <= depth <= MAX_LAYERS:
        raise Bad(f"'config.model.depth' is {show(depth)}; allowed: an integer from 0 to {MAX_LAYERS}")
    if not isinstance(activation, str) or len(activation) > 40:
        raise Bad(f"'config.model.activation' is {show(activation)}; allowed: a short string")
    return ModelConfig(kind="user", depth=depth, activation=activation)


def _user_train(train: dict[str, Any]) -> TrainConfig:
    """What a watched run's config says of its training: the user's optimizer (any name), lr, clipping, cadence."""
    optimizer, lr, clip, every = (train.get(k) for k in ("optimizer", "lr", "clip", "log_every"))
    clip = None if clip is False else clip  # clipping off: null in the log (False once read back)
    if not isinstance(optimizer, str) or len(optimizer) > 80:
        raise Bad(f"'config.train.optimizer' is {show(optimizer)}; allowed: a short string")
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not 0 <= lr < float("inf"):
        raise Bad(f"'config.train.lr' is {show(lr)}; allowed: a number >= 0")
    if clip is not None and (not isinstance(clip, (int, float)) or isinstance(clip, bool) or not clip > 0):
        raise Bad(f"'config.train.clip' is {show(clip)}; allowed: null or a number > 0")
    if not isinstance(every, int) or isinstance(every, bool) or not every >= 1:
        raise Bad(f"'config.train.log_every' is {show(every)}; allowed: an integer >= 1")
    return TrainConfig(optimizer=optimizer, lr=float(lr), clip=None if clip is None else float(clip), steps=1,
                       log_every=every)  # fmt: skip
