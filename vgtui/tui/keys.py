"""Keys → Commands: the bindings table and the pure functions that turn a key into a Toggle.

Every toggle value is computed from the latest `ModelState` the app knows: the engine's (from the
newest snapshot) or, before the first snapshot, the one the run config describes.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, replace

from textual.binding import Binding

from vgtui.config import RunConfig, model_state
from vgtui.contract import ACTIVATIONS, CELLS, INITS, ModelState, Toggle

MAX_DEPTH = 64
DEFAULT_CLIP = 1.0


LIVE, REPLAY, BOTH = "live", "replay", ""  # which dashboard a key belongs to: a live run, a replay, or both

# Footer groups: keys shown together under one word ("+- lr"); the bindings of a group sit side by side
GROUPS = {name: Binding.Group(name, compact=True) for name in ("lr", "depth", "seek", "speed")}


@dataclass(frozen=True)
class KeyAction:
    """One dashboard action: its key(s), Textual action string, a stable id, a footer word and a help line.

    `mode` says where the key works: LIVE (a training run), REPLAY (a recording) or BOTH; the other mode's
    keys are neither run nor shown. `group` puts related keys together in the footer.
    """

    keys: str
    action: str
    id: str
    short: str
    help: str
    show: bool = True
    key_display: str | None = None
    mode: str = BOTH
    group: str | None = None
    priority: bool = False


def _t(keys: str, name: str, short: str, help: str, key_display: str | None = None,  # noqa: A002
       group: str | None = None) -> KeyAction:  # fmt: skip
    return KeyAction(keys, f"toggle('{name}')", name, short, help, key_display=key_display, mode=LIVE, group=group)


# In footer order: what matters most comes first, so a narrow footer still shows it (? help and q quit always).
ACTIONS: tuple[KeyAction, ...] = (
    KeyAction("question_mark,f1", "help", "help", "help", "What am I looking at? (help)", key_display="?"),
    KeyAction("q", "quit", "quit", "quit", "Quit"),
    KeyAction("space", "pause", "pause", "pause", "Pause / resume training", key_display="␣", mode=LIVE),
    KeyAction("space", "play", "play", "play/pause", "Replay: play / pause", key_display="␣", mode=REPLAY),
    _t("a", "activation", "act", "Cycle the activation: sigmoid → tanh → relu → leaky_relu"),
    _t("i", "init", "init", "Cycle the weight init: default → xavier → he (re-initialises)"),
    _t("b", "batchnorm", "BN", "BatchNorm on/off"),
    _t("s", "skip", "skip", "Skip (residual) connections on/off"),
    _t("c", "clip", "clip", "Gradient clipping on/off"),
    _t("plus,equals_sign", "lr_up", "lr×2", "Learning rate ×2", key_display="+", group="lr"),
    _t("minus", "lr_down", "lr÷2", "Learning rate ÷2", key_display="-", group="lr"),
    _t("left_square_bracket", "depth_down", "depth-", "One layer fewer", key_display="[", group="depth"),
    _t("right_square_bracket", "depth_up", "depth+", "One layer more", key_display="]", group="depth"),
    _t("l", "cell", "cell", "Cycle the RNN cell: rnn → lstm → gru"),
    KeyAction(
        "left,comma",
        "seek(-1)",
        "seek_back",
        "back",
        "Replay: one recorded step back",
        key_display="←",
        mode=REPLAY,
        group="seek",
    ),  # fmt: skip
    KeyAction(
        "right,full_stop",
        "seek(1)",
        "seek_forward",
        "fwd",
        "Replay: one recorded step forward",
        key_display="→",
        mode=REPLAY,
        group="seek",
    ),  # fmt: skip
    KeyAction(
        "minus,less_than_sign",
        "speed(0.5)",
        "slower",
        "slower",
        "Replay: half the speed",
        key_display="-",
        mode=REPLAY,
        group="speed",
    ),  # fmt: skip
    KeyAction(
        "plus,equals_sign,greater_than_sign",
        "speed(2.0)",
        "faster",
        "faster",
        "Replay: twice the speed",
        key_display="+",
        mode=REPLAY,
        group="speed",
    ),  # fmt: skip
    KeyAction(
        "n,t",
        "next_event",
        "next_event",
        "next toggle",
        "Replay: jump to the next recorded toggle",
        key_display="n",
        mode=REPLAY,
    ),  # fmt: skip
    KeyAction("r", "reset", "reset", "reset", "Fresh weights, the settings kept", mode=LIVE),
    KeyAction("R", "restore", "restore", "restore", "The preset's original settings and fresh weights", mode=LIVE),
    KeyAction("r", "restart", "restart", "restart", "Replay: back to the first recorded step", mode=REPLAY),
    KeyAction("n", "step", "step", "step", "Run a single step (stays paused)", mode=LIVE),
    KeyAction(
        "f",
        "fork",
        "fork",
        "fork B",
        "Compare: fork a run B from this run now; toggle keys then go to B",
        mode=LIVE,
        show=False,
    ),  # fmt: skip
    KeyAction("w", "target", "target", "A/B", "Compare: send the toggle keys to the other run (B ↔ A)", mode=LIVE),
    KeyAction(
        "F", "end_compare", "end_compare", "end A/B", "Compare: end it, keeping run A or run B (asks which)", mode=LIVE
    ),  # fmt: skip
    KeyAction("C", "clip_prompt", "clip_prompt", "clip=", "Set the gradient-clipping threshold", mode=LIVE),
    KeyAction("p", "presets", "presets", "presets", "Open the preset picker", mode=LIVE),
    KeyAction("x", "clear_charts", "clear_charts", "clear", "Clear the charts: show only the steps from now on"),
    KeyAction("X", "whole_run", "whole_run", "whole run", "Charts show the whole run again", show=False),
    KeyAction("S", "save", "save", "save", "Save a screenshot (SVG) and the charts' data (CSV) here"),
    KeyAction(
        "ctrl+p",
        "command_palette",
        "palette",
        "palette",
        "Every action by name (command palette)",
        key_display="^p",
        priority=True,
    ),  # fmt: skip
    KeyAction("j", "select_layer(-1)", "layer_down", "layer-", "Select the layer below (histogram)", show=False),
    KeyAction("k", "select_layer(1)", "layer_up", "layer+", "Select the layer above (histogram)", show=False),
)


def key_of(a: KeyAction) -> str:
    """The key as the footer and help show it."""
    return a.key_display or a.keys.split(",")[0]


def bindings() -> list[Binding]:
    """Textual bindings for ACTIONS, each with an `id` (so a keymap can rebind it)."""
    out = [
        Binding(
            a.keys,
            a.action,
            a.short,
            show=a.show,
            key_display=a.key_display,
            id=f"vgtui.{a.id}",
            tooltip=a.help,
            group=GROUPS.get(a.group or ""),
        )  # fmt: skip
        for a in ACTIONS
    ]
    out.append(Binding("ctrl+q", "quit", "quit", show=False, id="vgtui.quit_ctrl", priority=True))
    return out


def _params(action: str) -> tuple[object, ...]:
    """The parameters of an action string: "seek(-1)" -> (-1,), "toggle('init')" -> ('init',)."""
    if "(" not in action:
        return ()
    value = ast.literal_eval(action[action.index("(") :])
    return value if isinstance(value, tuple) else (value,)


_MODES = {(a.action.split("(")[0], _params(a.action)): a.mode for a in ACTIONS}


def action_mode(action: str, parameters: tuple[object, ...]) -> str | None:
    """The mode (LIVE, REPLAY, BOTH) of an action as the app's check_action receives it; None if not one of ours."""
    return _MODES.get((action, tuple(parameters)))


