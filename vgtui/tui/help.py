"""The help screen (F1 / ?): what vanishing gradients are, how each chart shows them, and the keys that fix them."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from vgtui.tui.keys import ACTIONS

HELP_TEXT = """\
# vgtui — watching gradients vanish

**The problem.** Backpropagation computes a layer's gradient by multiplying, layer after layer from the
output back, by each layer's *local gain* (its weights times its activation's slope). A sigmoid's slope is
at most 0.25, so twenty sigmoid layers multiply the signal by something like 0.25²⁰ ≈ 1e-12. The last
layers learn; the first ones receive almost nothing and their weights stop moving.

**Where you see it.**

- *Loss / accuracy* — a plateau: the loss barely moves for a long time.
- *Gradient norm per layer* — bars that fall by decades from the output (right) to the input (left).
  The axis is logarithmic: each tick is ten times smaller than the one above it.
- *Gradient norm over steps* — the line of layer 1 sits many decades below the last layer's.
- *Mean |w| over steps* — flat lines: those layers' weights no longer change.
- *Update ratio ‖ΔW‖/‖W‖* — around 1e-3 is healthy; 1e-8 means the layer is frozen.
- *Gradient histogram* — the selected layer's gradient entries, as log10|g|; a pile far to the left is a
  layer that receives nothing (`j`/`k` choose the layer).
- *Why* — saturation (units whose slope is ~0), dead ReLUs (units that never fire), and the chain rule:
  each layer's gain and the running product back from the output.
- *RNN presets* — the gradient per time step: how much of the loss reaches the first inputs.
- Vertical magenta lines mark every change you made, e.g. `relu @ 1200`.

**Remedies, and their keys.**

- `a` **ReLU-family activations** — slope 1 where active, so the product stops shrinking (watch for dead units).
- `i` **Initialisation** — Xavier (tanh/sigmoid) or He (ReLU) keeps each layer's gain near 1. Re-initialises.
- `b` **BatchNorm** — re-centres every layer's input so activations stay out of the flat regions.
- `s` **Skip connections** — the gradient gets a path that adds instead of multiplies.
- `c` / `C` **Gradient clipping** — caps *exploding* gradients (the opposite problem); `C` sets the threshold.
- `+` / `-` **Learning rate** ×2 / ÷2 — too low looks like vanishing, too high diverges.
- `[` / `]` **Depth** — fewer layers, fewer factors in the product.
- `l` **LSTM / GRU cells** (RNN presets) — gates let the gradient flow across many time steps.

**Controls.**

"""

CONTROL_KEYS = ("pause", "step", "reset", "presets", "layer_down", "layer_up", "help", "quit")


def help_markdown() -> str:
    """The help text with the control keys appended from the bindings table (one source of truth)."""
    lines = [HELP_TEXT]
    for a in ACTIONS:
        if a.id in CONTROL_KEYS:
            key = a.key_display or a.keys.split(",")[0]
            lines.append(f"- `{key}` {a.help}")
    lines.append("- `ctrl+p` command palette (every action by name) · `ctrl+q` quit\n")
    lines.append("Press **Escape** to close this help.")
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    """A modal help page; Escape, q, ? or F1 close it."""

    BINDINGS = [
        Binding("escape,q,question_mark,f1", "close", "close", id="vgtui.help.close"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Markdown(help_markdown())

    def action_close(self) -> None:
        self.dismiss(None)
