"""Plain-words verdicts from telemetry, with hysteresis so they do not flicker. No torch."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from vgtui.contract import Verdict

VANISH_RATIO = 1e-3  # first/last gradient ratio below this = vanishing
EXPLODE_RATIO = 1e3
EXPLODE_TOTAL = 1e3
EXPLODE_CHAIN = 1e2  # ||dL/dh_0|| / ||dL/dh_L||: the backward signal grew this much from the output to layer 1
IMMEDIATE = ("diverged", "exploding")  # shown at the first publish that shows them: a few steps may be all there is
SATURATED = 0.5
DEAD = 0.3
STAGNANT_REL = 0.01
SHRINK = 0.25

REMEDIES_MLP_VANISH = (
    "Leaky ReLU (a) together with He init (i)",
    "BatchNorm (b)",
    "residual skips (s)",
    "fewer layers ([)",
)
REMEDIES_TANH_VANISH = ("Xavier init (i)", *REMEDIES_MLP_VANISH)
REMEDIES_RNN_VANISH = ("LSTM or GRU cell (l)",)
REMEDIES_EXPLODE = ("gradient clipping (c), then reset (r)",)
REMEDIES_DIVERGED = ("gradient clipping on (c)", "then reset (r): fresh weights from the seed")
REMEDIES_SATURATED = ("ReLU / Leaky ReLU (a)", "BatchNorm (b)")
REMEDIES_DEAD = ("lower learning rate (-), then reset (r): dead units do not come back", "Leaky ReLU (a)")
REMEDIES_STAGNANT = (
    "see the gradient chart: fix what starves layer 1",
    "raise learning rate (+) if gradients are healthy",
)
REMEDIES_SHRINK = ("lower learning rate (-)", "BatchNorm (b)", "He init (i)")


@dataclass
class Observation:
    """What the diagnoser looks at, once per publish."""

    step: int
    kind: str  # mlp | rnn
    activation: str
    loss: float
    baseline_loss: float
    grad_norm: np.ndarray
    grad_total: float
    saturation: np.ndarray
    dead: np.ndarray
    weight_mean_abs: np.ndarray
    time_grad_norm: np.ndarray | None
    diverged: bool
    gain_product: np.ndarray | None = None  # ||dL/dh_i|| / ||dL/dh_L|| per layer (MLP), the chain rule's product
    layer_names: tuple[str, ...] = ()  # a user's model (vgtui.watch): module paths, named in the verdicts

    def layer(self, i: int) -> str:
        """'layer 3', or 'layer 3 (encoder.2)' where the layers have names."""
        return f"layer {i + 1} ({self.layer_names[i]})" if i < len(self.layer_names) else f"layer {i + 1}"


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "less than 1e-38 (it underflows to 0 in float32)"
    return f"{x:.0e}" if (abs(x) < 1e-2 or abs(x) >= 1e4) else f"{x:.3g}"


class Diagnoser:
    """Turns a stream of observations into stable verdicts.

    A verdict appears after `on_after` consecutive publishes that show it and goes away after
    `off_after` that don't; a diverged run is reported at once.
    """

    def __init__(self, on_after: int = 3, off_after: int = 5, window: int = 20) -> None:
        self.on_after = on_after
        self.off_after = off_after
        self._hits: dict[str, int] = {}
        self._misses: dict[str, int] = {}
        self._active: dict[str, Verdict] = {}
        self._losses: deque[float] = deque(maxlen=window)
        self._first_floor: np.ndarray | None = None  # max(first mean |w|, 1e-30): the shrink ratio's denominator
        self._seen = 0

    def reset(self) -> None:
        self.__init__(self.on_after, self.off_after, self._losses.maxlen or 20)  # type: ignore[misc]

    def raw(self, obs: Observation) -> dict[str, Verdict]:
        """The verdicts this observation alone supports (no hysteresis)."""
        out: dict[str, Verdict] = {}
        if obs.diverged:
            out["diverged"] = Verdict(
                "diverged",
                "bad",
                f"diverged: the loss became NaN/Inf by step {obs.step}; training paused. "
                "Turn gradient clipping on, then reset.",
                REMEDIES_DIVERGED,
            )
            return out
        g = obs.grad_norm
        if obs.kind == "rnn" and obs.time_grad_norm is not None and len(obs.time_grad_norm) > 1:
            t = obs.time_grad_norm
            ratio = t[0] / t[-1] if t[-1] > 0 else float("nan")
            if math.isfinite(ratio) and ratio < VANISH_RATIO:
                out["vanishing"] = Verdict(
                    "vanishing",
                    "bad",
                    f"vanishing through time: step 1 receives {_fmt(ratio)} of step {len(t)}'s gradient, "
                    "so the start of the sequence cannot be learned",
                    REMEDIES_RNN_VANISH,
                )
        elif len(g) >= 2 and g[-1] > 0:
            ratio = g[0] / g[-1]
            if ratio < VANISH_RATIO:
                out["vanishing"] = Verdict(
                    "vanishing",
                    "bad",
                    f"vanishing: {obs.layer(0)}'s weight gradient is {_fmt(ratio)} of {obs.layer(len(g) - 1)}'s",
                    REMEDIES_TANH_VANISH if obs.activation == "tanh" else REMEDIES_MLP_VANISH,
                )
            elif ratio > EXPLODE_RATIO:
                out["exploding"] = Verdict(
                    "exploding",
                    "bad",
                    f"exploding: {obs.layer(0)}'s weight gradient is {_fmt(ratio)}x {obs.layer(len(g) - 1)}'s",
                    REMEDIES_EXPLODE,
                )
        chain = obs.gain_product
        if "exploding" not in out and chain is not None and len(chain) and chain[0] > EXPLODE_CHAIN:
            out["exploding"] = Verdict(
                "exploding",
                "bad",
                f"exploding: on the way back the gradient grows {_fmt(float(chain[0]))}x from the output to layer 1 "
                "(‖∂L/∂h‖, the chain-rule product)",
                REMEDIES_EXPLODE,
            )
        if obs.grad_total > EXPLODE_TOTAL and "exploding" not in out:
            out["exploding"] = Verdict(
                "exploding",
                "bad",
                f"exploding: total gradient norm {_fmt(obs.grad_total)}",
                REMEDIES_EXPLODE,
            )
        if obs.activation in ("sigmoid", "tanh") and obs.kind == "mlp" and len(obs.saturation):
            sat = obs.saturation[np.isfinite(obs.saturation)]
            sat_mean = sat.sum() / len(sat) if len(sat) else 0.0  # = sat.mean(), without its Python wrapper
            if sat_mean > SATURATED:
                out["saturated"] = Verdict(
                    "saturated",
                    "warn",
                    f"saturated: {sat_mean:.0%} of {obs.activation} units have a derivative below 0.01",
                    REMEDIES_SATURATED,
                )
        if obs.activation == "relu" and obs.kind == "mlp" and len(obs.dead) and np.nanmean(obs.dead) > DEAD:
            worst = int(np.nanargmax(obs.dead))
            out["dead_relu"] = Verdict(
                "dead_relu",
                "bad",
                f"dead ReLUs: {np.nanmean(obs.dead):.0%} of units output 0 for every input of the batch "
                f"({obs.layer(worst)}: {obs.dead[worst]:.0%}); they get no gradient",
                REMEDIES_DEAD,
            )
        if math.isfinite(obs.loss):
            self._losses.append(obs.loss)
        if len(self._losses) == self._losses.maxlen:
            first, last = self._losses[0], self._losses[-1]
            rel = abs(first - last) / max(abs(first), 1e-12)
            if rel < STAGNANT_REL and last > 0.5 * obs.baseline_loss:
                out["stagnant"] = Verdict(
                    "stagnant",
                    "warn",
                    f"loss has stopped changing: {first:.4g} -> {last:.4g} (chance level is {obs.baseline_loss:.3g})",
                    REMEDIES_STAGNANT,
                )
        mean_abs = obs.weight_mean_abs
        if len(mean_abs) and np.isfinite(mean_abs).all():
            if self._first_floor is None or len(self._first_floor) != len(mean_abs):
                self._first_floor = np.maximum(mean_abs, 1e-30)
            else:
                shrink = mean_abs / self._first_floor
                if shrink.min() < SHRINK:
                    worst = int(np.argmin(shrink))
                    out["shrinking"] = Verdict(
                        "shrinking",
                        "warn",
                        f"weights shrinking to 0: {obs.layer(worst)}'s mean |w| "
                        f"fell to {shrink[worst]:.0%} of its start",
                        REMEDIES_SHRINK,
                    )
        return out

    def update(self, obs: Observation) -> tuple[Verdict, ...]:
        """Feed one observation; returns the verdicts now in force (most severe first)."""
        raw = self.raw(obs)
        self._seen += 1
        if obs.diverged:  # NaN steps say nothing about the other verdicts: keep the ones that led here
            self._active.setdefault("diverged", raw["diverged"])  # it names the step it was first seen at
            return self.verdicts()
        for code in set(self._hits) | set(raw) | set(self._active):
            if code in raw:
                self._hits[code] = self._hits.get(code, 0) + 1
                self._misses[code] = 0
                if code in IMMEDIATE or self._hits[code] >= self.on_after or code in self._active:
                    self._active[code] = raw[code]  # refresh the text with current numbers
            else:
                self._hits[code] = 0
                self._misses[code] = self._misses.get(code, 0) + 1
                if code in self._active and (self._misses[code] >= self.off_after or code == "diverged"):
                    del self._active[code]
        return self.verdicts()

    def verdicts(self) -> tuple[Verdict, ...]:
        order = {"bad": 0, "warn": 1, "ok": 2}
        active = sorted(self._active.values(), key=lambda v: (order[v.severity], v.code != "diverged"))
        if not active and self._seen < self.on_after:
            return (Verdict("watching", "ok", "watching the first steps..."),)
        if not active:
            return (Verdict("healthy", "ok", "healthy: gradients reach every layer and the loss is moving"),)
        return tuple(active)
