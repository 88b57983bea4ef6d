"""What the dashboard says, read as a person reads it: the status bar's numbers, the chain-rule product at every
width, one loss scale per quantity, series apart without colour, the theme's background, one format per number."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
from pilot_helpers import settle

from vgtui.contract import Notice, Toggle
from vgtui.tui.app import VgtuiApp, theme_name
from vgtui.tui.chart_base import SERIES_MARKS
from vgtui.tui.charts import Chart, GradHistoryChart, LossChart
from vgtui.tui.panels import DiagnosisPanel, StatusBar, diagnosis_renderable
from vgtui.tui.picker import PresetPicker
from vgtui.tui.plot import Axis, Plot
from vgtui.tui.series import chain_rows, fmt_num, fmt_ratio, plain_numbers
from vgtui.tui.why_panel import WhyPanel, why_renderable

try:
    from tui_fakes import FakeSession, fake_config
except ImportError:  # tests/ imported as a package
    from tests.tui_fakes import FakeSession, fake_config

SIZES = [(80, 24), (100, 30), (120, 36), (160, 50)]


def make_app(steps: int = 50, kind: str = "mlp", **kw) -> tuple[VgtuiApp, FakeSession]:
    fake = FakeSession(fake_config(kind=kind))
    fake.advance(steps)
    return VgtuiApp(fake.config, lambda cfg: fake, refresh_hz=0.5, **kw), fake


def text_of(widget) -> str:
    return "\n".join(line.text for line in widget.render_lines(widget.region.reset_offset))


@pytest.mark.asyncio
@pytest.mark.parametrize("size", SIZES)
async def test_status_bar_gives_loss_accuracy_and_the_named_gradient_ratio(size):
    app, fake = make_app()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        snap = fake.latest()
        line = text_of(app.query_one(StatusBar)).splitlines()[0]
        ratio = snap.grad_norm[0] / snap.grad_norm[-1]
        expected = f"loss {fmt_num(snap.loss)} · acc {100 * snap.acc:.0f}% · grad L1/L20 {fmt_ratio(ratio)}"
        assert expected in line, line


@pytest.mark.asyncio
async def test_rnn_status_names_the_time_step_ratio():
    app, fake = make_app(kind="rnn")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        t = fake.latest().time_grad_norm
        assert f"‖∂L/∂h‖ t1/t50 {fmt_ratio(t[0] / t[-1])}" in text_of(app.query_one(StatusBar))


@pytest.mark.asyncio
@pytest.mark.parametrize("size", SIZES)
async def test_the_chain_rule_product_is_shown_at_every_size(size):
    app, fake = make_app()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        why = app.query_one(WhyPanel)
        text = text_of(why)
        assert why.region.width and "→ product" in text, text
        product = fmt_ratio(float(fake.latest().gain_product[0]))
        assert re.search(rf"^│ 1\s.*\s{re.escape(product)}\s*│$", text, re.M), text  # layer 1's row, its product


def test_chain_table_keeps_the_product_down_to_twenty_columns():
    fake = FakeSession(fake_config())
    fake.advance(5)
    table = why_renderable(fake.latest(), 0, 6)
    for width in (80, 60, 40, 30, 20):
        kept = [table.columns[j] for j in table.shown_columns(width)]
        assert kept[0] == "layer" and kept[-1] == "→ product", (width, kept)


@pytest.mark.asyncio
async def test_loss_and_accuracy_have_one_scale_each_and_a_spike_turns_the_loss_axis_logarithmic():
    app, fake = make_app(steps=100)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        chart = app.query_one(LossChart)
        text = chart.rendered_text()
        assert not chart.log_axis and "100%" in text and "0%" in text
        rows = [r for r in text.splitlines() if "┤" in r]  # rows with a y label: both scales in one column
        assert len({r.index("┤") for r in rows}) == 1 and not any("├" in r for r in rows)  # no right-hand axis
        n = fake.model.depth
        for k, spike in enumerate((4e3, 2e14)):  # a spike: a linear axis would flatten the loss to 0
            fake.history.append(101 + k, {"loss": spike, "acc": 0.5}, {"grad_norm": np.ones(n)})
        fake.advance(20)
        app.poll()
        await pilot.pause()
        text = chart.rendered_text()
        assert chart.log_axis and "(log)" in str(chart.border_title)
        assert chart.plot.y.lo <= -1 and chart.plot.y.hi >= 14.3  # decades from the real loss (~0.6) to the spike
        assert re.search(r"^ *1e1\d┤", text, re.M) and re.search(r"^ *1e-?\d┤", text, re.M)


@pytest.mark.asyncio
async def test_without_colour_every_series_has_its_own_mark(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app, _ = make_app(steps=200)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        text = app.query_one(GradHistoryChart).rendered_text()
        legend, plot = text.splitlines()[0], "\n".join(text.splitlines()[1:])
        marks = re.findall(r"(\S) L\d+", legend)
        assert marks == list(SERIES_MARKS)  # L1, L6, L11, L15, L20: five different marks
        assert all(m in plot for m in marks)  # and each is drawn along its line
        loss_legend = app.query_one(LossChart).rendered_text().splitlines()[0]
        assert "● loss" in loss_legend and "■ accuracy" in loss_legend


def test_marks_stay_off_each_others_columns():
    plot = Plot()
    plot.x, plot.y = Axis(0, 100), Axis(0, 1)
    for k in range(3):
        plot.line(np.arange(101), np.full(101, 0.2 + 0.3 * k), "red", label=f"s{k}", mark=SERIES_MARKS[k])
    rows = [strip.text for strip in plot.render(60, 10)]
    cols = [{c for line in rows[1:] for c, ch in enumerate(line) if ch == SERIES_MARKS[k]} for k in range(3)]
    assert all(cols) and not (cols[0] & cols[1]) - {max(cols[0])}  # only the line ends may share a column


@pytest.mark.asyncio
@pytest.mark.parametrize("theme", ["light", "dark"])
async def test_charts_take_the_themes_background(theme):
    app, _ = make_app(steps=60, theme=theme)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert app.theme == theme_name(theme) and app.current_theme.dark == (theme == "dark")
        for chart in app.query(Chart):
            if chart.display and chart.region.width:
                background = chart.rich_style.bgcolor
                assert background is not None
                brightness = sum(background.get_truecolor()) / 3 / 255
                assert (brightness > 0.5) == (theme == "light"), (chart.id, background)
                rows = [chart.render_line(y) for y in range(chart.size.height)]
                assert {seg.style.bgcolor for row in rows for seg in row if seg.text.strip() == ""} == {background}


def test_an_unknown_theme_names_the_choices():
    with pytest.raises(ValueError, match="light"):
        theme_name("sepia")


@pytest.mark.asyncio
async def test_the_ratio_reads_the_same_in_the_verdict_status_and_notes_and_names_its_measure():
    app, fake = make_app(steps=50)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        status, notes = text_of(app.query_one(StatusBar)), " ".join(text_of(app.query_one(DiagnosisPanel)).split())
        verdict = re.search(r"layer 1 gets (\S+) of", notes)
        assert verdict, notes
        assert f"grad L1/L20 {verdict[1]}" in status
        assert f"weight-grad ratio ‖∂L/∂W₁‖/‖∂L/∂W₂₀‖ = {verdict[1]}" in notes
        why = " ".join(text_of(app.query_one(WhyPanel)).split())
        assert "product: ‖∂L/∂h‖" in why  # the product names its measure too


def test_engine_numbers_are_written_as_the_dashboard_writes_them():
    assert plain_numbers("is 2e-03 of; grows 4e+14x; 1.5e-05") == "is 2e-3 of; grows 4e14x; 1.5e-5"
    assert fmt_num(1.66e-16) == "2e-16" == plain_numbers(f"{1.66e-16:.0e}")
    assert fmt_num(0.0194) == "0.0194" and fmt_num(1500) == "1500" and fmt_ratio(0.0) == "<1e-38"


def test_an_underflowed_gradient_reads_the_same_everywhere_and_has_no_gain_of_zero():
    rows = chain_rows(np.array([0.0, 0.0, 0.15]), np.array([0.0, 0.0, 0.15]), 6)
    assert rows[-1] == ("1", "–", "<1e-38") and rows[-2] == ("2", "–", "<1e-38") and rows[0][1] == "×0.15"
    fake = FakeSession(fake_config(kind="rnn"))
    fake.advance(3)
    snap = fake.latest()
    tgn = snap.time_grad_norm.copy()
    tgn[:3] = 0.0
    snap = replace(snap, time_grad_norm=tgn)
    notes = " ".join(t.plain for t in diagnosis_renderable(snap).renderables)
    assert "time step 1 / step 50 = <1e-38 (underflows to 0 in float32)" in notes and " 0×" not in notes


def test_a_watched_run_that_stopped_says_why_and_offers_no_preset_or_reset():
    """A watched run (model kind "user") cannot be reset or switched to a preset from the dashboard."""
    fake = FakeSession(fake_config())
    fake.advance(3)
    snap = fake.latest()
    why = "the watched process ended without close() (it was killed or crashed)"
    snap = replace(snap, status="error", error=None, model=replace(snap.model, kind="user"),
                   notices=(Notice(1, "warn", "something else"), Notice(2, "error", why)))  # fmt: skip
    notes = " ".join(t.plain for t in diagnosis_renderable(snap).renderables)
    assert "The watched run stopped" in notes and why in notes
    assert "[r]" not in notes and "[p]" not in notes and "training worker" not in notes


@pytest.mark.asyncio
async def test_a_toggle_shows_as_sent_until_the_engine_applies_it():
    app, fake = make_app()
    fake.hold_toggles = True  # a trainer that has not got to it yet
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("a")
        for _ in range(3):  # training goes on: still not applied
            fake.advance(5)
            app.poll()
            await pilot.pause()
            assert "⇢ activation=tanh sent" in text_of(app.query_one(StatusBar))
        fake.release()
        fake.advance(1)
        app.poll()
        await pilot.pause()
        status = text_of(app.query_one(StatusBar))
        assert "✓ activation=tanh applied" in status and "tanh ·" in status


@pytest.mark.asyncio
async def test_the_picker_fits_80x24_with_its_try_line():
    long = replace(fake_config(), description=" ".join(["A long description of the scene."] * 40), suggest=("a", "b"))
    app = VgtuiApp(None, FakeSession, presets=lambda: [long, fake_config("other")])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PresetPicker)
        try_line = screen.query_one("#picker-try")
        box = screen.query_one("#picker-box").region
        assert "Try: a · b" in text_of(try_line)
        assert box.bottom <= 23 and try_line.region.bottom <= box.bottom  # above the footer, inside the box
        scroll = screen.query_one("#picker-scroll")
        assert scroll.max_scroll_y > 0  # the description scrolls (PageDown) instead of pushing the Try line out
        await pilot.press("pagedown")
        assert scroll.scroll_y > 0


@pytest.mark.asyncio
async def test_rnn_toggle_marker_and_cell_state_at_80x24():
    app, fake = make_app(kind="rnn")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        fake.send(Toggle("cell", "lstm"))
        fake.advance(5)
        app.poll()
        await pilot.pause()
        assert "lstm @ 50" in app.query_one(LossChart).markers
