"""Modal screens that ask the user something: the preset picker and the clip-threshold prompt."""

from __future__ import annotations

import re

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from vgtui.config import RunConfig
from vgtui.tui.keys import parse_clip


def preset_prompt(cfg: RunConfig) -> Text:
    """One line per preset: its name and title."""
    return Text.assemble((f"{cfg.name:<16}", "bold cyan"), " ", (cfg.title, "bold"))


def preset_details(cfg: RunConfig) -> Text:
    """What the highlighted scene shows."""
    return Text(" ".join((cfg.description or cfg.title).split()))


def preset_try(cfg: RunConfig) -> Text:
    """What to try in the highlighted scene (always shown, under its description)."""
    t = Text("Try: ", "bold")
    t.append(" · ".join(cfg.suggest) if cfg.suggest else "the keys in the footer; ? explains them", "bold cyan")
    return t


class PresetPicker(ModalScreen[RunConfig | None]):
    """A list of presets (title + description); Enter picks one, Escape cancels, q quits.

    At 80x24 it fits: the description scrolls (PageUp/PageDown) in the room left, the Try line stays."""

    BINDINGS = [
        Binding("enter", "pick", "start", key_display="⏎", priority=True, id="vgtui.picker.pick"),
        Binding("escape", "cancel", "cancel", key_display="esc", id="vgtui.picker.cancel"),
        Binding("pageup", "scroll_details(-1)", "", show=False, priority=True, id="vgtui.picker.up"),
        Binding("pagedown", "scroll_details(1)", "more", key_display="PgDn", priority=True, id="vgtui.picker.down"),
        Binding("q", "app.quit", "quit", id="vgtui.picker.quit"),
    ]

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
            with VerticalScroll(id="picker-scroll", can_focus=False):
                yield Static(id="picker-details")
            yield Static(id="picker-try")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        names = [p.name for p in self.presets]
        if self.current in names:
            options.highlighted = names.index(self.current)
        options.focus()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        cfg = self.presets[event.option_index]
        self.query_one("#picker-details", Static).update(preset_details(cfg))
        self.query_one("#picker-try", Static).update(preset_try(cfg))
        self.query_one("#picker-scroll").scroll_home(animate=False)

    def action_scroll_details(self, pages: int) -> None:
        scroll = self.query_one("#picker-scroll", VerticalScroll)
        scroll.scroll_to(y=scroll.scroll_y + pages * max(1, scroll.size.height - 1), animate=False)

    def action_pick(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is not None:
            self.dismiss(self.presets[options.highlighted])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.presets[event.option_index])

    def action_cancel(self) -> None:
        self.dismiss(None)


NUMBER_CHARS = "0123456789.eE+-"


class NumberInput(Input):
    """An input for a number: it takes only the characters of one, so q still quits while it has the focus."""

    def check_consume_key(self, key: str, character: str | None) -> bool:
        return character is not None and character in NUMBER_CHARS


class ClipPrompt(ModalScreen[float | None]):
    """Asks for a gradient-clipping threshold; a bad value shows a message and sends nothing."""

    BINDINGS = [
        Binding("escape", "cancel", "cancel", key_display="esc", id="vgtui.clip.cancel"),
        Binding("q", "app.quit", "quit", priority=True, id="vgtui.clip.quit"),  # a number never has a q
    ]

    def __init__(self, current: float) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="clip-box"):
            yield Label("Clip gradients to a total norm of (Enter applies, Escape cancels):")
            yield NumberInput(value=f"{self.current:g}", restrict=f"[{re.escape(NUMBER_CHARS)}]*", id="clip-input")
            yield Label("", id="clip-error", classes="error")
        yield Footer(compact=True, show_command_palette=False)

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
