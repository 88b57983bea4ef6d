"""The plot area of vgtui.tui.plot: a grid of code points and palette indices that lines (braille dots), bars
(eighth blocks), marks and text are drawn into with a few numpy operations."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from vgtui.tui.plot import Axis, _Bars, _Line

# The braille dot bit of (row 0..3 from the top, column 0..1) inside one character cell.
BRAILLE_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.uint32)
EIGHTHS = " ▁▂▃▄▅▆▇█"  # bar tops, in eighths of a cell
SPACE = 0x20


class Canvas:
    """The plot area: one code point and one palette index per cell."""

    def __init__(self, w: int, h: int) -> None:
        self.w, self.h = w, h
        self.codes = np.full((h, w), SPACE, dtype=np.uint32)
        self.colors = np.zeros((h, w), dtype=np.uint8)
        self.palette: list[str] = [""]

    def color(self, name: str) -> int:
        if name not in self.palette:
            self.palette.append(name)
        return self.palette.index(name)

    def text(self, row: int, col: int, text: str, color: str, italic: bool = False) -> None:
        text = text[: max(0, self.w - col)]
        if not text:
            return
        self.codes[row, col : col + len(text)] = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
        self.colors[row, col : col + len(text)] = self.color((color + (" italic" if italic else "")).strip())

    def bars(self, b: _Bars, x: Axis, y: Axis) -> None:
        """Each bar fills whole cells up to its height, with an eighth block on top."""
        ci = self.color(b.color)
        cols = max(1, round(b.width / x.span() * self.w))  # every bar equally wide
        left = np.floor((b.x - x.lo) / x.span() * self.w - cols / 2 + 0.5).astype(int)
        right = left + cols
        eighths = np.rint((np.clip(b.y, y.lo, y.hi) - y.lo) / y.span() * self.h * 8).astype(int)
        for c0, c1, e in zip(left.tolist(), right.tolist(), eighths.tolist(), strict=True):
            c0, c1 = max(0, c0), min(self.w, c1)
            if c1 <= c0 or e <= 0:
                continue
            full, part = divmod(e, 8)
            top = self.h - full
            self.codes[top:, c0:c1] = ord("█")
            self.colors[top:, c0:c1] = ci
            if part and top > 0:
                self.codes[top - 1, c0:c1] = ord(EIGHTHS[part])
                self.colors[top - 1, c0:c1] = ci

    def line_marks(self, line: _Line, x: Axis, y: Axis, k: int, n: int) -> None:
        """The line's mark at its last point and every `spacing` columns, series k of n starting k/n of the
        way into each stretch, so the marks of different series do not land on the same columns."""
        cols = cells_of(line.x, x.lo, x.span(), self.w)
        rows = cells_of(y.hi - np.clip(line.y, y.lo, y.hi), 0.0, y.span(), self.h)
        spacing = max(6, self.w // 5)
        phase = (cols + spacing - (k * spacing) // max(1, n)) % spacing
        first = np.r_[True, cols[1:] != cols[:-1]]  # one point per column
        pick = np.flatnonzero(first & (phase == 0))
        pick = np.append(pick, len(cols) - 1)
        self.codes[rows[pick], cols[pick]] = ord(line.mark[0])  # type: ignore[index]
        self.colors[rows[pick], cols[pick]] = self.color(line.color)

    def braille(self, dots: np.ndarray, line: _Line, x: Axis, y: Axis) -> None:
        """Rasterise the polyline into braille dots (OR-ed into `dots`); its cells take the line's colour."""
        gw, gh = 2 * self.w, 4 * self.h
        px = (line.x - x.lo) / x.span() * gw
        py = (y.hi - line.y) / y.span() * gh
        if len(px) > 1:  # enough samples along each segment that no dot is skipped
            dx, dy = np.diff(px), np.diff(py)
            n = np.maximum(np.ceil(np.maximum(np.abs(dx), np.abs(dy))), 1).astype(int)
            seg = np.repeat(np.arange(len(n)), n)
            t = (np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)) / n[seg]
            px = np.concatenate([px[:-1][seg] + dx[seg] * t, px[-1:]])
            py = np.concatenate([py[:-1][seg] + dy[seg] * t, py[-1:]])
        ix = np.clip(np.floor(px), 0, gw - 1).astype(int)
        iy = np.clip(np.floor(py), 0, gh - 1).astype(int)
        cell = (iy // 4) * self.w + ix // 2
        bits = BRAILLE_BITS[iy % 4, ix % 2]
        order = np.argsort(cell, kind="stable")
        cell, bits = cell[order], bits[order]
        starts = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1]])
        cells = cell[starts]
        dots[cells] |= np.bitwise_or.reduceat(bits, starts)
        self.colors.reshape(-1)[cells] = self.color(line.color)


def cells_of(values, lo: float, span: float, cells: int) -> np.ndarray:
    """The cell (0-based) holding each value of an axis from lo to lo + span drawn over `cells` cells."""
    return np.clip(np.floor((np.asarray(values, dtype=np.float64) - lo) / span * cells), 0, cells - 1).astype(int)
