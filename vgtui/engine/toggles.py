"""Parse and validate live toggles. No torch: the trainer applies them."""

from __future__ import annotations

import math
from collections.abc import Sequence

from vgtui.config import ConfigError
from vgtui.contract import ACTIVATIONS, CELLS, INITS, TOGGLE_NAMES, Command, Event, Reset, Toggle

MLP_ONLY = ("activation", "batchnorm", "skip", "depth")
RNN_ONLY = ("cell",)
ON = ("on", "true", "1", "yes")
OFF = ("off", "false", "0", "no", "none")


class ToggleError(ConfigError):
    """A toggle that is malformed or does not apply to the model; str() is one line."""


def parse_toggle(text: str) -> Toggle:
    """'activation=relu' -> Toggle('activation', 'relu'), validated."""
    if "=" not in text:
        raise ToggleError(f"toggle {text!r}: expected name=value; names: {', '.join(TOGGLE_NAMES)}")
    name, value = (s.strip() for s in text.split("=", 1))
    toggle = Toggle(name, value)
    normalize(toggle)
    return toggle


def parse_scheduled(text: str) -> tuple[int, Command]:
    """'200:activation=relu' -> (200, Toggle('activation', 'relu')); '200:reset' -> (200, Reset())."""
    step, sep, rest = text.partition(":")
    if not sep or not step.strip().isdigit():
        raise ToggleError(f"--toggle {text!r}: expected STEP:name=value or STEP:reset, e.g. 200:activation=relu")
    if rest.strip() == "reset":
        return int(step), Reset()
    return int(step), parse_toggle(rest)


def parse_remedy(text: str) -> list[Command]:
    """A preset's suggested remedy, 'lr=0.01 + reset' -> [Toggle('lr', '0.01'), Reset()]: toggles and resets
    joined by '+', applied in order (as the keys would be pressed)."""
    parts = [p.strip() for p in text.split("+")]
    if not all(parts):
        raise ToggleError(f"remedy {text!r}: expected toggles joined by '+', e.g. activation=leaky_relu + init=he")
    return [Reset() if p == "reset" else parse_toggle(p) for p in parts]


def parse_compare(text: str) -> tuple[Toggle, ...]:
    """'activation=leaky_relu,init=he' (',' or '+' between toggles) -> the toggles, validated. A ToggleError
    names what was wrong and what is allowed."""
    parts = [p.strip() for p in text.replace(",", "+").split("+")]
    if not text.strip() or not all(parts):
        raise ToggleError(f"--compare {text!r}: expected toggles joined by ',', e.g. activation=leaky_relu,init=he")
    commands: list[Command] = parse_remedy("+".join(parts))
    toggles = [c for c in commands if isinstance(c, Toggle)]
    if len(toggles) != len(commands):
        raise ToggleError(f"--compare {text!r}: only toggles (name=value), not reset; e.g. activation=leaky_relu")
    return tuple(toggles)


def compare_label(toggles: Sequence[Toggle], step: int) -> str:
    """The legend of run B: 'B: leaky_relu+he @ 300' (values of the model's kind, name=value for the rest)."""
    names = "+".join(Event(step, t.name, t.value).label.rsplit(" @ ", 1)[0] for t in toggles) or "same as A"
    return f"B: {names} @ {step}"


def changes(toggles: Sequence[Toggle], state: object) -> tuple[Toggle, ...]:
    """The toggles that would change `state` (a ModelState): B forked with `init=he` from a run already at He
    init keeps its weights instead of drawing new ones."""
    kind = getattr(state, "kind", None)
    return tuple(t for t in toggles if normalize(t, kind) != getattr(state, t.name, object()))


def normalize(toggle: Toggle, kind: str | None = None) -> object:
    """Check a toggle and return its typed value; raise ToggleError with what is allowed.

    With `kind` ("mlp"/"rnn") also refuse toggles that do not apply to that model.
    """
    name, raw = toggle.name, toggle.value.strip().lower()
    if name not in TOGGLE_NAMES:
        raise ToggleError(f"unknown toggle {name!r}; allowed: {', '.join(TOGGLE_NAMES)}")
    if kind == "rnn" and name in MLP_ONLY:
        raise ToggleError(f"{name} applies to MLP presets, not to this RNN; for an RNN try cell=lstm or cell=gru")
    if kind == "mlp" and name in RNN_ONLY:
        raise ToggleError("cell applies to RNN presets (rnn-long), not to this MLP")
    if name == "activation":
        return _choice(name, raw, ACTIVATIONS)
    if name == "init":
        return _choice(name, raw, INITS)
    if name == "cell":
        return _choice(name, raw, CELLS)
    if name in ("batchnorm", "skip"):
        if raw in ON:
            return True
        if raw in OFF:
            return False
        raise ToggleError(f"{name}={toggle.value!r}: allowed: on or off")
    if name == "clip":
        if raw in OFF:
            return None
        value = _number(name, raw, "off or a max norm > 0, e.g. 1.0")
        if not 0 < value <= 1e6:
            raise ToggleError(f"clip={toggle.value!r}: allowed: off or a max norm in (0, 1e6]")
        return value
    if name == "lr":
        value = _number(name, raw, "a number in (0, 100]")
        if not 0 < value <= 100:
            raise ToggleError(f"lr={toggle.value!r}: allowed: a number in (0, 100]")
        return value
    if name == "depth":
        try:
            depth = int(raw)
        except ValueError:
            raise ToggleError(f"depth={toggle.value!r}: allowed: an integer from 1 to 64") from None
        if not 1 <= depth <= 64:
            raise ToggleError(f"depth={toggle.value!r}: allowed: an integer from 1 to 64")
        return depth
    raise ToggleError(f"unknown toggle {name!r}")  # pragma: no cover


def _choice(name: str, raw: str, options: tuple[str, ...]) -> str:
    aliases = {"leaky": "leaky_relu", "leakyrelu": "leaky_relu", "leaky-relu": "leaky_relu", "glorot": "xavier",
               "kaiming": "he", "vanilla": "rnn"}  # fmt: skip
    raw = aliases.get(raw, raw)
    if raw not in options:
        raise ToggleError(f"{name}={raw!r}: allowed: {', '.join(options)}")
    return raw


def _number(name: str, raw: str, allowed: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ToggleError(f"{name}={raw!r}: allowed: {allowed}") from None
    if not math.isfinite(value):
        raise ToggleError(f"{name}={raw!r}: allowed: {allowed}")
    return value