def model_state_from_config(cfg: RunConfig) -> ModelState:
    """What the model will be before the engine publishes its first snapshot."""
    return model_state(cfg)


def _next(options: tuple[str, ...], current: str) -> str:
    return options[(options.index(current) + 1) % len(options)] if current in options else options[0]


def fmt_value(x: float) -> str:
    """A number as a Toggle value: '0.2', '0.0125', '1e-05'."""
    return f"{x:.6g}"


def toggle_for(action: str, model: ModelState, clip_threshold: float = DEFAULT_CLIP) -> Toggle | None:
    """The Toggle a key sends, from the model as it is now; None when there is nothing to send."""
    if action == "activation" and model.kind == "user":  # a watched model: hidden sigmoid/tanh -> relu -> leaky
        back = next((c.partition("=")[2] for c in model.capabilities if c.startswith("activation_from=")), "")
        return Toggle("activation", _next(tuple(a for a in (back, "relu", "leaky_relu") if a), model.activation))
    if action == "activation":
        return Toggle("activation", _next(ACTIVATIONS, model.activation))
    if action == "init":
        return Toggle("init", _next(INITS, model.init))
    if action == "batchnorm":
        return Toggle("batchnorm", "off" if model.batchnorm else "on")
    if action == "skip":
        return Toggle("skip", "off" if model.skip else "on")
    if action == "clip":
        return Toggle("clip", "off" if model.clip is not None else fmt_value(clip_threshold))
    if action == "lr_up":
        return Toggle("lr", fmt_value(model.lr * 2))
    if action == "lr_down":
        return Toggle("lr", fmt_value(model.lr / 2))
    if action == "depth_down":
        return Toggle("depth", str(model.depth - 1)) if model.depth > 1 else None
    if action == "depth_up":
        return Toggle("depth", str(model.depth + 1)) if model.depth < MAX_DEPTH else None
    if action == "cell":
        return Toggle("cell", _next(CELLS, model.cell))
    raise ValueError(f"not a toggle action: {action}")


def parse_clip(text: str) -> float:
    """A clip threshold typed by the user; ValueError with a readable message when it is not one."""
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a number; type e.g. 1.0 or 0.5") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{text.strip()} is not allowed; the threshold must be a number above 0")
    return value


def apply_toggle(model: ModelState, toggle: Toggle) -> ModelState:
    """The model as it will be once the engine applies `toggle` (used until the next snapshot confirms it)."""
    name, value = toggle.name, toggle.value
    try:
        if name in ("activation", "init", "cell"):
            return replace(model, **{name: value})
        if name in ("batchnorm", "skip"):
            return replace(model, **{name: value == "on"})
        if name == "clip":
            return replace(model, clip=None if value == "off" else float(value))
        if name == "lr":
            return replace(model, lr=float(value))
        if name == "depth":
            return replace(model, depth=int(value))
    except ValueError:
        pass
    return model
