"""The dashboard comparing two runs: f forks B, toggle keys go to B (w moves them to A and back), F ends the
comparison keeping the chosen run; every chart, the status bar and the panels show both. Snapshots at 80x24 and
160x50 (update with `pytest tests/test_tui_compare.py --snapshot-update`)."""

from __future__ import annotations

from pilot_helpers import settle, small_config, until

from vgtui.contract import EndCompare, Fork, Pause, Seek, Target, Toggle
from vgtui.tui.app import VgtuiApp
from vgtui.tui.help import HelpScreen, help_markdown

try:
    from tui_compare_fakes import FakeCompareSession
    from tui_fakes import fake_config
except ImportError:  # tests/ imported as a package
    from tests.tui_compare_fakes import FakeCompareSession
    from tests.tui_fakes import fake_config

REMEDY = (Toggle("activation", "leaky_relu"), Toggle("init", "he"))


def comparing(kind: str = "mlp") -> tuple[VgtuiApp, FakeCompareSession]:
    """300 sigmoid steps, B forked with leaky_relu + he, 200 more steps of both."""
    fake = FakeCompareSession(fake_config("rnn-long" if kind == "rnn" else "deep-sigmoid", kind=kind))
    fake.advance(300)
    fake.fork(REMEDY if kind == "mlp" else (Toggle("cell", "lstm"),))
    fake.advance(200)
    return VgtuiApp(fake.config, lambda cfg: fake, refresh_hz=0.5), fake


def test_compare_80x24(snap_compare):
    assert snap_compare(comparing()[0], terminal_size=(80, 24), run_before=settle)


def test_compare_160x50(snap_compare):
    assert snap_compare(comparing()[0], terminal_size=(160, 50), run_before=settle)


def text_of(widget) -> str:
    """The plain text a Static-like widget shows now."""
    return "\n".join(line.text for line in widget.render_lines(widget.region.reset_offset))


async def test_every_panel_shows_both_runs():
    app, fake = comparing()
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        snap = app.snap
        b = snap.compare.b
        assert snap.compare.label == "B: leaky_relu+he @ 300"
        status = text_of(app.status_bar)
        gap = b.loss - snap.loss
        assert f"gap B−A: loss {'−' if gap < 0 else '+'}" in status and "toggles → B" in status
        for chart_id in ("loss", "grad-history", "weights", "update-ratio", "histogram"):
            text = app.query_one(f"#{chart_id}").rendered_text()
            assert "B" in text, chart_id
        chart = app.query_one("#loss")
        assert [(label, colour) for label, colour, _ in chart.plot.legend] == [
            ("A: the preset", chart.palette.loss),
            ("B: leaky_relu+he @ 300", "orange1"),
        ]  # (dark theme)
        loss = chart.rendered_text()
        assert "A: the preset" in loss and "B: leaky_relu+he @ 300" in loss
        grad = app.query_one("#grad-history").rendered_text()
        assert "A L1" in grad and "B L20" in grad
        bars = app.query_one("#grad-bars").rendered_text()
        assert "B: leaky_relu+he @ 300" in bars and "left bar A, right bar B" in bars
        why = text_of(app.why)
        assert "B/A" in why and "A product" in why
        diagnosis = text_of(app.diagnosis)
        assert "A: the preset" in diagnosis and "B: leaky_relu+he @ 300" in diagnosis
        assert "Vanishing" in diagnosis and "Gradients reach every layer" in diagnosis  # one verdict per run


async def test_keys_fork_target_and_end():
    fake = FakeCompareSession(fake_config())
    fake.advance(100)
    app = VgtuiApp(fake.config, lambda cfg: fake, refresh_hz=0.5)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        await pilot.press("f")
        await settle(pilot)
        assert fake.commands[-1] == Fork() and app.snap.compare is not None
        assert app.snap.compare.label == "B: same as A @ 100"
        await pilot.press("a")  # the activation key goes to B
        await settle(pilot)
        assert fake.b.model.activation == "tanh" and fake.a.model.activation == "sigmoid"
        assert app.snap.compare.label == "B: tanh @ 100"
        await pilot.press("w")  # and now to A
        await settle(pilot)
        assert fake.commands[-1] == Target("A") and "toggles → A" in text_of(app.status_bar)
        await pilot.press("i")
        await settle(pilot)
        assert fake.a.model.init == "xavier" and fake.b.model.init == "default"
        await pilot.press("F")
        await pilot.pause()
        await pilot.press("b")  # keep B
        await settle(pilot)
        assert fake.commands[-1] == EndCompare("B")
        assert app.snap.compare is None and app.snap.model.activation == "tanh"


