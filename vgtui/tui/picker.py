"""Modal screens that ask the user something: the preset picker and the clip-threshold prompt."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from vgtui.config import RunConfig
from vgtui.tui.keys import parse_clip


def preset_prompt(cfg: RunConfig) -> Text:
    """One line per preset: its name and title."""
    return Text.assemble((f"{cfg.name:<16}", "bold cyan"), " ", (cfg.title, "bold"))


def preset_details(cfg: RunConfig) -> Text:
    """What the highlighted scene shows, and what to try."""
    t = Text(cfg.description or cfg.title)
    if cfg.suggest:
        t.append("\nTry: ", "bold")
        t.append(" · ".join(cfg.suggest), "cyan")
    return t


class PresetPicker(ModalScreen[RunConfig | None]):
    """A list of presets (title + description); Enter picks one, Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "cancel", id="vgtui.picker.cancel")]

    def __init__(self, presets: list[RunConfig], current: str | None = None, error: str | None = None) -> None:
        super().__init__()
        self.presets = presets
        self.current = current
        self.error = error

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-box"):
            yield Label("Choose a scene — Enter starts it, Escape cancels", id="picker-title")
            if self.error:
                yield Label(self.error, id="picker-error", classes="error")
            yield OptionList(*[Option(preset_prompt(p), id=p.name) for p in self.presets], id="picker-list")
            yield Static(id="picker-details")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        names = [p.name for p in self.presets]
        if self.current in names:
            options.highlighted = names.index(self.current)
        options.focus()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.query_one("#picker-details", Static).update(preset_details(self.presets[event.option_index]))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.presets[event.option_index])

    def action_cancel(self) -> None:
        self.dismiss(None)


class ClipPrompt(ModalScreen[float | None]):
    """Asks for a gradient-clipping threshold; a bad value shows a message and sends nothing."""

    BINDINGS = [Binding("escape", "cancel", "cancel", id="vgtui.clip.cancel")]

    def __init__(self, current: float) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="clip-box"):
            yield Label("Clip gradients to a total norm of (Enter applies, Escape cancels):")
            yield Input(value=f"{self.current:g}", id="clip-input")
            yield Label("", id="clip-error", classes="error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            value = parse_clip(event.value)
        except ValueError as exc:
            self.query_one("#clip-error", Label).update(f"✖ {exc}")
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)
