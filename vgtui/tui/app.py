"""The vgtui dashboard: polls a training session on a timer and draws what it publishes.

The session is anything that looks like `vgtui.contract.SessionLike`, built by a factory so tests can inject
a fake. The UI never waits on training: it pulls `latest()` and a decimated `history.view()` at a modest rate,
redraws only what changed, and turns keys into Commands.

A recording played back (a session whose `kind` is "replay", or whose snapshots come from "replay of …")
gets the replay keys and footer instead of the toggles: `check_action` hides the other mode's keys.
"""

from __future__ import annotations

import os
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
from textual.theme import BUILTIN_THEMES
from textual.widgets import Footer, Static

from vgtui.config import RunConfig
from vgtui.contract import Command, ModelState, SessionLike, Snapshot
from vgtui.history import HistoryView
from vgtui.tui.actions import DashboardActions
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
from vgtui.tui.compare_actions import CompareActions
from vgtui.tui.compare_panels import CompareDiagnosisPanel, CompareStatusBar, CompareWhyPanel, model_of
from vgtui.tui.data import window_view
from vgtui.tui.keys import ACTIONS, BOTH, DEFAULT_CLIP, LIVE, REPLAY, action_mode, bindings, key_of
from vgtui.tui.panels import shown, too_small_text
from vgtui.tui.signals import exit_on_signals

DEFAULT_REFRESH_HZ = 4.0  # ticks per second: measured with the trainer in a child process, 4 Hz kept ~0.9x (see README)
MIN_SIZE = (80, 24)  # below this: a "terminal too small" message
FULL_SIZE = (120, 36)  # below this: only loss, per-layer gradients and the diagnosis
SOON_AFTER_KEY = (0.03, 0.08, 0.15)  # extra polls (seconds) after a command is sent
PENDING_TIMEOUT = 5.0  # seconds a sent toggle shows as pending when the engine neither applies nor refuses it
PENDING_SHOWN = 1.5  # seconds '✓ … applied' stays in the status bar
NOTICE_SEVERITY = {"info": "information", "warn": "warning", "error": "error"}
THEME_ALIASES = {"dark": "textual-dark", "light": "textual-light"}

SessionFactory = Callable[[RunConfig], SessionLike]


