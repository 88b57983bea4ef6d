"""The dashboard beside the trainer: steps/s against a bare torch loop and the engine alone, redraws per second,
frame time, key latency, start-up time. Headless (App.run_test) and for real (`vgtui launch` in tmux)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

from benchmarks.engine_speed import bare_steps_per_sec
from vgtui.config import RunConfig, apply_sets
from vgtui.contract import Step
from vgtui.engine.process import ProcessSession
from vgtui.engine.session import Session
from vgtui.presets import resolve
from vgtui.tui.app import DEFAULT_REFRESH_HZ, VgtuiApp

MLP = ("model.depth=20", "model.width=64", "train.batch_size=128")


def scene() -> RunConfig:
    return apply_sets(resolve("deep-sigmoid"), list(MLP))


def engine_alone(cfg: RunConfig, seconds: float) -> float:
    """Steps/s of the Session with nobody watching."""
    s = Session(cfg, device="cpu").start()
    while s.latest() is None or s.latest().step < 20:
        time.sleep(0.01)
    s0, t0 = s.latest().step, time.perf_counter()
    time.sleep(seconds)
    rate = (s.latest().step - s0) / (time.perf_counter() - t0)
    s.stop()
    return rate


class Counter:
    """Wraps VgtuiApp._draw and poll to count chart redraws and UI time."""

    def __init__(self, app: VgtuiApp) -> None:
        self.draws = 0
        self.busy = 0.0
        draw, poll = app._draw, app.poll

        def counted_draw(chart, key):
            self.draws += 1
            return draw(chart, key)

        def timed_poll():
            t = time.perf_counter()
            poll()
            self.busy += time.perf_counter() - t

        app._draw = counted_draw  # type: ignore[method-assign]
        app.poll = timed_poll  # type: ignore[method-assign]


async def with_dashboard(cfg: RunConfig, seconds: float, hz: float, size=(160, 50), worker: str = "thread") -> dict:
    sessions: list = []

    def factory(c):
        sessions.append(Session(c, device="cpu") if worker == "thread" else ProcessSession(c, device="cpu"))
        return sessions[-1]

    app = VgtuiApp(cfg, factory, refresh_hz=hz)
    async with app.run_test(size=size) as pilot:
        counter = Counter(app)
        app._timer.stop()
        app._timer = app.set_interval(1.0 / hz, app.poll)
        s = sessions[0]
        while s.latest() is None or s.latest().step < 20:
            await asyncio.sleep(0.01)
        s0, t0, d0, b0 = s.latest().step, time.perf_counter(), counter.draws, counter.busy
        await asyncio.sleep(seconds)
        dt = time.perf_counter() - t0
        out = {
            "steps_s": (s.latest().step - s0) / dt,
            "chart_redraws_s": (counter.draws - d0) / dt,
            "ui_busy_share": (counter.busy - b0) / dt,
        }
        await pilot.press("q")
    return out


async def frame_times(cfg: RunConfig, size, repeats: int) -> list[float]:
    """Build and render one full frame, in ms: every visible chart replotted, then every widget rendered
    and the whole screen composed and written to the (headless) driver, synchronously.

    Timed around the work itself: Pilot.pause() sleeps at least 20 ms (wait_for_idle), so timing across it
    (as an earlier version did) measured the sleep too.
    """
    sessions: list[Session] = []

    def factory(c):
        sessions.append(Session(c, device="cpu", start_paused=True))
        return sessions[-1]

    app = VgtuiApp(cfg, factory, refresh_hz=0.5)
    times = []
    async with app.run_test(size=size) as pilot:
        s = sessions[0]
        s.send(Step(300))
        while s.latest() is None or s.latest().step < 300:
            await asyncio.sleep(0.02)
        await pilot.pause()
        for _ in range(repeats):
            screen = app.screen
            t = time.perf_counter()
            app._drawn.clear()
            app.poll()  # replot every visible chart and panel
            widgets = set(screen.walk_children(with_self=False))
            for w in widgets:
                w._set_dirty()  # render every widget again, not only the charts
            screen._compositor.update_widgets(widgets)
            app._display(screen, screen._compositor.render_update(full=True))
            times.append((time.perf_counter() - t) * 1000)
            await pilot.pause()
        await pilot.press("q")
    return times


async def key_latency(cfg: RunConfig, repeats: int) -> list[float]:
    """Key press -> toggle applied by the worker -> marker drawn, in ms."""
    sessions: list[Session] = []

    def factory(c):
        sessions.append(Session(c, device="cpu"))
        return sessions[-1]

    app = VgtuiApp(cfg, factory)
    out = []
    async with app.run_test(size=(160, 50)) as pilot:
        s = sessions[0]
        while s.latest() is None or s.latest().step < 20:
            await asyncio.sleep(0.01)
        from vgtui.tui.charts import LossChart

        chart = app.query_one(LossChart)
        for _ in range(repeats):
            n = len(s.latest().events)
            t = time.perf_counter()
            app.simulate_key("a")  # as a terminal key press arrives (Pilot.press also waits for idle)
            while len(chart.markers) <= n and time.perf_counter() - t < 5:
                await asyncio.sleep(0.001)
            out.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(0.3)
        await pilot.press("q")
    return out


STARTUP_SCRIPT = """
import sys
import vgtui.tui.app as A
import vgtui.tui.charts as ch
orig_replot, orig_run = ch.LossChart.replot, A.VgtuiApp.run
def replot(self, frame):
    orig_replot(self, frame)
    print("FIRST", flush=True)
    self.app.exit()
