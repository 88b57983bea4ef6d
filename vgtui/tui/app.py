"""The vgtui dashboard: polls a training session on a timer and draws what it publishes.

The session is anything that looks like `vgtui.contract.SessionLike`, built by a factory so tests can inject
a fake. The UI never waits on training: it pulls `latest()` and a decimated `history.view()` at a modest rate,
redraws only what changed, and turns keys into Commands.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import ClassVar

from textual import events
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import BindingType
from textual.containers import Container, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from vgtui.config import ConfigError, RunConfig
from vgtui.contract import (
    Command,
    ModelState,
    NextEvent,
    Pause,
    Reset,
    Resume,
    Seek,
    SelectLayer,
    SessionLike,
    SetSpeed,
    Snapshot,
    Step,
    Toggle,
)
from vgtui.history import HistoryView
from vgtui.tui.charts import (
    Chart,
    Frame,
    GradBarsChart,
    GradHistoryChart,
    HistogramChart,
    LossChart,
    TimeGradChart,
    UpdateRatioChart,
    WeightChart,
)
from vgtui.tui.help import HelpScreen
from vgtui.tui.keys import (
    ACTIONS,
    DEFAULT_CLIP,
    apply_toggle,
    bindings,
    fmt_value,
    model_state_from_config,
    toggle_for,
)
from vgtui.tui.panels import DiagnosisPanel, StatusBar, WhyPanel, shown, too_small_text
from vgtui.tui.picker import ClipPrompt, PresetPicker

DEFAULT_REFRESH_HZ = 4.0  # ticks per second: measured with the trainer in a child process, 4 Hz kept ~0.9x (see README)
MIN_SIZE = (80, 24)  # below this: a "terminal too small" message
FULL_SIZE = (120, 36)  # below this: only loss, per-layer gradients and the diagnosis
SOON_AFTER_KEY = (0.03, 0.08, 0.15)  # extra polls (seconds) after a command is sent
CHARTS_PER_TICK = 3  # stale charts redrawn per tick, oldest first (spreads the plotext cost over ticks)
NOTICE_SEVERITY = {"info": "information", "warn": "warning", "error": "error"}

SessionFactory = Callable[[RunConfig], SessionLike]


class VgtuiApp(App[int]):
    """The live dashboard for one training session at a time."""

    CSS_PATH = Path(__file__).with_name("vgtui.tcss")
    TITLE = "vgtui"
    BINDINGS: ClassVar[list[BindingType]] = bindings()

    def __init__(
        self,
        config: RunConfig | None,
        session_factory: SessionFactory,
        refresh_hz: float | None = None,
        presets: Callable[[], list[RunConfig]] | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.session_factory = session_factory
        self.refresh_hz = refresh_hz if refresh_hz and refresh_hz > 0 else DEFAULT_REFRESH_HZ
        self.presets_loader = presets
        self.charts_per_tick = CHARTS_PER_TICK
        self.session: SessionLike | None = None
        self._events_drawn = 0
        self.session_error: str | None = None
        self.selected = 0  # layer (0-based) whose histogram and chain-rule row are highlighted
        self.notices_shown: list[str] = []
        self._quitting = False
        self._reset_view_state()

    def _reset_view_state(self) -> None:
        self.snap: Snapshot | None = None
        self._view: HistoryView | None = None
        self._drawn: dict[str, object] = {}  # chart id -> the key of the data it last drew
        self._drawn_at: dict[str, float] = {}  # chart id -> when it was last drawn
        self._last_notice_seq = -1
        self._optimistic: ModelState | None = None
        self._sent_at = (-1, 0)  # (step, notice count) of the snapshot current when a toggle was sent
        self._pending = ""
        self._paused_local: bool | None = None
        self._paused_at = 0.0
        self._clip_threshold = DEFAULT_CLIP

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        self.status_bar = StatusBar(id="status")
        self.diagnosis = DiagnosisPanel(id="diagnosis")
        self.why = WhyPanel(id="why")
        self.time_charts: list[Chart] = [
            LossChart(id="loss"),
            GradHistoryChart(id="grad-history"),
            WeightChart(id="weights"),
            UpdateRatioChart(id="update-ratio"),
        ]
        self.snap_charts: list[Chart] = [GradBarsChart(id="grad-bars"), TimeGradChart(id="time-grad")]
        self.snap_charts.append(HistogramChart(id="histogram"))
        loss, history, weights, ratio = self.time_charts
        bars, time_grad, histogram = self.snap_charts
        with Container(id="root") as self.root:
            yield self.status_bar
            with Vertical(id="main"):
                with Horizontal(id="row-top"):
                    yield from (loss, bars, time_grad)
                with Horizontal(id="row-mid"):
                    yield from (history, weights, ratio)
                with Horizontal(id="row-bottom"):
                    yield from (histogram, self.why, self.diagnosis)
            self.too_small = Static(id="too-small")
            yield self.too_small
        self.footer = Footer()
        yield self.footer

    def on_mount(self) -> None:
        self._apply_size(self.size.width, self.size.height)
        self._timer = self.set_interval(1.0 / self.refresh_hz, self.poll, name="vgtui-poll")
        if self.config is None:
            self.action_presets()
        else:
            self.start_session(self.config)

    def on_resize(self, event: events.Resize) -> None:
        self._apply_size(event.size.width, event.size.height)

    def _apply_size(self, width: int, height: int) -> None:
        """CSS classes by terminal size: -tiny (message only), -compact (the essentials), else everything."""
        root = self.root
        tiny = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        compact = not tiny and (width < FULL_SIZE[0] or height < FULL_SIZE[1])
        root.set_class(tiny, "-tiny")
        root.set_class(compact, "-compact")
        self.footer.display = not tiny
        self.too_small.update(too_small_text(width, height, *MIN_SIZE))
        self._drawn.clear()
        self.call_after_refresh(self.poll)  # redraw at the new sizes

    # ------------------------------------------------------------------ session lifecycle

    def start_session(self, config: RunConfig) -> None:
        """Stop (join) the current session, then build and start one for `config`."""
        self.stop_session()
        self.config = config
        self.session_error = None
        self._reset_view_state()
        try:
            session = self.session_factory(config)
            session.start()
        except Exception as exc:  # noqa: BLE001 - shown to the user instead of a dead screen
            self.session_error = f"{type(exc).__name__}: {exc}"
            self.notify(self.session_error, title="could not start", severity="error", markup=False)
            self.session = None
        else:
            self.session = session
        self.poll()

    def stop_session(self) -> None:
        """Stop and join the session (idempotent)."""
        session, self.session = self.session, None
        if session is not None:
            try:
                session.stop(timeout=1.0)
            except Exception as exc:  # noqa: BLE001
                self.log.error(f"stopping the session failed: {exc}")

    def on_unmount(self) -> None:
        self._quitting = True
        self.stop_session()

    def send(self, command: Command) -> None:
        if self.session is None:
            self.notify("No training session is running — press p to pick a preset.", severity="warning")
            return
        self.session.send(command)
        # The worker applies a command within a step or two: look again soon, so the new marker and
        # status appear well before the next regular tick.
        for delay in SOON_AFTER_KEY:
            self.set_timer(delay, self.poll)

    # ------------------------------------------------------------------ polling and drawing

    def poll(self) -> None:
        """Pull the newest snapshot and history; redraw only the widgets whose data changed."""
        if self._quitting or not self.is_running:
            return
        session = self.session
        snap = session.latest() if session is not None else None
        if snap is not None and snap is not self.snap:
            self._show_notices(snap)
            if self._optimistic is not None and self._confirmed(snap):
                self._optimistic, self._pending = None, ""
        self.snap = snap
        panels_key = (id(snap), self._pending, self.session_error, self.config.name if self.config else "")
        if self._drawn.get("panels") != panels_key:
            self._draw_panels(snap)
            self._drawn["panels"] = panels_key
        if session is None or snap is None:
            return
        version = session.history.version
        time_key = (version, len(snap.events), self.selected)
        snap_key = (id(snap), self.selected)
        visible = [c for c in self.time_charts if shown(c)]
        stale = [c for c in visible if self._drawn.get(c.id or "") != time_key]
        stale += [c for c in self.snap_charts if shown(c) and self._drawn.get(c.id or "") != snap_key]
        why_stale = shown(self.why) and self._drawn.get("why") != snap_key
        if not stale and not why_stale:
            return
        if all(c.id in self._drawn for c in stale):  # after a resize or at start everything is drawn at once
            stale.sort(key=lambda c: self._drawn_at.get(c.id or "", 0.0))
            if len(snap.events) != self._events_drawn:  # a new marker: the loss chart goes first
                stale.sort(key=lambda c: not isinstance(c, LossChart))
                self._events_drawn = len(snap.events)
            stale = stale[: self.charts_per_tick]
        with self.batch_update():
            if any(c in visible for c in stale):
                self._view = session.history.view(max_points=2 * max(c.columns for c in visible))
            for chart in stale:
                self._draw(chart, time_key if chart in self.time_charts else snap_key)
            if why_stale:
                self.why.show(snap, self.selected)
                self._drawn["why"] = snap_key

    def _confirmed(self, snap: Snapshot) -> bool:
        """Whether a snapshot shows the engine has handled the toggles sent (applied, refused, or stepped on)."""
        step, notices = self._sent_at
        return snap.model == self._optimistic or snap.step > step or len(snap.notices) > notices

    def _draw(self, chart: Chart, key: object) -> None:
        if self._drawn.get(chart.id or "") == key or self.snap is None:
            return
        view = self._view if self._view is not None else self.session.history.view(max_points=2)  # type: ignore[union-attr]
        chart.replot(Frame(self.snap, view, self.selected))
        self._drawn[chart.id or ""] = key
        self._drawn_at[chart.id or ""] = time.monotonic()

    def _draw_panels(self, snap: Snapshot | None) -> None:
        name = self.config.name if self.config else "(no preset)"
        self.status_bar.show(snap, name, self._pending)
        self.diagnosis.show(snap, self.session_error)
        rnn = snap is not None and snap.time_grad_norm is not None
        self.root.set_class(rnn, "-rnn")

    def _show_notices(self, snap: Snapshot) -> None:
        for notice in snap.notices:
            if notice.seq > self._last_notice_seq:
                self._last_notice_seq = notice.seq
                self.notices_shown.append(notice.text)
                severity = NOTICE_SEVERITY.get(notice.level, "information")
                self.notify(notice.text, title="engine", severity=severity, timeout=6, markup=False)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ actions

    def model(self) -> ModelState | None:
        """The model as the app believes it is now (snapshot, pending toggles, or the config)."""
        if self._optimistic is not None:
            return self._optimistic
        if self.snap is not None:
            return self.snap.model
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

    def action_step(self) -> None:
        self.send(Step(1))
        self._paused_local, self._paused_at = True, time.monotonic()

    def action_reset(self) -> None:
        self.send(Reset())

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
        if self.snap is not None and self.snap.hist_layer != self.selected:
            self.send(SelectLayer(self.selected + 1))
        self.poll()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

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
            self.start_session(config)
        elif self.session is None and self.config is None:
            self.exit(0)

    async def action_quit(self) -> None:
        self._quitting = True
        self.stop_session()
        self.exit(0)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for a in ACTIONS:
            if a.action == "quit":
                continue
            key = a.key_display or a.keys.split(",")[0]
            yield SystemCommand(f"{a.help} ({key})", a.help, partial(self.run_action, a.action))


def run_dashboard(
    config: RunConfig | None,
    session_factory: SessionFactory,
    refresh_hz: float | None = None,
) -> int:
    """Run the dashboard until the user quits; the session is always stopped. Returns an exit code."""
    app = VgtuiApp(config, session_factory, refresh_hz)
    try:
        app.run()
    finally:
        app.stop_session()
    return app.return_code or 0
