"""The dashboard shows the truthful signals: the slope column, '–' where a statistic is undefined, 'neg' (never
'dead') for Leaky ReLU, frozen layers on the update-ratio chart, and the LSTM's cell-state gradient."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from vgtui.cli import main
from vgtui.contract import Pause, Seek, Snapshot, Toggle
from vgtui.replay import ReplaySession
from vgtui.tui.app import VgtuiApp
from vgtui.tui.charts import TimeGradChart, UpdateRatioChart
from vgtui.tui.panels import pct
from vgtui.tui.series import fmt_num, frozen_layers
from vgtui.tui.why_panel import why_renderable

try:
    from tui_fakes import FakeSession, fake_config
except ImportError:  # tests/ imported as a package
    from tests.tui_fakes import FakeSession, fake_config


def fake_snapshot(*toggles: Toggle, kind: str = "mlp", steps: int = 20) -> Snapshot:
    fake = FakeSession(fake_config(kind=kind))
    for t in toggles:
        fake.send(t)
    fake.advance(steps)
    snap = fake.latest()
    assert snap is not None
    return snap


def render(renderable, width: int) -> str:
    console = Console(width=width, record=True, color_system=None, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


def test_nan_reads_as_a_dash():
    assert pct(float("nan")) == "–" and fmt_num(float("nan")) == "–" and pct(0.0) == "0%"


@pytest.mark.parametrize(
    "activation, header, legend, absent",
    [
        ("sigmoid", "sat", "sat: share with slope < 0.01", ("dead", "neg")),
        ("relu", "dead", "dead: output 0 on the whole batch", ("sat", "neg")),
        ("leaky_relu", "neg", "neg: negative on the whole batch", ("sat", "dead")),
    ],
)
def test_why_table_names_the_statistic_of_the_activation(activation, header, legend, absent):
    snap = fake_snapshot(Toggle("activation", activation))
    text = render(why_renderable(snap, 0, 8), 100)
    columns = text.splitlines()[1].split()
    assert columns == ["layer", "‖g‖", header, "slope", "gain", "→", "product"]
    assert legend in " ".join(text.split()) and "gain ≈ slope × weight scale" in " ".join(text.split())
    assert not set(absent) & set(columns)
    assert "nan" not in text


def test_undefined_values_read_as_a_dash_not_zero():
    snap = fake_snapshot(Toggle("activation", "relu"))
    n = len(snap.gain)
    snap = replace(snap, dead=np.full(n, np.nan), slope=np.full(n, np.nan))  # e.g. a layer whose weights are NaN
    rows = render(why_renderable(snap, 0, 6), 100).splitlines()[2:7]
    for row in rows:
        cells = row.split()
        if cells[0] != "…":
            assert cells[2] == "–" and cells[3] == "–", row
    assert "0%" not in "\n".join(rows)


def test_narrow_why_table_drops_columns_but_keeps_the_product():
    snap = fake_snapshot(Toggle("activation", "leaky_relu"))
    widths = {}
    for width in (70, 40, 32, 26, 20):
        header = render(why_renderable(snap, 0, 6), width).splitlines()[1]
        assert header.split()[0] == "layer" and header.rstrip().endswith("→ product"), (width, header)
        widths[width] = header.split()
    assert "‖g‖" in widths[70] and "‖g‖" not in widths[40]
    assert widths[20] == ["layer", "→", "product"]


def test_rnn_why_caption_gives_the_tanh_cell_slope():
    text = " ".join(render(why_renderable(fake_snapshot(kind="rnn"), 0, 6), 100).split())
    assert "mean tanh slope 1−h² 0.93" in text
    lstm = " ".join(render(why_renderable(fake_snapshot(Toggle("cell", "lstm"), kind="rnn"), 0, 6), 100).split())
    assert "slope" not in lstm


def test_frozen_layers_need_a_zero_ratio_and_a_gradient():
    ratio = np.array([0.0, 0.0, 1e-3, np.nan, 0.0])
    grad = np.array([1e-9, 0.0, 1e-2, 1.0, np.nan])
    assert frozen_layers(ratio, grad).tolist() == [True, False, False, False, False]


async def chart_text(app: VgtuiApp, chart_type, size=(160, 50)) -> str:
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        app.poll()
        await pilot.pause()
        return app.query_one(chart_type).rendered_text()


@pytest.mark.asyncio
async def test_update_ratio_chart_marks_frozen_layers():
    fake = FakeSession(fake_config())
    fake.advance(200)  # twenty sigmoid layers: the first ones' updates round away (ratio exactly 0)
    text = await chart_text(VgtuiApp(fake.config, lambda cfg: fake, refresh_hz=0.5), UpdateRatioChart)
    assert "frozen: below float32 resolution" in text
    assert "L1 ×" in text.splitlines()[0]  # legend
    assert "×" in text.splitlines()[-4]  # the zeros sit on the bottom edge as a marked gap


@pytest.mark.asyncio
async def test_a_real_deep_sigmoid_run_shows_frozen_layers(tmp_path: Path):
    log = tmp_path / "run.jsonl"
    assert main(["run", "deep-sigmoid", "--steps", "50", "--out", str(log), "--quiet"]) == 0
    replay = ReplaySession(log)
    replay.handle(Pause())
    replay.handle(Seek(1000))
    snap = replay.latest()
    assert snap.step == 50 and frozen_layers(snap.update_ratio, snap.grad_norm).sum() >= 5
    text = await chart_text(VgtuiApp(replay.config, lambda cfg: replay, refresh_hz=0.5), UpdateRatioChart)
    assert "frozen: below float32 resolution" in text and "L1 ×" in text


@pytest.mark.asyncio
async def test_time_chart_draws_the_cell_state_gradient_of_an_lstm():
    fake = FakeSession(fake_config(kind="rnn"))
    fake.advance(5)
    app = VgtuiApp(fake.config, lambda cfg: fake, refresh_hz=0.5)
    assert "cell state" not in await chart_text(app, TimeGradChart)
    fake.send(Toggle("cell", "lstm"))
    fake.advance(5)
    app = VgtuiApp(fake.config, lambda cfg: fake, refresh_hz=0.5)
    legend = (await chart_text(app, TimeGradChart)).splitlines()[0]
    assert "‖∂L/∂h_t‖" in legend and "‖∂L/∂c_t‖ (cell state)" in legend
