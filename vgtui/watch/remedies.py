"""Which commands a watched user model takes, and the remedies its diagnosis names. No torch.

Live, applied between optimizer steps: pause / resume / step N, gradient clipping on/off/threshold (after
measuring, so the shown norms stay the exact pre-clip ones), learning rate (as a factor on whatever the user's
scheduler sets: scale-and-restore around each step), the histogram layer; with allow_swap, hidden Sigmoid/Tanh
modules to ReLU/LeakyReLU and back (vgtui.watch.swap). Everything else is refused with the reason: vgtui cannot
rebuild, re-initialise or re-architect a model it did not write.
"""

from __future__ import annotations

from vgtui.contract import Command, NextEvent, Pause, Reset, Resume, Seek, SelectLayer, SetSpeed, Step, Toggle, Verdict
from vgtui.engine.toggles import ToggleError, normalize

CAPABILITIES = ("pause", "step", "clip", "lr", "hist_layer")
IN_CODE = "in your code (✎): "  # the mark keeps the dashboard from offering a key for it

NOT_ALLOWED = (
    "swapping activations changes your model: allow it with vgtui.watch(model, optimizer, allow_swap=True) "
    "(hidden nn.Sigmoid/nn.Tanh modules only), or change them in your code"
)
REFUSALS = {
    "activation": NOT_ALLOWED,
    "init": "re-initialising your model's weights is not done live: change the init in your code and restart",
    "batchnorm": "adding normalisation changes your model's architecture: do it in your code",
    "skip": "residual connections change your model's architecture: add them in your code",
    "depth": "vgtui cannot add or remove layers of your model: change the depth in your code",
    "cell": "the recurrent cell belongs to your model's code: change it there",
}
REPLAY_ONLY = "seeking and speed work when replaying a recording (vgtui replay FILE.jsonl)"
NO_RESET = "reset is not possible on your own model (vgtui did not build it): restart your script"

USER_REMEDIES: dict[str, tuple[str, ...]] = {
    "vanishing": (
        IN_CODE + "ReLU or Leaky ReLU in place of sigmoid/tanh, with He init",
        IN_CODE + "normalisation layers (BatchNorm / LayerNorm) or residual connections",
        IN_CODE + "fewer layers",
    ),
    "exploding": ("gradient clipping (c), live", "lower the learning rate (-), live"),
    "diverged": ("gradient clipping (c) and a lower learning rate (-)", IN_CODE + "restart from a checkpoint"),
    "saturated": (IN_CODE + "ReLU / Leaky ReLU in place of sigmoid/tanh", IN_CODE + "normalisation layers"),
    "dead_relu": ("lower the learning rate (-)", IN_CODE + "Leaky ReLU: dead units do not come back"),
    "stagnant": (
        "see the gradient chart: what starves the first layers?",
        "raise the learning rate (+) if the gradients are healthy",
    ),
    "shrinking": ("lower the learning rate (-)", IN_CODE + "less weight decay, or normalisation layers"),
}


class Refused(ValueError):
    """A command this model does not take; str() is the reason, for a Notice."""


def check(command: Command, n_layers: int, swap: bool = False) -> Command:
    """The command if a watched user model takes it (toggle values validated), else Refused with the reason.
    With `swap` (vgtui.watch(..., allow_swap=...)) an activation toggle goes on to the training thread, which
    decides whether it can be done (vgtui.watch.swap)."""
    if isinstance(command, (Pause, Resume)):
        return command
    if isinstance(command, Step):
        if command.count < 1:
            raise Refused("step: the count must be 1 or more")
        return command
    if isinstance(command, SelectLayer):
        if n_layers == 0 and command.layer != 1:
            raise Refused(f"layer {command.layer}: the layers are not known yet (they come with the first step); "
                          "try again in a moment")  # fmt: skip
        if not 1 <= command.layer <= max(n_layers, 1):
            raise Refused(f"layer {command.layer}: allowed: 1 to {n_layers}")
        return command
    if isinstance(command, Toggle):
        if command.name in REFUSALS and not (swap and command.name == "activation"):
            raise Refused(REFUSALS[command.name])
        try:
            normalize(command)
        except ToggleError as exc:
            raise Refused(str(exc)) from None
        return command
    if isinstance(command, Reset):
        raise Refused(NO_RESET)
    if isinstance(command, (Seek, SetSpeed, NextEvent)):
        raise Refused(REPLAY_ONLY)
    raise Refused(f"unknown command {type(command).__name__}")


LIVE_SWAP = "ReLU / Leaky ReLU in place of the hidden sigmoid/tanh (a), live and undoable"


def for_user(verdicts: tuple[Verdict, ...], swap: bool = False) -> tuple[Verdict, ...]:
    """The diagnoser's verdicts with the remedies that apply to a user's model (architecture ones in words);
    with `swap` (allow_swap and modules it can swap) the activation remedy is live."""
    out = []
    for v in verdicts:
        remedies = USER_REMEDIES.get(v.code, v.remedies)
        if swap and v.code in ("vanishing", "saturated"):
            remedies = (LIVE_SWAP, *remedies[1:])
        text = v.text.replace("Turn gradient clipping on, then reset.", "Turn gradient clipping on (c).")
        text = text.replace("; training paused", "").replace("(chance level is", "(the first loss was")
        out.append(Verdict(v.code, v.severity, text, remedies))
    return tuple(out)
