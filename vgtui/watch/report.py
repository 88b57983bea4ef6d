"""The host side of vgtui.watch: one publish's numbers (after the single device-to-host transfer) become history
rows, a diagnosis and a Snapshot. Runs in the hub process (or the hub thread), never on the training thread. No
torch.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from vgtui.contract import HIST_BINS, HIST_EDGES, Event, ModelState, Notice, Snapshot
from vgtui.engine.diagnosis import Diagnoser, Observation
from vgtui.history import LAYERWISE, History
from vgtui.watch import remedies
from vgtui.watch.layout import LightLayout, unpack_light
from vgtui.wire_messages import add_rows

STATS = tuple(k for k in LAYERWISE if k != "grad_norm")  # the per-layer statistics of a heavy step
MAX_EVENTS = 500
MAX_NOTICES = 20
ACT_FIELD = {
    "sigmoid": "saturation",
    "tanh": "saturation",
    "relu": "dead",
    "leaky_relu": "negative",
    "gelu": "negative",
    "silu": "negative",
}


@dataclass(frozen=True)
class LayerInfo:
    """What the host knows of the watched model's shown layers (fixed after the first step)."""

    names: tuple[str, ...]
    numel: np.ndarray
    activation: str  # the activation its modules use most ("none": F.* calls)
    optimizer: str
    block_names: tuple[str, ...] = ()
    block_layer: tuple[int | None, ...] = ()
    capabilities: tuple[str, ...] = remedies.CAPABILITIES  # the live remedies this model takes now

    @classmethod
    def unknown(cls) -> LayerInfo:
        """Before the first step: no layers yet."""
        return cls((), np.zeros(0), "none", "?")


