"""The chart renderer: what a user reads off a chart (axes, ticks, lines, bars, markers) lands where it should."""

from __future__ import annotations

import numpy as np
import pytest

from vgtui.tui.plot import BRAILLE_BASE, Axis, Plot


def text(plot: Plot, width: int = 40, height: int = 12) -> list[str]:
    rows = plot.render(width, height)
    assert len(rows) == height
    assert all(row.cell_length == width for row in rows)
    return [row.text for row in rows]


def braille_cells(rows: list[str]) -> list[tuple[int, int]]:
    return [(r, c) for r, line in enumerate(rows) for c, ch in enumerate(line) if 0x2800 < ord(ch) <= 0x28FF]


def test_rising_line_goes_from_bottom_left_to_top_right():
    plot = Plot()
    plot.x = Axis(0, 10)
    plot.y = Axis(0, 10, [0, 5, 10], ["0", "5", "10"])
    plot.line(np.arange(11), np.arange(11), "cyan")
    rows = text(plot)
    cells = braille_cells(rows)
    first, last = min(cells, key=lambda rc: rc[1]), max(cells, key=lambda rc: rc[1])
    assert first[0] > last[0]  # the leftmost dot is lower on the screen than the rightmost
    assert rows[0].startswith("10┤") and rows[-2].startswith(" 0┤")  # y ticks at the top and bottom rows


def test_line_is_connected_without_gaps_between_columns():
    plot = Plot()
    plot.x = Axis(0, 1)
    plot.y = Axis(-1, 1)
    x = np.linspace(0, 1, 7)  # few points, steep segments: the renderer must fill in between
    plot.line(x, np.sin(x * 20), "red")
    cols = {c for _, c in braille_cells(text(plot, 60, 16))}
    assert cols == set(range(min(cols), max(cols) + 1))


def test_nan_and_inf_points_are_dropped_not_drawn():
    plot = Plot()
    plot.x = Axis(0, 4)
    plot.y = Axis(0, 1)
    plot.line([0, 1, 2, 3, 4], [0.5, np.nan, np.inf, 0.5, 0.5], "cyan")
    rows = text(plot)
    assert braille_cells(rows)
    empty = Plot()
    empty.line([1, 2], [np.nan, np.nan], "cyan")
    assert not braille_cells(text(empty))


def test_bars_are_equally_wide_and_as_tall_as_their_value():
    plot = Plot()
    plot.x = Axis(0.5, 4.5, [1, 2, 3, 4], ["1", "2", "3", "4"])
    plot.y = Axis(0, 4)
    plot.bars([1, 2, 3, 4], [1, 2, 3, 4], "dark_orange", width=0.5)
    rows = text(plot, 40, 10)  # 8 plot rows above the axis and its labels: value 1 fills 2 rows
    plot_rows = rows[:8]
    heights = []
    for start in range(40):
        column = [line[start] for line in plot_rows]
        if "█" in column:
            heights.append(column.count("█"))
    runs = "".join("█" if ch == "█" else " " for ch in plot_rows[-1]).split()
    widths = {len(r) for r in runs}
    assert len(widths) == 1
    assert sorted(set(heights)) == [2, 4, 6, 8]


def test_vertical_marker_with_label_and_ticks_on_the_x_axis():
    plot = Plot()
    plot.x = Axis(0, 100, [0, 50, 100], ["0", "50", "100"])
    plot.y = Axis(0, 1)
    plot.line([0, 100], [0.2, 0.2], "cyan")
    plot.vline(50, "magenta1", "relu @ 50")
    rows = text(plot, 40, 10)
    assert "relu @ 50" in rows[0]
    assert sum(line.count("│") for line in rows[:-2]) >= 5  # the marker column (plus the y axis)
    assert rows[-2].count("┬") == 3
    assert rows[-1].split() == ["0", "50", "100"]


def test_right_axis_and_legend():
    plot = Plot()
    plot.x = Axis(0, 10)
    plot.y = Axis(0, 2, [0, 1, 2], ["0", "1", "2"])
    plot.y2 = Axis(0, 1, [0, 1], ["0%", "100%"])
    plot.line([0, 10], [2, 0], "cyan", label="loss")
    plot.line([0, 10], [0, 1], "green", label="accuracy", right=True)
    rows = text(plot, 40, 10)
    assert "● loss" in rows[0] and "● accuracy" in rows[0]
    assert rows[1].rstrip().endswith("├100%")


def test_styles_follow_the_series_colours():
    plot = Plot()
    plot.x = Axis(0, 1)
    plot.y = Axis(0, 1)
    plot.line([0, 1], [0.5, 0.5], "cyan")
    strips = plot.render(30, 8)
    colours = {seg.style.color.name for strip in strips for seg in strip if seg.style and seg.style.color}
    assert "cyan" in colours


@pytest.mark.parametrize("size", [(0, 0), (1, 1), (5, 3), (12, 2), (300, 80)])
def test_any_size_renders_exactly_that_size(size):
    plot = Plot()
    plot.x = Axis(0, 1, [0, 1], ["0", "1"])
    plot.y = Axis(0, 1, [0, 1], ["0", "1"])
    plot.xlabel = "step"
    plot.line([0, 1], [0, 1], "cyan", label="a")
    plot.vline(0.5, "magenta1", "a long marker label that does not fit")
    rows = plot.render(*size)
    assert len(rows) == size[1]
    assert all(row.cell_length == size[0] for row in rows)


def test_empty_plot_shows_its_note():
    plot = Plot()
    plot.note = "waiting for data…"
    assert any("waiting for data…" in row for row in text(plot))


def test_overlapping_lines_share_a_cell():
    plot = Plot()
    plot.x = Axis(0, 1)
    plot.y = Axis(0, 1)
    plot.line([0, 1], [0.5, 0.5], "cyan")
    plot.line([0, 1], [0.52, 0.52], "red1")
    rows = text(plot, 30, 8)
    assert all(ord(ch) >= BRAILLE_BASE for _, c in braille_cells(rows) for ch in rows[_][c])