async def test_end_and_target_do_nothing_when_not_comparing():
    fake = FakeCompareSession(fake_config())
    fake.advance(10)
    app = VgtuiApp(fake.config, lambda cfg: fake, refresh_hz=0.5)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("w")
        await pilot.press("F")
        await pilot.pause()
        assert not any(isinstance(c, (Target, EndCompare)) for c in fake.commands)
        assert not isinstance(app.screen, HelpScreen)


def test_help_lists_the_compare_keys():
    text = help_markdown()
    for key, claim in (("f", "fork a run B from this run now"), ("w", "send the toggle keys to the other run"),
                       ("F", "end it, keeping run A or run B")):  # fmt: skip
        assert f"- `{key}` {claim}" in text
    assert "`B: leaky_relu+he @ 300`" in text and "B/A column" in text


async def test_the_keys_drive_a_real_comparison():
    """f, a toggle key, w and F against the real engine (CompareSession in a thread)."""
    from vgtui.engine.compare import CompareSession

    cfg = small_config()
    session = CompareSession(cfg, device="cpu")
    app = VgtuiApp(cfg, lambda c: session, refresh_hz=10)

    async with app.run_test(size=(160, 50)) as pilot:
        assert await until(lambda: (s := session.latest()) is not None and s.step > 20, pilot, 30)
        await pilot.press("f")
        assert await until(lambda: session.b is not None and app.snap and app.snap.compare is not None, pilot, 30)
        await pilot.press("a")  # to B: sigmoid -> tanh
        assert await until(lambda: session.b.trainer.state.activation == "tanh", pilot, 30)
        assert session.trainer.state.activation == "sigmoid"
        assert await until(lambda: app.snap.compare.label.startswith("B: tanh @ "), pilot, 30)
        assert await until(lambda: "A L1" in app.query_one("#grad-history").rendered_text(), pilot, 30)
        await pilot.press("w")
        await pilot.press("i")  # to A
        assert await until(lambda: session.trainer.state.init == "xavier", pilot, 30)
        await pilot.press("F")
        await pilot.pause()
        await pilot.press("a")  # keep A
        assert await until(lambda: session.b is None and app.snap.compare is None, pilot, 30)
        assert session.trainer.state.init == "xavier" and session.trainer.state.activation == "sigmoid"


async def test_a_compare_log_replays_as_a_comparison_in_the_dashboard(tmp_path):
    from vgtui.cli import main
    from vgtui.replay import ReplaySession

    out = tmp_path / "ab.jsonl"
    assert main(["run", "deep-sigmoid", "--set", "model.depth=6", "--steps", "60", "--compare", "activation=relu",
                 "--fork-at", "20", "--out", str(out), "--quiet"]) == 0  # fmt: skip
    replay = ReplaySession(out)
    app = VgtuiApp(replay.config, lambda cfg: replay, refresh_hz=0.5)
    async with app.run_test(size=(120, 36)) as pilot:
        replay.send(Pause())
        await pilot.pause()
        replay.handle(Seek(len(replay.steps)))  # to the end
        await settle(pilot)
        assert app.snap.compare is not None and app.snap.compare.label == "B: relu @ 20"
        status = text_of(app.status_bar)
        assert "gap B−A: loss" in status and "record " in status and "toggles →" not in status
        assert "B: relu @ 20" in app.query_one("#loss").rendered_text()


async def test_capital_s_saves_run_b_data_too(tmp_path, monkeypatch):
    import csv

    monkeypatch.chdir(tmp_path)
    app, fake = comparing()
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("S")
        await pilot.pause()
        b_files = list(tmp_path.glob("*-B.csv"))
        assert len(b_files) == 1 and len(list(tmp_path.glob("*.csv"))) == 2
        rows = list(csv.reader(b_files[0].open()))
        assert rows[0][:3] == ["step", "loss", "acc"]
        assert [int(r[0]) for r in rows[1:]] == list(range(301, 501))  # B's steps, from the fork on