class VgtuiApp(CompareActions, DashboardActions, App[int]):
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
        theme: str | None = None,
    ) -> None:
        super().__init__()
        if theme:
            self.theme = theme_name(theme)
        self.config = config
        self.original_config = config  # what R restores: the preset as started or picked, before any toggle
        self.session_factory = session_factory
        self.refresh_hz = refresh_hz if refresh_hz and refresh_hz > 0 else DEFAULT_REFRESH_HZ
        self.presets_loader = presets
        self.session: SessionLike | None = None
        self.session_error: str | None = None
        self.selected = 0  # layer (0-based) whose histogram and chain-rule row are highlighted
        self.notices_shown: list[str] = []
        self.replaying = False  # a recording is played: replay keys, footer and status
        self._quitting = False
        self._reset_view_state()

    def _reset_view_state(self) -> None:
        self.snap: Snapshot | None = None
        self._view: HistoryView | None = None
        self._view_b: HistoryView | None = None
        self._drawn: dict[str, object] = {}  # chart id -> the key of the data it last drew
        self._last_notice_seq = -1
        self._optimistic: ModelState | None = None
        self._sent_at = (-1, 0)  # (step, notice count) of the snapshot current when a toggle was sent
        self._pending = ""
        self._pending_at = self._pending_until = 0.0
        self.since_step: int | None = None  # the time charts show the steps from here on (x clears them)
        self._paused_local: bool | None = None
        self._paused_at = 0.0
        self._clip_threshold = DEFAULT_CLIP

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        self.status_bar = CompareStatusBar(id="status")  # (each panel shows both runs while comparing)
        self.diagnosis = CompareDiagnosisPanel(id="diagnosis")
        self.why = CompareWhyPanel(id="why")
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
        self.footer = Footer(compact=True, show_command_palette=False)  # ^p is in the key list, last
        yield self.footer

    def on_mount(self) -> None:
        self._apply_size(self.size.width, self.size.height)
        self._timer = self.set_interval(1.0 / self.refresh_hz, self.poll, name="vgtui-poll")
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        if self.config is None:  # the dashboard behind is drawn first, then the picker opens over it
            self.poll()
            self.call_after_refresh(self.action_presets)
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
        self.call_after_refresh(self._show_keys)
        self.too_small.update(too_small_text(width, height, *MIN_SIZE))
        self._drawn.clear()
        self.call_after_refresh(self.poll)  # redraw at the new sizes

    def _show_keys(self) -> None:
        """In a browser tab the app starts "blurred" until a key or click arrives (the page focuses the terminal
        itself), and Textual's footer lists no keys while blurred: so a web app counts as focused from the start."""
        if self.is_web and not self.app_focus:
            self.app_focus = True
        self.refresh_bindings()

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
        self._set_mode(getattr(self.session, "kind", "") == REPLAY)
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
        failed = getattr(session, "error", None) if snap is None else None
        if failed and self.session_error != failed:  # the worker died before its first snapshot: say why
            self.session_error = failed
            self.notify(failed, title="could not start", severity="error", markup=False)
        if snap is not None and snap is not self.snap:
            self._show_notices(snap)
            self.note_comparing(snap)
            if not self.replaying and snap.device.startswith("replay"):
                self._set_mode(True)
            if self.since_step is not None and snap.step < self.since_step:  # the history started over
                self.since_step = None
        self._settle_pending(snap)
        self.snap = snap
        panels_key = (id(snap), self._pending, self.session_error, self.config.name if self.config else "",
                      self.status_bar.size.width)  # fmt: skip
        if self._drawn.get("panels") != panels_key:
            self._draw_panels(snap)
            self._drawn["panels"] = panels_key
        if session is None or snap is None:
            return
        history_b = getattr(session, "history_b", None) if snap.compare is not None else None  # comparing: run B's
        version = (session.history.version, history_b.version if history_b is not None else None)
        time_key = (version, len(snap.events), self.selected, self.since_step)
        snap_key = (id(snap), self.selected)
        visible = [c for c in self.time_charts if shown(c)]
        stale = [c for c in visible if self._drawn.get(c.id or "") != time_key]
        stale += [c for c in self.snap_charts if shown(c) and self._drawn.get(c.id or "") != snap_key]
        why_stale = shown(self.why) and self._drawn.get("why") != snap_key
        if not stale and not why_stale:
            return
        with self.batch_update():
            if any(c in visible for c in stale):
                points = 2 * max(c.columns for c in visible)
                self._view = window_view(session.history, self.since_step, points)
                self._view_b = window_view(history_b, self.since_step, points) if history_b is not None else None
            for chart in stale:
                self._draw(chart, time_key if chart in self.time_charts else snap_key)
            if why_stale:
                self.why.show(snap, self.selected)
                self._drawn["why"] = snap_key

    def _settle_pending(self, snap: Snapshot | None) -> None:
        """The status bar's note on the toggles sent: '⇢ … sent' until the engine answers, then '✓ … applied' for a
        moment (a refusal comes as a notice); '⚠ … no answer' when none comes within PENDING_TIMEOUT."""
        now = time.monotonic()
        if self._optimistic is None:
            if self._pending and now > self._pending_until:
                self._pending = ""
            return
        what = self._pending.removeprefix("⇢ ").removesuffix(" sent")
        if snap is not None and self._confirmed(snap):
            applied = model_of(snap) == self._optimistic
            self._pending = f"✓ {what} applied" if applied else ""
        elif now - self._pending_at > PENDING_TIMEOUT:
            self._pending = f"⚠ {what}: no answer from the trainer"
        else:
            return
        self._optimistic, self._pending_until = None, now + PENDING_SHOWN

    def _confirmed(self, snap: Snapshot) -> bool:
        """Whether a snapshot shows the engine has handled the toggles sent: the model is as they make it, or a
        notice came (e.g. refused). Until then the status bar shows them as sent."""
        _, notices = self._sent_at
        return model_of(snap) == self._optimistic or len(snap.notices) > notices

    def _draw(self, chart: Chart, key: object) -> None:
        if self._drawn.get(chart.id or "") == key or self.snap is None:
            return
        view = self._view if self._view is not None else self.session.history.view(max_points=2)  # type: ignore[union-attr]
        self.replot(chart, Frame(self.snap, view, self.selected, self.since_step, self._view_b))
        self._drawn[chart.id or ""] = key

    def redraw(self) -> None:
        """Draw everything again at the next poll (a new time window, theme or size)."""
        self._drawn.clear()
        self.poll()

    def _theme_changed(self, _theme: object) -> None:
        self.call_after_refresh(self.redraw)  # the charts take their colours from the theme

    def _set_mode(self, replaying: bool) -> None:
        """Live or replay: the keys, the footer and the status bar follow."""
        if replaying != self.replaying:
            self.replaying = replaying
            self.root.set_class(replaying, "-replay")
            self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A key of the other mode (a toggle while replaying, a seek in a live run) is neither run nor shown."""
        mode = action_mode(action, parameters)
        if mode is None or mode == BOTH:
            return True
        return (mode == REPLAY) == self.replaying and self.compare_key_shown(action)  # w and F: while comparing

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

    async def action_quit(self) -> None:
        self._quitting = True
        self.stop_session()
        self.exit(0)

    def deliver_screenshot(
        self, filename: str | None = None, path: str | None = None, time_format: str | None = None
    ) -> str | None:
        """The palette's Screenshot saves into the current directory (Textual's default, ~/Downloads, may not
        exist: 'Failed to save screenshot')."""
        return super().deliver_screenshot(filename, path or os.getcwd(), time_format)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        seen = set()
        for a in ACTIONS:
            if (
                a.action in ("quit", "command_palette")
                or a.action in seen
                or a.mode not in (BOTH, REPLAY if self.replaying else LIVE)
            ):
                continue
            seen.add(a.action)
            yield SystemCommand(f"{a.help} ({key_of(a)})", a.help, partial(self.run_action, a.action))


def run_dashboard(
    config: RunConfig | None,
    session_factory: SessionFactory,
    refresh_hz: float | None = None,
    theme: str | None = None,
) -> int:
    """Run the dashboard until the user quits; the session is always stopped. Returns an exit code.
    `theme`: a Textual theme name, or "dark" / "light"."""
    return run_app(VgtuiApp(config, session_factory, refresh_hz, theme=theme))


def run_app(app: VgtuiApp) -> int:
    """Run a dashboard app until the user quits or a signal ends it; the session is always stopped."""
    with exit_on_signals(app):
        try:
            app.run()
        finally:
            app.stop_session()
    return app.return_code or 0


def theme_name(theme: str) -> str:
    """A Textual theme name from what a user typed ("light", "dark", "nord", …); ValueError naming the choices."""
    name = THEME_ALIASES.get(theme, theme)
    if name not in BUILTIN_THEMES:
        choices = ", ".join(["dark", "light", *sorted(BUILTIN_THEMES)])
        raise ValueError(f"unknown theme {theme!r}; choose one of: {choices}")
    return name