@dataclass
class Batch:
    """The steps since the last publish, as the training thread hands them over."""

    flat: np.ndarray  # float32: the every-step numbers, then each heavy step's tensor, then the metric values
    steps: list[int]
    light: LightLayout | None  # how the every-step numbers lie in `flat`
    heavies: list[tuple[int, object]]  # (row, vgtui.watch.layout.HeavyMeta)
    metrics: list[str]
    layers: LayerInfo
    status: str
    lr: float
    clip: float | None
    hist_layer: int
    skipped: int
    heavy_every: int = 0  # the heavy-statistics cadence now (vgtui.watch.cadence; 0: unchanged)
    logged: bool = False  # log(loss=...) was called: a NaN loss is then a divergence, not a missing value
    metric_floats: dict[str, float] = field(default_factory=dict)  # metrics logged as Python numbers
    # heavy steps' factor of the user's own clipping: (row, value, or None: the next value after the metrics)
    user_clip: list[tuple[int, float | None]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    notices: list[tuple[str, str]] = field(default_factory=list)
    time: float = field(default_factory=time.monotonic)


class Reporter:
    """Turns batches into history rows and Snapshots; keeps the events, notices and verdicts."""

    def __init__(self, name: str, device: str, heavy_every: int, capacity: int = 4096) -> None:
        self.name, self.device, self.heavy_every = name, device, heavy_every
        self.history = History(capacity)
        self.diagnoser = Diagnoser()
        self.events: deque[Event] = deque(maxlen=MAX_EVENTS)
        self.n_events = 0
        self.notices: deque[Notice] = deque(maxlen=MAX_NOTICES)
        self._seq = 0
        self.layers = LayerInfo.unknown()
        self.step = 0
        self.loss = self.acc = self.grad_total = math.nan
        self.clipped = False
        self.grad_norm = np.zeros(0)
        self.grad_step = 0
        self.heavy: dict[str, np.ndarray] = {}
        self.heavy_step = 0
        self.blocks: dict[str, list[float]] = {}
        self.metrics: dict[str, float] = {}
        self.user_clip: dict[str, float] | None = None  # the user's own clipping, once it was seen clipping
        self.baseline = math.nan
        self.verdicts: tuple = ()
        self.rate = 0.0
        self._mark: tuple[float, int] | None = None
        self.last: Batch | None = None
        self.latest: Snapshot | None = None
        self.dist: dict | None = None  # {"world": N, "wrapper": "DDP"} under torchrun (rank 0's hub)

    def notify(self, level: str, text: str) -> Notice:
        self._seq += 1
        notice = Notice(self._seq, level, text)
        self.notices.append(notice)
        return notice

    def add_events(self, events: list[Event]) -> None:
        for e in events:
            self.events.append(e)
            self.n_events += 1

    def absorb(self, batch: Batch) -> tuple[Snapshot, dict | None]:
        """One publish: the Snapshot, and its history rows (already added to self.history; see add_rows)."""
        self.layers = info = batch.layers
        self.heavy_every = batch.heavy_every or self.heavy_every
        self.add_events(batch.events)
        for level, text in batch.notices:
            self.notify(level, text)
        rows = None
        k = len(batch.steps)
        if k and batch.light is not None:
            flat = batch.flat.astype(np.float64)
            shown = unpack_light(flat, batch.light)
            at = batch.light.size
            heavy = None
            segments: list[tuple[int, int, dict | None]] = []  # (end row, heavy step, its statistics)
            for row, meta in batch.heavies:
                size = meta.size  # type: ignore[attr-defined]
                heavy, self.blocks = unpack_heavy(flat[at : at + size], meta, info)
                self.heavy_step = batch.steps[row]
                segments.append((row + 1, self.heavy_step, heavy))
                at += size
            if not segments or segments[-1][0] < k:
                segments.append((k, self.heavy_step, None))
            self.metrics.update(batch.metric_floats)
            for j, name in enumerate(batch.metrics):
                self.metrics[name] = float(flat[at + j])
            at += len(batch.metrics)
            for row, value in batch.user_clip:
                if value is None:
                    value, at = float(flat[at]), at + 1
                self._user_clip(batch.steps[row], value)
            self.last = batch
            self._take(batch.steps, shown, heavy)
            rows = {
                "steps": np.asarray(batch.steps, dtype=np.int64),
                "light": shown,
                "lr": batch.lr,
                "segments": segments,
            }
            add_rows(self.history, rows)
            self._diagnose()
        self._rate(batch)
        self.last = batch
        self.latest = self.snapshot(batch.status)
        return self.latest, rows

    def _take(self, steps: list[int], shown: np.ndarray, heavy: dict[str, np.ndarray] | None) -> None:
        self.step = steps[-1]
        self.loss, self.acc, self.grad_total, clipped = shown[-1, :4].tolist()
        self.clipped = clipped > 0.5
        if not math.isfinite(self.baseline) and math.isfinite(self.loss):
            self.baseline = self.loss
        finite = np.isfinite(shown[:, 4:]).all(axis=1)
        if finite.any():
            row = int(np.flatnonzero(finite)[-1])
            self.grad_norm, self.grad_step = shown[row, 4:].copy(), steps[row]
        elif len(self.grad_norm) != shown.shape[1] - 4:
            self.grad_norm, self.grad_step = shown[-1, 4:].copy(), steps[-1]
        if heavy is not None:
            self.heavy = heavy

    def _user_clip(self, step: int, factor: float) -> None:
        """A heavy step's factor of the user's own clipping: labelled from the first step it clipped on."""
        clipped = user_clip_factor(factor)
        if self.user_clip is None:
            if clipped is None:
                return
            self.user_clip = {"factor": 1.0, "step": step, "clipped_steps": 0, "checked_steps": 0}
            self.notify(
                "warn",
                f"your own gradient clipping (between backward() and step()) scaled the gradients by "
                f"×{clipped:.3g} at step {step}: the gradient norms shown are after it (vgtui measures at step())",
            )
        self.user_clip["checked_steps"] += 1
        self.user_clip["clipped_steps"] += clipped is not None
        self.user_clip["factor"], self.user_clip["step"] = clipped if clipped is not None else 1.0, step

    def _diagnose(self) -> None:
        n = len(self.layers.names)
        h = self.heavy if self.heavy and len(self.heavy["weight_norm"]) == n else {}
        nan = np.full(n, np.nan)
        obs = Observation(
            step=self.step,
            kind="mlp",
            activation=self.layers.activation,
            loss=self.loss,
            baseline_loss=self.baseline if math.isfinite(self.baseline) else math.inf,
            grad_norm=self.grad_norm,
            grad_total=self.grad_total,
            saturation=h.get("saturation", nan),
            dead=_finite_or_empty(h.get("dead", nan)),
            weight_mean_abs=h.get("weight_mean_abs", np.zeros(0)),
            time_grad_norm=None,
            diverged=self._diverged(),
            gain_product=h.get("gain_product"),
            layer_names=self.layers.names,
        )
        self.verdicts = remedies.for_user(self.diagnoser.update(obs), "activation" in self.layers.capabilities)

    def _diverged(self) -> bool:
        """A logged loss or the gradient norm went NaN/Inf (a loss never logged is NaN too: that is no divergence)."""
        logged = self.last is not None and self.last.logged
        return self.step > 0 and ((logged and not math.isfinite(self.loss)) or not math.isfinite(self.grad_total))

    def _rate(self, batch: Batch) -> None:
        if batch.status != "running":
            self._mark, self.rate = None, 0.0
            return
        if self._mark is not None and batch.time - self._mark[0] >= 0.5:
            inst = (self.step - self._mark[1]) / (batch.time - self._mark[0])
            self.rate = inst if self.rate == 0 else 0.5 * (self.rate + inst)
            self._mark = (batch.time, self.step)
        elif self._mark is None:
            self._mark = (batch.time, self.step)

    def snapshot(self, status: str) -> Snapshot:
        """The newest numbers as a Snapshot (NaN where a statistic is unknown for this model)."""
        info, b = self.layers, self.last
        n = len(info.names)
        h = self.heavy if self.heavy and len(self.heavy["weight_norm"]) == n else {}
        nan = np.full(n, np.nan)
        grad = self.grad_norm if len(self.grad_norm) == n else nan
        if status == "running" and self._diverged():
            status = "diverged"
        model = ModelState(
            kind="user",
            activation=info.activation,
            init="yours",
            batchnorm=False,
            skip=False,
            clip=b.clip if b else None,
            lr=b.lr if b else math.nan,
            depth=n,
            cell="",
            optimizer=info.optimizer,
            capabilities=info.capabilities,
        )
        skipped = b.skipped if b else 0
        device = self.device + (f" · {skipped} skipped steps" if skipped else "")
        extra: dict = {"watch": {"name": self.name, "heavy_every": self.heavy_every, "skipped_steps": skipped}}
        if self.user_clip is not None:
            extra["watch"]["user_clip"] = dict(self.user_clip)
        if self.dist:
            extra["dist"] = dict(self.dist)
        if self.metrics:
            extra["metrics"] = dict(self.metrics)
        if self.blocks:
            extra["blocks"] = self.blocks
        return Snapshot(
            step=self.step,
            status=status,
            loss=self.loss,
            acc=self.acc,
            lr=b.lr if b else math.nan,
            grad_total=self.grad_total,
            clipped=self.clipped,
            layer_names=info.names,
            grad_norm=grad,
            **{k: h.get(k, nan) for k in STATS},
            hist_layer=b.hist_layer if b else 0,
            hist_edges=HIST_EDGES,
            hist_counts=h.get("hist_counts", np.zeros(HIST_BINS)),
            time_grad_norm=None,
            model=model,
            verdicts=self.verdicts,
            events=tuple(self.events),
            notices=tuple(self.notices),
            steps_per_sec=self.rate,
            device=device,
            preset=self.name,
            title=f"watching {self.name}",
            stats_step=self.heavy_step,
            grad_step=self.grad_step,
            extra=extra,
        )


def user_clip_factor(factor: float) -> float | None:
    """The factor if it shows the user's code clipped the gradients (below 1), else None: 1 (untouched or nothing
    to clip), NaN, above 1, or an exact power of two below 1/2 (a loss-scale unscale vgtui did not account for)."""
    if not math.isfinite(factor) or not 0 < factor < 1 - 1e-5:
        return None
    exponent = math.log2(factor)
    if factor < 0.5 and abs(exponent - round(exponent)) < 1e-6:
        return None
    return factor


def _finite_or_empty(values: np.ndarray) -> np.ndarray:
    """The values, or none at all where none is known (the diagnoser averages what it gets)."""
    return values if np.isfinite(values).any() else np.zeros(0)


def unpack_heavy(values: np.ndarray, meta: object, info: LayerInfo) -> tuple[dict[str, np.ndarray], dict]:
    """One heavy step's per-layer statistics (NaN where undefined) and its block gradients, from its float values."""
    n: int = meta.n_layers  # type: ignore[attr-defined]
    nan = np.full(n, np.nan)
    out = {k: nan.copy() for k in ("saturation", "dead", "negative", "slope", "gain", "gain_product")}
    pre, after, delta, l1 = (values[j * n : (j + 1) * n] for j in range(4))
    at = 4 * n
    with np.errstate(all="ignore"):
        out["weight_norm"] = after.copy()
        out["update_ratio"] = delta / np.maximum(pre, 1e-30) if meta.copied else nan.copy()  # type: ignore[attr-defined]
        out["weight_mean_abs"] = l1 / np.maximum(info.numel[:n], 1)
        if meta.acts:  # type: ignore[attr-defined]
            m = values[at : at + 3 * n].reshape(n, 3)
            at += 3 * n
            for i, a in enumerate(meta.acts):  # type: ignore[attr-defined]
                if a is not None:
                    _activation(out, i, a, m[i])
        out["hist_counts"] = values[at : at + HIST_BINS].copy() if meta.hist else np.zeros(HIST_BINS)  # type: ignore[attr-defined]
        at += HIST_BINS if meta.hist else 0  # type: ignore[attr-defined]
        blocks: dict = {}
        nb: int = meta.n_blocks  # type: ignore[attr-defined]
        if nb:
            g_in, g_out = values[at : at + nb], values[at + nb : at + 2 * nb]
            gain, product = g_in / g_out, g_in / g_out[-1]
            for b, j in enumerate(info.block_layer[:nb]):
                if j is not None and j < n:
                    out["gain"][j], out["gain_product"][j] = gain[b], product[b]
            blocks = {
                "names": list(info.block_names[:nb]),
                "grad_in": g_in.tolist(),
                "grad_out": g_out.tolist(),
                "gain": gain.tolist(),
                "product": product.tolist(),
            }
    broken = ~np.isfinite(out["weight_norm"])
    for k in ("update_ratio", "weight_mean_abs", "saturation", "dead", "negative", "slope"):
        out[k][broken] = np.nan
    return out, blocks


def _activation(out: dict[str, np.ndarray], i: int, a: object, v: np.ndarray) -> None:
    kind, numel, units, leak = a.kind, max(a.numel, 1), max(a.units, 1), a.leak  # type: ignore[attr-defined]
    if kind in ("sigmoid", "tanh"):
        out["slope"][i] = (0.25 if kind == "sigmoid" else 1.0) - v[0] / numel
        out["saturation"][i] = v[1] / numel
    elif kind in ("relu", "leaky_relu"):
        out["slope"][i] = leak + (1 - leak) * v[0] / numel
        out[ACT_FIELD[kind]][i] = v[2] / units
    else:
        out["slope"][i] = v[0] / numel
        out[ACT_FIELD[kind]][i] = v[2] / units
