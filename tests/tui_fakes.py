"""A deterministic fake training session for the dashboard tests (no torch, no thread).

FakeSession looks like vgtui.contract.SessionLike. It only advances when told to (`advance(n)`, or a
`Step(n)` command), so every snapshot and history row is the same on every run. Its 20-layer sigmoid net
starts with first-layer gradients around 1e-8; toggles change the synthetic numbers the way the real
thing would (ReLU / BatchNorm / skips / better init make the gradient reach the first layers).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from vgtui.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vgtui.contract import (
    HIST_EDGES,
    Command,
    Event,
    ModelState,
    Notice,
    Pause,
    Reset,
    Resume,
    SelectLayer,
    Snapshot,
    Step,
    Toggle,
    Verdict,
)
from vgtui.history import History
from vgtui.runlog import RunLogWriter, event_record, meta_record, step_record

ACT_GAIN = {"sigmoid": 0.4, "tanh": 0.7, "relu": 0.93, "leaky_relu": 0.96}
ACT_SLOPE = {"sigmoid": 0.245, "tanh": 0.82, "relu": 0.52, "leaky_relu": 0.53}
FLOAT32_FLOOR = 1e-9  # an update ratio below this rounds away in float32 (the layer does not move: 0)
CELL_GAIN = {"rnn": 0.68, "lstm": 0.97, "gru": 0.96}
MLP_ONLY = ("activation", "batchnorm", "skip", "depth")


def fake_config(name: str = "deep-sigmoid", kind: str = "mlp", depth: int = 20) -> RunConfig:
    """A RunConfig like the presets' (built here so the tests need no preset files)."""
    if kind == "rnn":
        return RunConfig(
            name=name,
            title="A vanilla RNN forgets the first bit",
            description="The gradient reaching early time steps shrinks by each step's gain.",
            model=ModelConfig(kind="rnn", depth=1, activation="tanh", cell="rnn"),
            data=DataConfig(task="first-bit", seq_len=50),
            train=TrainConfig(lr=0.05),
        )
    return RunConfig(
        name=name,
        title="Twenty sigmoid layers",
        description="The classic: gradients shrink ×0.25 per layer and the first layers never learn.",
        model=ModelConfig(kind="mlp", depth=depth, activation="sigmoid"),
        data=DataConfig(task="spirals"),
        train=TrainConfig(lr=0.1),
    )


