"""The help screen (F1 / ?): what vanishing gradients are, how each chart shows them, and the keys that fix them."""

from __future__ import annotations

import re
from functools import lru_cache

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.segment import Segment
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from vgtui.tui.keys import ACTIONS, key_of

HELP_TEXT = """\
# vgtui — watching gradients vanish

**The problem.** Backpropagation computes a layer's gradient by multiplying, layer after layer from the
output back, by each layer's *local gain*: its activation's slope times the scale of its weights. A
sigmoid's slope is at most 0.25; with PyTorch's default init each layer of the deep-sigmoid scene has a
gain of about 0.15, and twenty such factors multiply to 0.15²⁰ ≈ 3e-17. The last layers learn; the first
ones receive almost nothing and their weights stop moving. Factors above 1 do the opposite: the gradient
*explodes*.

**Where you see it.**

- *Status bar* — the loss, the accuracy and the *weight-gradient ratio* ‖∂L/∂W₁‖ / ‖∂L/∂W_L‖
  (`grad L1/L20`): how much of the last layer's weight gradient layer 1 gets (RNN: ‖∂L/∂h‖ of time step 1
  over the last step's).
- *Loss / accuracy* — a plateau: the loss barely moves for a long time. The accuracy has its own pane
  (0-100 %) below the loss; the loss axis turns logarithmic (log) where the loss spans more than two
  decades, e.g. after a spike.
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
  ‖∂L/∂h_out‖ and the running *product* back from the output: ‖∂L/∂h‖ at the layer's input over ‖∂L/∂h‖
  at the output, the gradient of the *activations* — not the weight-gradient ratio of the status bar, so
  the two numbers differ. Also saturation (units whose slope is below 0.01) and dead ReLUs (units that
  output 0 for every input of the batch); "–" where one does not apply or the gradient underflowed
  (`<1e-38`: below float32's range).
- *RNN presets* — the gradient per time step: how much of the loss reaches the first inputs.
- Vertical magenta lines mark every change you made, e.g. `relu @ 1200`; `x` clears the charts when
  they crowd. Each line of a chart has its own mark (● ■ ▲ ◆ ✚), shown in its legend too.

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

CONTROL_KEYS = ("pause", "step", "reset", "restore", "presets", "clear_charts", "whole_run", "save", "layer_down",
                "layer_up", "help", "quit")  # fmt: skip
REPLAY_KEYS = ("play", "seek_back", "seek_forward", "slower", "faster", "next_event", "restart")
COMPARE_KEYS = ("fork", "target", "end_compare")
COMPARE_TEXT = """
**Comparing a remedy side by side** (or `vgtui launch PRESET --compare "activation=leaky_relu,init=he"`): run B
starts as an exact copy of run A and trains on the same batches, so the two stay equal until a toggle changes B.
Every chart then shows both runs; the legend names B by what differs from A and the step it was forked at
(`B: leaky_relu+he @ 300`). The status bar gives the gap B − A of loss and accuracy and the run the toggle keys
change; the diagnosis has one verdict per run; the chain-rule table has a B/A column.
"""


LESSON_TEXT = """**Presenting a lesson** (`vgtui present`).

- `n` the lesson's next step · `p` the step before (each loads its scene)
- `1` `2` `3` the room's guess when the panel asks (then the step's keys are pressed for you) · `enter` presses
  the keys of a step without a question
- every key below still works; single step and the scene picker are in the command palette (`ctrl+p`)

