"""The keys of a comparison (a mixin of VgtuiApp): f forks run B from the run at this step, w sends the toggle keys
to the other run, F ends the comparison keeping the run the user picks in a small dialog. No torch."""

from __future__ import annotations

import os
import time
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label

from vgtui.contract import EndCompare, Fork, Target
from vgtui.tui.compare_charts import compare_replot
from vgtui.tui.data import view_csv, window_view


class KeepPrompt(ModalScreen[str | None]):
    """Asks which run to keep when the comparison ends: a keeps A, b keeps B, Escape cancels."""

    BINDINGS = [
        Binding("a", "keep('A')", "keep A", id="vgtui.keep.a"),
        Binding("b", "keep('B')", "keep B", id="vgtui.keep.b"),
        Binding("escape", "keep('')", "cancel", key_display="esc", id="vgtui.keep.cancel"),
    ]
    DEFAULT_CSS = """
    KeepPrompt { align: center middle; }
    #keep-box { width: 64; max-width: 95%; height: auto; border: thick $accent; background: $surface; padding: 0 1; }
    """

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def compose(self) -> ComposeResult:
        with Vertical(id="keep-box"):
            yield Label("End the comparison and keep which run?")
            yield Label("  a  keep A, the preset")
            yield Label(f"  b  keep {self.label}")
            yield Label("  Escape: go on comparing")

    def action_keep(self, run: str) -> None:
        self.dismiss(run or None)


COMPARING_KEYS = ("target", "end_compare")  # shown (and run) only while comparing


class CompareActions:
    """f, w and F. Relies on VgtuiApp for send(), notify(), push_screen(), snap and session."""

    _was_comparing = False

    def replot(self, chart, frame) -> None:
        """Draw a chart from its frame: both runs while comparing (vgtui.tui.compare_charts)."""
        compare_replot(chart, frame)

    def compare_key_shown(self, action: str) -> bool:
        return action not in COMPARING_KEYS or (self.snap is not None and self.snap.compare is not None)

    def note_comparing(self, snap) -> None:
        """A comparison started or ended: the footer shows w and F, or hides them."""
        if (snap.compare is not None) != self._was_comparing:
            self._was_comparing = snap.compare is not None
            self.refresh_bindings()

    def _can_compare(self) -> bool:
        if self.session is None:
            self.notify("No training session is running — press p to pick a preset.", severity="warning")
            return False
        if not hasattr(self.session, "history_b"):
            self.notify("This session cannot compare runs (only a run vgtui trains can fork a run B).",
                        severity="warning")  # fmt: skip
            return False
        return True

    def _comparing(self) -> bool:
        if self.snap is None or self.snap.compare is None:
            self.notify("Not comparing: press f to fork a run B from this run.", severity="warning")
            return False
        return True

    def action_save(self) -> None:
        """S: the screenshot and A's CSV as always; while comparing, B's chart data too, in FILE-B.csv."""
        super().action_save()  # type: ignore[misc]
        snap, history_b = self.snap, getattr(self.session, "history_b", None)
        if snap is None or snap.compare is None or history_b is None or self.is_web:
            return
        name = self.config.name if self.config else "vgtui"
        path = Path(os.getcwd(), f"vgtui-{name}-step{snap.step}-{time.strftime('%Y%m%d-%H%M%S')}-B.csv")
        try:
            path.write_text(view_csv(window_view(history_b, self.since_step, None), snap.compare.b.layer_names))
        except OSError as exc:
            self.notify(f"Could not save {path.name}: {exc.strerror or exc}", title="save", severity="error")
            return
        self.notify(f"{path.name} (run B)", title="saved", markup=False)

    def action_fork(self) -> None:
        """f: run B := this run now (with --compare's toggles, if any); toggle keys then go to B."""
        if self._can_compare():
            self._optimistic = None
            self.send(Fork())

    def action_target(self) -> None:
        """w: the toggle keys go to the other run."""
        if self._can_compare() and self._comparing():
            self._optimistic = None
            self.send(Target("A" if self.snap.compare.target == "B" else "B"))

    def action_end_compare(self) -> None:
        """F: end the comparison, keeping the run chosen in the dialog."""
        if not (self._can_compare() and self._comparing()):
            return

        def done(run: str | None) -> None:
            if run in ("A", "B"):
                self._optimistic = None
                self.send(EndCompare(run))

        self.push_screen(KeepPrompt(self.snap.compare.label), done)
