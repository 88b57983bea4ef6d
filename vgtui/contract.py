"""The plain-data contract between the engine (torch) and its callers (TUI, CLI, tests).

Nothing here imports torch or textual. Commands go into a session; snapshots come out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

# --------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class Toggle:
    """Change one setting of the live model, applied between two steps.

    name: activation | init | batchnorm | skip | clip | lr | depth | cell
    value: the new value as text, e.g. "relu", "he", "on", "off", "1.0", "0.01", "12", "lstm".
    """

    name: str
    value: str


@dataclass(frozen=True)
class Pause:
    """Stop stepping until Resume (or Step)."""


@dataclass(frozen=True)
class Resume:
    """Continue stepping after Pause."""


@dataclass(frozen=True)
class Step:
    """Run exactly `count` steps, then stay paused."""

    count: int = 1


@dataclass(frozen=True)
class Reset:
    """Fresh weights from the seed with the current settings (toggles kept); clears a diverged state."""


@dataclass(frozen=True)
class SelectLayer:
    """Choose the layer (1-based) whose gradient histogram is published."""

    layer: int


@dataclass(frozen=True)
class Seek:
    """Replay only: move `records` published steps forward (or back, if negative)."""

    records: int


@dataclass(frozen=True)
class SetSpeed:
    """Replay only: multiply the playback speed by `factor` (kept within x0.5 .. x8)."""

    factor: float


@dataclass(frozen=True)
class NextEvent:
    """Replay only: jump to the next recorded toggle."""


@dataclass(frozen=True)
class Fork:
    """Compare: run B := a copy of run A at the current step with `toggles` (None: the session's --compare toggles).
    From then on both train in lockstep on the same batches; toggle keys go to B."""

    toggles: tuple[Toggle, ...] | None = None


@dataclass(frozen=True)
class Target:
    """Compare: send the toggle keys (and reset) to run "A" or run "B"."""

    run: str


@dataclass(frozen=True)
class EndCompare:
    """Compare: stop comparing and keep run "A" or run "B" as the one run."""

    keep: str


Command = (
    Toggle | Pause | Resume | Step | Reset | SelectLayer | Seek | SetSpeed | NextEvent | Fork | Target | EndCompare
)

HIST_BINS = 44  # the gradient histogram: fixed bins of log10 |g|
HIST_LO, HIST_HI = -20.0, 2.0
HIST_EDGES = np.linspace(HIST_LO, HIST_HI, HIST_BINS + 1)

TOGGLE_NAMES = ("activation", "init", "batchnorm", "skip", "clip", "lr", "depth", "cell")
ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu")
INITS = ("default", "xavier", "he")
CELLS = ("rnn", "lstm", "gru")

# --------------------------------------------------------------------------- snapshot


@dataclass(frozen=True)
class ModelState:
    """What the model is right now (after every toggle so far)."""

    kind: str  # "mlp" | "rnn" | "user" (a model watched with vgtui.watch)
    activation: str
    init: str
    batchnorm: bool
    skip: bool
    clip: float | None  # None = clipping off
    lr: float
    depth: int
    cell: str  # "rnn" | "lstm" | "gru" (only meaningful for kind == "rnn")
    optimizer: str = "sgd"
    # kind "user": the live remedies this model takes (e.g. "pause", "clip", "lr"); activation is the one its
    # activation modules use most ("none" where it has none: F.* calls), depth its number of shown layers
    capabilities: tuple[str, ...] = ()

    def describe(self) -> str:
        """One short line, e.g. 'sigmoid · default init · BN off · skip off · clip off · lr 0.1 · depth 20'."""
        clip = "off" if self.clip is None else f"{self.clip:g}"
        if self.kind == "user":
            lr = f"lr {self.lr:g}"
            return f"your model · {self.activation} · {self.optimizer} · {lr} · clip {clip} · {self.depth} layers"
        if self.kind == "rnn":
            return f"cell {self.cell} · {self.init} init · clip {clip} · lr {self.lr:g}"
        return (
            f"{self.activation} · {self.init} init · BN {'on' if self.batchnorm else 'off'} · "
            f"skip {'on' if self.skip else 'off'} · clip {clip} · lr {self.lr:g} · depth {self.depth}"
        )


def compare_legend(a: ModelState, b: ModelState, step: int) -> str:
    """The legend of run B by how its model differs from run A's: 'B: leaky_relu+he @ 300' (the values of activation,
    init and cell; name=value for the rest), 'B: same as A @ 300' where nothing differs (yet)."""
    parts = []
    for name in ("activation", "init", "cell", "batchnorm", "skip", "clip", "lr", "depth"):
        va, vb = getattr(a, name), getattr(b, name)
        if va == vb or (name == "cell" and a.kind != "rnn") or (name in ("activation", "depth") and a.kind == "rnn"):
            continue
        text = "on" if vb is True else "off" if vb in (False, None) else f"{vb:g}" if isinstance(vb, float) else str(vb)
        parts.append(text if name in ("activation", "init", "cell") else f"{name}={text}")
    return f"B: {'+'.join(parts) or 'same as A'} @ {step}"


@dataclass(frozen=True)
class Event:
    """A toggle or control applied at a step; drawn as a chart marker ("relu @ 1200")."""

    step: int
    name: str
    value: str

    @property
    def label(self) -> str:
        if self.name in ("activation", "cell", "init"):
            return f"{self.value} @ {self.step}"
        return f"{self.name}={self.value} @ {self.step}"


@dataclass(frozen=True)
class Verdict:
    """One plain-words diagnosis with the remedies to try."""

    code: str  # vanishing | exploding | diverged | saturated | dead_relu | stagnant | shrinking | healthy
    severity: str  # "ok" | "warn" | "bad"
    text: str
    remedies: tuple[str, ...] = ()


@dataclass(frozen=True)
class Notice:
    """A message for the user (e.g. a refused toggle). `seq` grows so a UI can show each once."""

    seq: int
    level: str  # "info" | "warn" | "error"
    text: str


@dataclass(frozen=True)
class Comparison:
    """A session that carries two runs: run B, forked from run A (the snapshot that holds this) at `fork_step`."""

    label: str  # the legend of B: "B: leaky_relu+he @ 300"
    fork_step: int
    target: str  # "A" | "B": the run the toggle keys go to
    b: Snapshot  # run B's own snapshot (its compare is None)


@dataclass(frozen=True)
class Snapshot:
    """Everything the engine publishes at one moment. Arrays are float64 numpy, ordered input -> output."""

    step: int
    status: str  # "running" | "paused" | "diverged" | "error" | "done"
    loss: float
    acc: float  # NaN where the task has no accuracy
    lr: float
    grad_total: float  # total gradient norm before clipping
    clipped: bool  # whether clipping fired on the last step
    layer_names: tuple[str, ...]
    grad_norm: np.ndarray  # per layer, gradient norm of its weight
    weight_norm: np.ndarray
    # ||W_after - W_before|| / ||W_before|| of the last heavy step, as float32 really moved the weights: exactly 0
    # where the update fell below float32 resolution (the layer is frozen although its gradient is not 0)
    update_ratio: np.ndarray
    weight_mean_abs: np.ndarray
    # Statistics of the activations are NaN where undefined (not 0): for another activation, or a layer whose
    # weights are not finite.
    saturation: np.ndarray  # sigmoid/tanh (and the vanilla RNN's h at W_hh): share of outputs with f'(z) < 0.01
    dead: np.ndarray  # ReLU: share of units that output <= 0 for the whole batch
    negative: np.ndarray  # Leaky ReLU: share of units that output <= 0 (slope k only) for the whole batch
    slope: np.ndarray  # mean f'(z) over batch and units: sigmoid a(1-a), tanh 1-a^2, ReLU active share, Leaky ReLU
    # active + k * (1 - active); RNN: mean 1-h^2 at W_hh for the vanilla cell, NaN for LSTM/GRU and elsewhere
    gain: np.ndarray  # ||dL/dh_in|| / ||dL/dh_out|| per layer
    gain_product: np.ndarray  # running product of gains from the output back (layer i: dL/dh_in_i vs output)
    hist_layer: int  # index of the layer whose gradient histogram is in hist_counts
    hist_edges: np.ndarray  # fixed bin edges of log10|g| (len bins+1)
    hist_counts: np.ndarray  # counts per bin
    time_grad_norm: np.ndarray | None  # RNN: ||dL/dh_t|| for t = first .. last step; None for MLP
    model: ModelState
    verdicts: tuple[Verdict, ...]
    events: tuple[Event, ...]
    notices: tuple[Notice, ...]
    steps_per_sec: float
    device: str
    preset: str
    title: str
    error: str | None = None
    stats_step: int = 0  # step at which the heavy statistics (saturation, gains, histogram) were taken
    grad_step: int = 0  # step at which grad_norm was measured: the last finite one once a run has diverged
    time_cell_grad_norm: np.ndarray | None = None  # LSTM: ||dL/dc_t|| (cell state) per time step; None otherwise
    extra: dict = field(default_factory=dict)
    compare: Comparison | None = None  # run B beside this run A, while comparing

    @property
    def first_last_ratio(self) -> float:
        """Gradient norm of the first hidden layer divided by the last one's (NaN if unknown)."""
        g = self.grad_norm
        if len(g) < 2 or not np.isfinite(g[-1]) or g[-1] == 0:
            return float("nan")
        return float(g[0] / g[-1])


class SessionLike(Protocol):
    """What a UI may rely on: a live Session, a replay, or a fake in tests."""

    def start(self) -> SessionLike: ...

    def send(self, command: Command) -> None: ...

    def latest(self) -> Snapshot | None: ...

    def stop(self, timeout: float = 1.0) -> None: ...

    @property
    def history(self): ...  # vgtui.history.History

    # A session that can compare also has `history_b` (run B's History, None while not comparing); the dashboard
    # reads it with getattr, so sessions that cannot compare (an attached script) need not have it.
