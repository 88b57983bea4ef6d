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
output back, by each layer's *local gain*: its activation's slope times the scale of its weights. A
sigmoid's slope is at most 0.25; with PyTorch's default init each layer of the deep-sigmoid scene has a
gain of about 0.15, and twenty such factors multiply to 0.15²⁰ ≈ 3e-17. The last layers learn; the first
ones receive almost nothing and their weights stop moving. Factors above 1 do the opposite: the gradient
*explodes*.

**Where you see it.**

- *Loss / accuracy* — a plateau: the loss barely moves for a long time.
- *Gradient norm per layer* — the norm of each layer's weight gradient, falling by decades from the
  output (right) to the input (left). The axis is logarithmic: each tick is ten times the one below.
- *Gradient norm over steps* — the line of layer 1 sits many decades below the last layer's.
- *Mean |w| over steps* — "epoch vs weight value": flat lines are layers whose weights no longer change.
- *Update ratio ‖ΔW‖/‖W‖* — the change the last step really made to each layer's weights; *frozen*
  where it made none at all (the update is below float32 resolution).
- *Gradient histogram* — the selected layer's gradient entries before clipping, as log10|g|; a pile far
  to the left is a layer that receives nothing (`j`/`k` choose the layer).
- *Why* — the chain rule, layer by layer: each layer's mean activation *slope* (mean f′ over the batch:
  about 0.245 for a sigmoid, at most 1 for tanh, the active share for ReLU), its *gain* ‖∂L/∂h_in‖ /
  ‖∂L/∂h_out‖ and the running *product* back from the output. Also saturation (units whose slope is below
  0.01) and dead ReLUs (units that output 0 for every input of the batch); "–" where one does not apply.
- *RNN presets* — the gradient per time step: how much of the loss reaches the first inputs.
- Vertical magenta lines mark every change you made, e.g. `relu @ 1200`.

**Remedies, and their keys.**

- `a` **ReLU-family activations** — slope 1 where active. Pair them with He init (`i`): with weights
  that are too small the product still shrinks. Watch for dead units.
- `i` **Initialisation** — Xavier keeps a *tanh* layer's gain near 1, He a ReLU layer's; neither can
  lift a sigmoid's slope above 0.25. Re-initialises the weights (the gain set by the preset is kept).
- `b` **BatchNorm** — divides each layer's pre-activations by their spread over the batch; where that
  spread is small, the division scales the gradient up on the way back (in the BatchNorm scene each
  layer's gain rises from below 0.2 to about 1).
- `s` **Skip connections** — the gradient gets a path that adds instead of multiplies.
- `c` / `C` **Gradient clipping** — caps *exploding* gradients (the opposite problem); `C` sets the threshold.
- `+` / `-` **Learning rate** ×2 / ÷2 — too low: the loss barely moves while the gradient bars stay level
  (unlike vanishing); too high: units die or the run diverges.
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
