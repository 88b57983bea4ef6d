"""The vgtui dashboard: polls a training session on a timer and draws what it publishes.

The session is anything that looks like `vgtui.contract.SessionLike`, built by a factory so tests can inject
a fake. The UI never waits on training: it pulls `latest()` and a decimated `history.view()` at a modest rate,
redraws only what changed, and turns keys into Commands.
"""

from __future__ import annotations

import contextlib
import signal
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

from vgtui.config import RunConfig
from vgtui.contract import (
    Command,
    ModelState,
    SessionLike,
    Snapshot,
)
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
from vgtui.tui.keys import (
    ACTIONS,
    DEFAULT_CLIP,
    bindings,
)
from vgtui.tui.panels import DiagnosisPanel, StatusBar, WhyPanel, shown, too_small_text

DEFAULT_REFRESH_HZ = 4.0  # ticks per second: measured with the trainer in a child process, 4 Hz kept ~0.9x (see README)
MIN_SIZE = (80, 24)  # below this: a "terminal too small" message
FULL_SIZE = (120, 36)  # below this: only loss, per-layer gradients and the diagnosis
SOON_AFTER_KEY = (0.03, 0.08, 0.15)  # extra polls (seconds) after a command is sent
NOTICE_SEVERITY = {"info": "information", "warn": "warning", "error": "error"}

SessionFactory = Callable[[RunConfig], SessionLike]


class VgtuiApp(DashboardActions, App[int]):
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
        self.session: SessionLike | None = None
        self.session_error: str | None = None
        self.selected = 0  # layer (0-based) whose histogram and chain-rule row are highlighted
        self.notices_shown: list[str] = []
        self._quitting = False
        self._reset_view_state()

    def _reset_view_state(self) -> None:
        self.snap: Snapshot | None = None
        self._view: HistoryView | None = None
        self._drawn: dict[str, object] = {}  # chart id -> the key of the data it last drew
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
        failed = getattr(session, "error", None) if snap is None else None
        if failed and self.session_error != failed:  # the worker died before its first snapshot: say why
            self.session_error = failed
            self.notify(failed, title="could not start", severity="error", markup=False)
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
    with _exit_on_signals(app):
        try:
            app.run()
        finally:
            app.stop_session()
    return app.return_code or 0


@contextlib.contextmanager
def _exit_on_signals(app: VgtuiApp):
    """SIGHUP (an SSH disconnect), SIGTERM and SIGINT end the app the way q does: Textual restores the terminal,
    the session and its trainer are stopped; the exit code is 128 + the signal's number."""

    def on_signal(signum: int, _frame: object) -> None:
        app._quitting = True
        app.exit(return_code=128 + signum)

    names = ("SIGHUP", "SIGTERM", "SIGINT")
    caught = [getattr(signal, n) for n in names if hasattr(signal, n)]
    saved = {sig: signal.signal(sig, on_signal) for sig in caught}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