ch.LossChart.replot = replot
A.VgtuiApp.run = lambda self, **kw: orig_run(self, headless=True)
from vgtui.cli import main
main(["launch", "deep-sigmoid"])
"""


def startup_seconds(repeats: int) -> list[float]:
    """A new Python process running `vgtui launch deep-sigmoid` (headless) until the first chart is drawn."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", STARTUP_SCRIPT], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("FIRST"):
                times.append(time.perf_counter() - t0)
                break
        proc.wait(timeout=30)
    return times


LAUNCH = "import sys; from vgtui.cli import main; sys.exit(main(sys.argv[1:]))"


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False).stdout


def _pane_step(name: str) -> tuple[int | None, str]:
    screen = _tmux("capture-pane", "-p", "-t", name)
    m = re.search(r"step ([\d,]+)", screen.split("\n", 1)[0])
    return (int(m.group(1).replace(",", "")) if m else None), screen


def in_tmux(seconds: float, worker: str = "process", size=(160, 50)) -> dict | None:
    """`vgtui launch` for real in a tmux pane: steps/s read off the status bar, and how many different
    screens per second a viewer sees (captured at 20 Hz). None where tmux is not installed."""
    if shutil.which("tmux") is None:
        return None
    name = f"vgtui-bench-{os.getpid()}"
    command = " ".join([sys.executable, "-c", repr(LAUNCH), "launch", "deep-sigmoid", "--worker", worker,
                        *(f"--set {s}" for s in MLP)])  # fmt: skip
    _tmux("new-session", "-d", "-s", name, "-x", str(size[0]), "-y", str(size[1]), command)
    try:
        deadline = time.perf_counter() + 30
        step, _ = _pane_step(name)
        while (step is None or step < 50) and time.perf_counter() < deadline:
            time.sleep(0.1)
            step, _ = _pane_step(name)
        if step is None:
            return None
        s0, t0 = step, time.perf_counter()
        screens, last = 0, ""
        while time.perf_counter() - t0 < seconds:
            time.sleep(0.05)
            _, screen = _pane_step(name)
            screens += screen != last
            last = screen
        s1, _ = _pane_step(name)
        dt = time.perf_counter() - t0
        return {"steps_s": ((s1 or s0) - s0) / dt, "screens_s": screens / dt}
    finally:
        _tmux("send-keys", "-t", name, "q")
        time.sleep(1.0)
        _tmux("kill-session", "-t", name)


def run(repeats: int = 3, seconds: float = 6.0) -> dict:
    cfg = scene()
    res: dict = {}
    bare, alone, rows, tmux = [], [], {}, []
    hzs = sorted({2.0, 4.0, 8.0, DEFAULT_REFRESH_HZ})
    for _ in range(repeats):
        bare.append(bare_steps_per_sec(cfg, 2000))
        alone.append(engine_alone(cfg, seconds))
        for worker in ("thread", "process"):
            for hz in hzs:
                rows.setdefault((worker, hz), []).append(asyncio.run(with_dashboard(cfg, seconds, hz, worker=worker)))
        real = in_tmux(seconds)
        if real is not None:
            tmux.append(real)
    b, a = statistics.median(bare), statistics.median(alone)
    res["bare_loop_steps_s"] = round(b, 1)
    res["engine_alone_steps_s"] = round(a, 1)
    print("bare", res["bare_loop_steps_s"], "engine alone", res["engine_alone_steps_s"], flush=True)
    for (worker, hz), runs in rows.items():
        r = {k: statistics.median(x[k] for x in runs) for k in runs[0]}
        key = f"dashboard_{worker}_{hz:g}hz"
        res[key] = {
            "steps_s": round(r["steps_s"], 1),
            "ratio_vs_bare": round(r["steps_s"] / b, 3),
            "ratio_vs_engine_alone": round(r["steps_s"] / a, 3),
            "chart_redraws_s": round(r["chart_redraws_s"], 1),
            "poll_busy_share": round(r["ui_busy_share"], 3),
        }
        print(key, res[key], flush=True)
    if tmux:
        steps = statistics.median(x["steps_s"] for x in tmux)
        res["tmux_launch_160x50"] = {
            "steps_s": round(steps, 1),
            "ratio_vs_bare": round(steps / b, 3),
            "screens_s": round(statistics.median(x["screens_s"] for x in tmux), 1),
        }
        print("tmux", res["tmux_launch_160x50"], flush=True)
    for size in ((160, 50), (80, 24)):
        t = asyncio.run(frame_times(cfg, size, 15))
        res[f"frame_ms_{size[0]}x{size[1]}"] = round(statistics.median(t), 1)
        print(size, res[f"frame_ms_{size[0]}x{size[1]}"], flush=True)
    lat = asyncio.run(key_latency(cfg, 5))
    res["key_to_marker_ms_median"] = round(statistics.median(lat), 1)
    print("latency", lat, flush=True)
    st = startup_seconds(3)
    res["startup_to_first_chart_s"] = round(statistics.median(st), 2)
    print(res, flush=True)
    return res