class FakeSession:
    """Synthetic snapshots and history; records every command and every stop()."""

    def __init__(self, config: RunConfig | None = None, steps_per_sec: float = 123.4) -> None:
        self.config = config or fake_config()
        m, t = self.config.model, self.config.train
        self.model = ModelState(
            kind=m.kind,
            activation=m.activation,
            init=m.init,
            batchnorm=m.batchnorm,
            skip=m.skip,
            clip=t.clip,
            lr=t.lr,
            depth=m.depth if m.kind == "mlp" else 3,
            cell=m.cell,
        )
        self.commands: list[Command] = []
        self.events: list[Event] = []
        self.notices: list[Notice] = []
        self.started = False
        self.stop_calls = 0
        self.status = "running"
        self.error: str | None = None
        self.step = 0
        self.loss = 0.693
        self.hist_layer = 0
        self.steps_per_sec = steps_per_sec
        self.hold_toggles = False  # True: toggles wait for release(), as a busy trainer applies them later
        self.held: list[Toggle] = []
        self._history = History(capacity=1024)
        self._snap: Snapshot | None = None
        self._snap_key: tuple | None = None

    # ------------------------------------------------------------------ SessionLike

    def start(self) -> FakeSession:
        self.started = True
        return self

    def stop(self, timeout: float = 1.0) -> None:
        self.stop_calls += 1

    @property
    def stopped(self) -> bool:
        return self.stop_calls > 0

    @property
    def history(self) -> History:
        return self._history

    def send(self, command: Command) -> None:
        self.commands.append(command)
        if isinstance(command, Pause):
            self.status = "paused" if self.status == "running" else self.status
        elif isinstance(command, Resume):
            self.status = "running" if self.status == "paused" else self.status
        elif isinstance(command, Step):
            self.advance(command.count)
            self.status = "paused"
        elif isinstance(command, Reset):
            self.loss, self.status, self.error = 0.693, "running", None
            self.events.append(Event(self.step, "reset", "weights"))
        elif isinstance(command, Toggle):
            if self.hold_toggles:
                self.held.append(command)
            else:
                self._toggle(command)
        elif isinstance(command, SelectLayer):
            self.hist_layer = command.layer - 1

    def latest(self) -> Snapshot | None:
        if self.step == 0 and self.status == "running":
            return None
        key = (self.step, self.status, self.model, len(self.events), len(self.notices), self.hist_layer, self.error)
        if key != self._snap_key:
            self._snap, self._snap_key = self._make_snapshot(), key
        return self._snap

    # ------------------------------------------------------------------ test controls

    def advance(self, n: int = 1) -> None:
        """Run n synthetic steps (each appends one history row)."""
        for _ in range(n):
            self.step += 1
            g = self._layers()
            first = float(g["grad_norm"][0])
            rate = 0.0005 + 0.01 * min(1.0, max(0.0, (math.log10(first) + 8) / 6)) if first > 0 else 0.0
            self.loss = self.loss - rate * (self.loss - 0.05)
            scalars = {"loss": self.loss, "acc": self._acc(), "lr": self.model.lr, "grad_total": 0.5, "clipped": 0}
            self._history.append(self.step, scalars, g)

    def release(self) -> None:
        """Apply the toggles held back (hold_toggles)."""
        held, self.held = self.held, []
        for t in held:
            self._toggle(t)

    def fail(self, text: str = "RuntimeError: CUDA out of memory") -> None:
        self.status, self.error = "error", text

    def diverge(self) -> None:
        self.status, self.loss = "diverged", float("nan")

    # ------------------------------------------------------------------ synthetic numbers

    def _acc(self) -> float:
        return float(np.clip(1.0 - self.loss / 0.693 * 0.5, 0.0, 1.0)) if math.isfinite(self.loss) else float("nan")

    def _gain(self) -> float:
        m = self.model
        g = CELL_GAIN[m.cell] if m.kind == "rnn" else ACT_GAIN[m.activation]
        if m.init in ("xavier", "he"):
            g = g**0.5
        if m.batchnorm or m.skip:
            g = max(g, 0.98)
        return g

    def _layers(self) -> dict[str, np.ndarray]:
        n = self.model.depth
        i = np.arange(n)
        wiggle = 1 + 0.05 * np.sin(i + self.step / 40)
        gain = self._gain() * wiggle
        product = np.cumprod(gain[::-1])[::-1]
        grad = 0.3 * product
        wmean = 0.1 + 0.05 * np.minimum(1.0, grad * 30) * (1 - np.exp(-self.step / 150))
        act = self.model.activation
        nan = np.full(n, np.nan)  # what the engine publishes where a statistic is undefined
        sat = np.full(n, 0.6 + 0.3 * i.mean() / n) if act == "sigmoid" else np.full(n, 0.2 if act == "tanh" else 0.0)
        slope = ACT_SLOPE[act] * (1 - 0.02 * np.cos(i))
        if self.model.kind == "rnn":  # the vanilla cell's 1 - h^2 at W_hh; nothing for the gated cells
            sat, slope = nan.copy(), nan.copy()
            if self.model.cell == "rnn":
                sat[min(2, n - 1)], slope[min(2, n - 1)] = 0.05, 0.93
        elif act not in ("sigmoid", "tanh"):
            sat = nan
        ratio = self.model.lr * grad / 5.0
        return {
            "grad_norm": grad,
            "weight_norm": np.full(n, 5.0),
            "update_ratio": np.where(ratio < FLOAT32_FLOOR, 0.0, ratio),
            "weight_mean_abs": wmean,
            "saturation": sat,
            "dead": np.full(n, 0.15) if act == "relu" and self.model.kind == "mlp" else nan,
            "negative": np.full(n, 0.12) if act == "leaky_relu" and self.model.kind == "mlp" else nan,
            "slope": slope,
            "gain": gain,
            "gain_product": product,
        }

    def _toggle(self, t: Toggle) -> None:
        m = self.model
        refused = (t.name == "cell" and m.kind == "mlp") or (t.name in MLP_ONLY and m.kind == "rnn")
        if refused:
            what = "RNN" if t.name == "cell" else "MLP"
            seq = len(self.notices) + 1
            self.notices.append(Notice(seq, "warn", f"{t.name} applies only to {what} presets; this one is {m.kind}"))
            return
        if t.name in ("activation", "init", "cell"):
            self.model = replace(m, **{t.name: t.value})
        elif t.name in ("batchnorm", "skip"):
            self.model = replace(m, **{t.name: t.value == "on"})
        elif t.name == "clip":
            self.model = replace(m, clip=None if t.value == "off" else float(t.value))
        elif t.name == "lr":
            self.model = replace(m, lr=float(t.value))
        elif t.name == "depth":
            self.model = replace(m, depth=int(t.value))
        self.events.append(Event(self.step, t.name, t.value))

    def _make_snapshot(self) -> Snapshot:
        g = self._layers()
        n = self.model.depth
        edges = np.linspace(-14, 0, 29)
        centers = (edges[:-1] + edges[1:]) / 2
        h = min(self.hist_layer, n - 1)
        peak = math.log10(float(g["grad_norm"][h])) - 2
        counts = np.round(1000 * np.exp(-0.5 * ((centers - peak) / 0.8) ** 2))
        time_grad = time_cell = None
        if self.model.kind == "rnn":
            time_grad = self._gain() ** np.arange(50)[::-1] * 0.2
            if self.model.cell == "lstm":  # the cell state carries the gradient further than h
                time_cell = 0.995 ** np.arange(50)[::-1] * 0.05
        ratio = float(g["grad_norm"][0] / g["grad_norm"][-1])
        if ratio < 1e-4:
            verdicts = (
                Verdict(
                    "vanishing",
                    "bad",
                    f"Vanishing gradients: layer 1 gets {ratio:.0e} of the last layer's gradient, "
                    "so the first layers barely learn.",
                    ("switch to ReLU", "He init", "BatchNorm", "skip connections"),
                ),
            )
        else:
            verdicts = (Verdict("healthy", "ok", "Gradients reach every layer; all layers are learning."),)
        if self.status == "diverged":  # as the engine reports it
            verdicts = (Verdict("diverged", "bad", "diverged: the loss became NaN/Inf; training paused."),)
        return Snapshot(
            step=self.step,
            status=self.status,
            loss=self.loss,
            acc=self._acc(),
            lr=self.model.lr,
            grad_total=0.5,
            clipped=False,
            layer_names=tuple(f"L{k + 1}" for k in range(n)),  # as the engine names MLP layers
            hist_layer=h,
            hist_edges=edges,
            hist_counts=counts,
            time_grad_norm=time_grad,
            model=self.model,
            verdicts=verdicts,
            events=tuple(self.events),
            notices=tuple(self.notices),
            steps_per_sec=self.steps_per_sec,
            device="cpu",
            preset=self.config.name,
            title=self.config.title,
            error=self.error,
            stats_step=self.step,
            time_cell_grad_norm=time_cell,
            **g,
        )


def write_recording(path, steps: int = 40):
    """A run log written from the fake's snapshots, as `vgtui run --out` writes one (no torch): relu at step 20."""
    fake = FakeSession(fake_config())
    writer = RunLogWriter(path)
    writer.write(meta_record(fake.config, "cpu", [f"L{i + 1}" for i in range(20)]))
    for step in range(1, steps + 1):
        if step == 20:
            fake.send(Toggle("activation", "relu"))
            writer.write(event_record(fake.events[-1]))
        fake.advance(1)
        snap = fake.latest()
        # the engine's fixed log10|g| bins (the fake draws 28 bins of its own for the charts)
        centers = (snap.hist_edges[:-1] + snap.hist_edges[1:]) / 2
        counts = np.histogram(centers, HIST_EDGES, weights=snap.hist_counts)[0].astype(float)
        writer.write(step_record(replace(snap, hist_edges=HIST_EDGES, hist_counts=counts)))
    writer.close()
    return path