"""
LESSON_TAKES = ("step", "presets")  # keys a lesson uses for itself (n, p)


def help_markdown(lesson: bool = False) -> str:
    """The help text with the control and replay keys appended from the bindings table (one source of truth);
    `lesson`: as `vgtui present` shows it, where n and p move through the lesson."""
    by_id = {a.id: a for a in ACTIONS}
    lines = [HELP_TEXT.replace("**Controls.**", LESSON_TEXT + "**Controls.**") if lesson else HELP_TEXT]
    keys = [i for i in CONTROL_KEYS if not (lesson and i in LESSON_TAKES)]
    lines += [f"- `{key_of(by_id[i])}` {by_id[i].help}" for i in keys]
    lines.append("- `ctrl+p` command palette (every action by name) · `ctrl+q` quit")
    lines.append("\n**Replaying a recording** (`vgtui replay FILE.jsonl`): the toggles are off; instead\n")
    lines += [f"- `{key_of(by_id[i])}` {by_id[i].help.removeprefix('Replay: ')}" for i in REPLAY_KEYS]
    lines.append(COMPARE_TEXT)
    lines += [f"- `{key_of(by_id[i])}` {by_id[i].help.removeprefix('Compare: ')}" for i in COMPARE_KEYS]
    lines.append("\n**Escape**, `?` or `F1` close this help; `q` quits vgtui.")
    return "\n".join(lines)


INLINE = re.compile(r"\*\*(?P<b>.+?)\*\*|`(?P<c>[^`]+)`|\*(?P<i>[^*]+)\*")
INLINE_STYLE = {"b": "bold", "c": "bold reverse", "i": "italic"}


def inline(text: str) -> Text:
    """**bold**, *italic* and `keys` of one paragraph as rich Text."""
    out, at = Text(), 0
    for m in INLINE.finditer(text):
        out.append(text[at : m.start()])
        kind = m.lastgroup or "b"
        out.append(f" {m.group(kind)} " if kind == "c" else m.group(kind), INLINE_STYLE[kind])
        at = m.end()
    out.append(text[at:])
    return out


class Bullets:
    """A bullet list with hanging indents (a rich Table does the same at several times the cost)."""

    def __init__(self, items: list[Text]) -> None:
        self.items = items

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for item in self.items:
            for k, line in enumerate(item.wrap(console, max(10, options.max_width - 2))):
                yield Text.assemble("• " if k == 0 else "  ", line)


class Rendered:
    """A renderable drawn once per width, then its lines reused (the help text does not change)."""

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable
        self.lines: dict[int, list[list[Segment]]] = {}

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        if width not in self.lines:
            self.lines[width] = console.render_lines(self.renderable, options.update(height=None), pad=False)
        for line in self.lines[width]:
            yield from line
            yield Segment.line()


@lru_cache(maxsize=2)
def help_renderable(lesson: bool = False) -> Rendered:
    """The help text as rich renderables, built once and rendered once per width: headings, paragraphs and
    bullet lists. (Textual's Markdown widget mounts a widget per block: 1.2-1.6 s to open on a busy machine.)"""
    parts: list[RenderableType] = []
    for block in help_markdown(lesson).split("\n\n"):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        if lines[0].startswith("# "):
            parts.append(Text(lines[0][2:], style="bold underline"))
        elif lines[0].startswith("- "):
            items: list[str] = []
            for line in lines:
                if line.startswith("- "):
                    items.append(line[2:])
                else:
                    items[-1] += " " + line.strip()
            parts.append(Bullets([inline(item) for item in items]))
        else:
            parts.append(inline(" ".join(line.strip() for line in lines)))
        parts.append(Text(""))
    return Rendered(Group(*parts[:-1]))


class HelpScreen(ModalScreen[None]):
    """A modal help page: Escape, ? or F1 close it; q quits vgtui, as everywhere."""

    BINDINGS = [
        Binding("escape,question_mark,f1", "close", "close", key_display="esc", id="vgtui.help.close"),
        Binding("q", "app.quit", "quit", id="vgtui.help.quit"),
    ]

    def __init__(self, lesson: bool = False) -> None:
        super().__init__()
        self.lesson = lesson

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Static(help_renderable(self.lesson), id="help-text")
        yield Footer(compact=True, show_command_palette=False)

    def action_close(self) -> None:
        self.dismiss(None)
