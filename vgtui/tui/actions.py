"""The dashboard's key actions: each turns a key into a Command for the session (a mixin of VgtuiApp)."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

from vgtui.config import ConfigError, RunConfig
from vgtui.contract import ModelState, NextEvent, Pause, Reset, Resume, Seek, SelectLayer, SetSpeed, Step, Toggle
from vgtui.tui.compare_panels import model_of
from vgtui.tui.data import view_csv, window_view
from vgtui.tui.help import HelpScreen
from vgtui.tui.keys import apply_toggle, fmt_value, model_state_from_config, toggle_for
from vgtui.tui.picker import ClipPrompt, PresetPicker


class DashboardActions:
    """Key actions. Relies on VgtuiApp for send(), notify(), push_screen(), snap, config and session."""

    LESSON = False  # vgtui present: n and p move through the lesson (the help says so)

    def model(self) -> ModelState | None:
        """The model as the app believes it is now (snapshot, pending toggles, or the config)."""
        if self._optimistic is not None:
            return self._optimistic
        if self.snap is not None:
            return model_of(self.snap)  # comparing: the model of the run the toggle keys go to
        return model_state_from_config(self.config) if self.config else None

    def _toggle(self, action: str) -> None:
        model = self.model()
        if model is None or self.session is None:
            self.notify("No training session is running — press p to pick a preset.", severity="warning")
            return
        command = toggle_for(action, model, self._clip_threshold)
        if command is None:
            self.notify(f"depth is already {model.depth}; it cannot go further", severity="warning")
            return
        self._send_toggle(command, model)

    def _send_toggle(self, command: Toggle, model: ModelState) -> None:
        self.send(command)
        self._optimistic = apply_toggle(model, command)
        if self.snap is not None:
            self._sent_at = (self.snap.step, len(self.snap.notices))
        self._pending = f"⇢ {command.name}={command.value} sent"
        self._pending_at = time.monotonic()
        self.status_bar.show(self.snap, self.config.name if self.config else "", self._pending)

    def action_toggle(self, name: str) -> None:
        """A toggle key (a, i, b, s, c, +, -, [, ], l): the next value from the model as it is now."""
        if name == "clip":
            model = self.model()
            if model is not None and model.clip is not None:
                self._clip_threshold = model.clip
        self._toggle(name)

    def action_clip_prompt(self) -> None:
        model = self.model()
        current = model.clip if model is not None and model.clip is not None else self._clip_threshold

        def done(value: float | None) -> None:
            if value is None or self.session is None:
                return
            self._clip_threshold = value
            self._send_toggle(Toggle("clip", fmt_value(value)), self.model() or model)  # type: ignore[arg-type]

        self.push_screen(ClipPrompt(current), done)

    def is_paused(self) -> bool:
        if self._paused_local is not None and time.monotonic() - self._paused_at < 1.5:
            return self._paused_local
        return self.snap is not None and self.snap.status == "paused"

    def action_pause(self) -> None:
        paused = self.is_paused()
        self.send(Resume() if paused else Pause())
        self._paused_local, self._paused_at = not paused, time.monotonic()

    def action_play(self) -> None:
        """Replay: play / pause the recording."""
        self.action_pause()

    def action_step(self) -> None:
        self.send(Step(1))
        self._paused_local, self._paused_at = True, time.monotonic()

    def action_reset(self) -> None:
        self.send(Reset())

    def action_restart(self) -> None:
        """Replay: back to the first recorded step."""
        self.send(Reset())

    def action_restore(self) -> None:
        """A new session from the preset as it was started or picked: its settings, fresh weights."""
        config = self.original_config
        if config is None:
            self.notify("No preset to restore — press p to pick one.", severity="warning")
            return
        self.start_session(config)
        self.notify(f"{config.name}: the preset's settings, fresh weights", title="restored")

    def action_clear_charts(self) -> None:
        """The time charts show only the steps from now on (X shows the whole run again)."""
        self.since_step = self.snap.step if self.snap is not None else 0
        self.redraw()
        self.notify(f"Charts from step {self.since_step:,} on · X shows the whole run", title="cleared")

    def action_whole_run(self) -> None:
        self.since_step = None
        self.redraw()

    def action_save(self) -> None:
        """An SVG screenshot and a CSV of the time charts' data (the same window), both in the current directory
        (in a browser: both downloaded)."""
        snap, name = self.snap, self.config.name if self.config else "vgtui"
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = f"vgtui-{name}-step{snap.step if snap is not None else 0}-{stamp}"
        svg, csv = f"{base}.svg", f"{base}.csv"
        names = snap.layer_names if snap is not None else ()
        data = view_csv(window_view(self.session.history, self.since_step, None), names) if self.session else ""
        here = os.getcwd()
        try:
            if self.is_web:
                self.deliver_text(io.StringIO(self.export_screenshot()), save_filename=svg)
                self.deliver_text(io.StringIO(data), save_filename=csv)
            else:
                self.save_screenshot(svg, here)
                Path(here, csv).write_text(data, encoding="utf-8")
        except OSError as exc:
            self.notify(f"Could not save in {here}: {exc.strerror or exc}", title="save", severity="error")
            return
        self.notify(f"{svg}\n{csv}\nin {here}", title="saved", markup=False)

    def action_seek(self, records: int) -> None:
        """Replay: move through the recording (a live session answers that it cannot)."""
        self.send(Seek(records))

    def action_next_event(self) -> None:
        self.send(NextEvent())

    def action_speed(self, factor: float) -> None:
        self.send(SetSpeed(factor))

    def action_select_layer(self, delta: int) -> None:
        n = len(self.snap.layer_names) if self.snap is not None else 0
        if n == 0:
            return
        self.selected = max(0, min(n - 1, self.selected + delta))
        if self.snap is not None and self.snap.hist_layer != self.selected and not self.replaying:
            self.send(SelectLayer(self.selected + 1))
        self.poll()

    def action_help(self) -> None:
        """The help screen: built once (its text rendered once), then shown again as it is."""
        if isinstance(self.screen, HelpScreen):
            return
        if not self.is_screen_installed("help"):
            self.install_screen(HelpScreen(lesson=self.LESSON), "help")
        self.push_screen("help")

    def action_presets(self) -> None:
        error = None
        presets: list[RunConfig] = []
        try:
            if self.presets_loader is not None:
                presets = self.presets_loader()
            else:
                from vgtui.presets import list_presets

                presets = list_presets()
        except ConfigError as exc:
            error = str(exc)
        current = self.config.name if self.config else None
        self.push_screen(PresetPicker(presets, current, error), self._preset_picked)

    def _preset_picked(self, config: RunConfig | None) -> None:
        if config is not None:
            self.original_config = config
            self.start_session(config)
        elif self.session is None and self.config is None:
            self.exit(0)
