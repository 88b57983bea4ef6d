"""Pure data helpers for the dashboard: decimation, log axes, number formats, chain-rule rows.

No textual, no torch: plain numpy in, plain lists/strings out, so every helper is easy to test.
"""

from __future__ import annotations

import math
import re

import numpy as np


def log10_safe(values: np.ndarray) -> np.ndarray:
    """log10 of positive finite values; NaN elsewhere (zero, negative, NaN, inf)."""
    a = np.asarray(values, dtype=np.float64)
    out = np.full(a.shape, np.nan)
    ok = np.isfinite(a) & (a > 0)
    out[ok] = np.log10(a[ok])
    return out


def minmax_decimate(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most `max_points` points; each bucket keeps its min and max so spikes stay visible."""
    x = np.asarray(x)
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    if n <= max_points or max_points < 4:
        return x, y
    buckets = max_points // 2
    bounds = np.linspace(0, n, buckets + 1).astype(int)
    keep: list[int] = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        if hi <= lo:
            continue
        seg = y[lo:hi]
        if not np.isfinite(seg).any():
            keep.append(lo)
            continue
        a, b = lo + int(np.nanargmin(seg)), lo + int(np.nanargmax(seg))
        keep.extend(sorted({a, b}))
    idx = np.asarray(keep, dtype=int)
    return x[idx], y[idx]


def stride_decimate(x: np.ndarray, ys: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Evenly spaced rows of a (rows, ...) array, at most `max_points` of them."""
    n = len(x)
    if n <= max_points or max_points < 2:
        return np.asarray(x), np.asarray(ys)
    idx = np.linspace(0, n - 1, max_points).round().astype(int)
    return np.asarray(x)[idx], np.asarray(ys)[idx]


def decade_ticks(lo: float, hi: float, max_ticks: int = 6) -> tuple[list[float], list[str]]:
    """Tick positions on a log10 axis (integer decades) and labels like '1e-8', at most `max_ticks` of them."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [], []
    a, b = math.floor(lo), math.ceil(hi)
    if a == b:
        b = a + 1
    step = max(1, math.ceil((b - a) / max(1, max_ticks - 1)))
    ticks = list(range(b, a - 1, -step))[::-1]
    return [float(t) for t in ticks], [decade_label(t) for t in ticks]


def decade_label(exponent: int) -> str:
    """0 -> '1e0', -8 -> '1e-8', 2 -> '1e2'."""
    return f"1e{int(exponent)}"


def log_range(*arrays: np.ndarray, floor: float = -24.0) -> tuple[float, float]:
    """(min, max) over the finite values of several log10 arrays, padded to whole decades."""
    vals = [np.asarray(a, dtype=np.float64).ravel() for a in arrays]
    allv = np.concatenate(vals) if vals else np.array([])
    allv = allv[np.isfinite(allv)]
    if allv.size == 0:
        return -8.0, 0.0
    lo = max(floor, math.floor(float(allv.min())))
    hi = math.ceil(float(allv.max()))
    if hi <= lo:
        hi = lo + 1
    return float(lo), float(hi)


def fmt_num(x: float, digits: int = 1) -> str:
    """The one format of a measured number on the dashboard: 0.22, 1500, 3e-12, 2e14; NaN -> '–'.

    From 0.01 to 10^4 three significant digits, else a power of ten with `digits` significant digits: the same
    number reads the same in the status bar, the diagnosis and the chain-rule table (and as the engine's
    verdicts write it, see `plain_numbers`).
    """
    if x is None or not math.isfinite(x):
        return "–"
    if x == 0:
        return "0"
    ax = abs(x)
    if 1e-2 <= ax < 1e4:
        return f"{x:.0f}" if ax >= 999.5 else f"{x:.3g}"
    mant, exp = f"{x:.{max(0, digits - 1)}e}".split("e")
    if "." in mant:
        mant = mant.rstrip("0").rstrip(".")
    return f"{mant}e{int(exp)}"


UNDERFLOW = "<1e-38"  # a gradient ratio that is exactly 0: it underflowed in float32


def fmt_ratio(x: float) -> str:
    """A gradient ratio or product: as fmt_num, but an exact 0 is an underflow, not a measured 0."""
    return UNDERFLOW if x == 0 else fmt_num(x)


_ENGINE_NUMBER = re.compile(r"\b(\d(?:\.\d+)?)e([+-]?)0*(\d+)")


def plain_numbers(text: str) -> str:
    """Numbers in a text from the engine written as fmt_num writes them: '2e-03' -> '2e-3', '4e+14' -> '4e14'."""
    return _ENGINE_NUMBER.sub(lambda m: f"{m[1]}e{'-' if m[2] == '-' else ''}{m[3]}", text)


def grad_ratio(grad_norm: np.ndarray, time_grad_norm: np.ndarray | None) -> tuple[str, str, float]:
    """The first/last gradient ratio the dashboard reports: (short label, what it divides, value).

    MLP: the weight gradient of layer 1 over the last layer's. RNN: ‖∂L/∂h‖ of time step 1 over the last step's.
    """
    t = time_grad_norm
    if t is not None and len(t) > 1:
        n = len(t)
        value = float(t[0] / t[-1]) if np.isfinite(t[-1]) and t[-1] > 0 else float("nan")
        return f"‖∂L/∂h‖ t1/t{n}", f"‖∂L/∂h‖ ratio, time step 1 / step {n}", value
    g = np.asarray(grad_norm, dtype=float)
    n = len(g)
    if n < 2:
        return "grad L1/L1", "weight-grad ratio", float("nan")
    value = float(g[0] / g[-1]) if np.isfinite(g[-1]) and g[-1] > 0 else float("nan")
    return f"grad L1/L{n}", f"weight-grad ratio ‖∂L/∂W₁‖/‖∂L/∂W{subscript(n)}‖", value


def subscript(n: int) -> str:
    return str(n).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


def frozen_layers(update_ratio: np.ndarray, grad_norm: np.ndarray) -> np.ndarray:
    """Layers whose weights did not change at all (update ratio exactly 0) although their gradient is not 0:
    the update was below float32 resolution. Same shape as update_ratio (False where unknown)."""
    ratio = np.asarray(update_ratio, dtype=float)
    grad = np.asarray(grad_norm, dtype=float)
    if grad.shape != ratio.shape:
        return np.zeros(ratio.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return (ratio == 0) & np.isfinite(grad) & (grad > 0)


def pick_layers(n: int, k: int = 5) -> list[int]:
    """Up to k layer indices spread from the first to the last (always both ends)."""
    if n <= 0:
        return []
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def chain_rows(gain: np.ndarray, product: np.ndarray, max_rows: int) -> list[tuple[str, str, str]]:
    """Rows (layer, ×gain, running product) from the output back to layer 1, elided in the middle.

    E.g. [('20', '×0.22', '0.22'), ('19', '×0.25', '0.055'), ('…', '', ''), ('1', '×0.2', '3e-12')]; a product that
    underflowed to 0 reads '<1e-38' and its gain '–'.
    """
    n = len(gain)
    order = list(range(n - 1, -1, -1))
    if max_rows < 3:
        max_rows = 3
    if n > max_rows:
        head = (max_rows - 1) // 2
        tail = max_rows - 1 - head
        order = order[:head] + [-1] + order[n - tail :]
    rows = []
    for i in order:
        if i < 0:
            rows.append(("…", "", ""))
        else:
            p, g = float(product[i]), float(gain[i])
            # where the gradient underflowed to 0 its gain is not measurable (0/x), not a gain of 0
            rows.append((str(i + 1), "–" if p == 0 or not math.isfinite(g) else "×" + fmt_num(g), fmt_ratio(p)))
    return rows


REMEDY_KEYS = (
    (("relu", "activation", "leaky"), "a"),
    (("xavier", " he ", "he init", "init"), "i"),
    (("batchnorm", "batch norm", "normaliz"), "b"),
    (("skip", "residual"), "s"),
    (("clip",), "c"),
    (("lstm", "gru", "cell"), "l"),
    (("shallower", "depth", "fewer layers"), "["),
    (("lower the learning rate", "lower lr", "smaller learning rate", "reduce lr"), "-"),
    (("raise the learning rate", "higher learning rate", "increase lr", "larger learning rate"), "+"),
    (("reset", "restart"), "r"),
)


def remedy_key(text: str) -> str | None:
    """The dashboard key that applies a remedy written in words, if there is one."""
    low = f" {text.lower()} "
    for words, key in REMEDY_KEYS:
        if any(w in low for w in words):
            return key
    return None


def nice_ticks(lo: float, hi: float, max_ticks: int = 5, steps: tuple[float, ...] = (1, 2, 5, 10)) -> list[float]:
    """Round tick positions between lo and hi, `steps` × 10^k apart, at most about `max_ticks`."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, max_ticks - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in steps if m * mag >= raw)
    first = math.ceil(lo / step) * step
    ticks = [first + k * step for k in range(int((hi - first) / step + 1e-9) + 1)]
    return [0.0 if abs(t) < step * 1e-9 else float(t) for t in ticks]


def step_ticks(lo: float, hi: float, max_ticks: int = 5) -> tuple[list[float], list[str]]:
    """Tick positions for a step axis with short labels like '1.2k'."""
    ticks = nice_ticks(lo, hi, max_ticks)
    return ticks, [short_int(t) for t in ticks]


def linear_ticks(lo: float, hi: float, max_ticks: int = 5) -> tuple[list[float], list[str]]:
    """Tick positions for a value axis with labels like '0.25' or '1e-4'."""
    ticks = nice_ticks(lo, hi, max_ticks, steps=(1, 2, 2.5, 5, 10))
    return ticks, [fmt_num(round(t, 12), digits=2) for t in ticks]


def short_int(x: float) -> str:
    """1200 -> '1.2k', 3_000_000 -> '3M', 40 -> '40'."""
    ax = abs(x)
    if ax >= 1e6:
        return f"{x / 1e6:.3g}M"
    if ax >= 1e4 or (ax >= 1e3 and x % 100 == 0):
        return f"{x / 1e3:.3g}k"
    return f"{x:.0f}"


def layer_ticks(n: int, max_ticks: int) -> list[int]:
    """1-based layer numbers to label: evenly stepped, always including 1 and n."""
    if n <= 0:
        return []
    step = max(1, math.ceil(n / max(1, max_ticks)))
    ticks = list(range(1, n + 1, step))
    if ticks[-1] != n:
        if n - ticks[-1] < step / 2 and len(ticks) > 1:
            ticks[-1] = n
        else:
            ticks.append(n)
    return ticks
