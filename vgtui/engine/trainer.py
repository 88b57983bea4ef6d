"""The synchronous training core: one model, its optimizer, toggles, and telemetry. No threads, no UI."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from vgtui.config import RunConfig, model_state
from vgtui.contract import Event, Toggle
from vgtui.engine import telemetry
from vgtui.engine.data import make_dataset
from vgtui.engine.models import MLP, Block, RNNModel, Trace, init_linear, init_model, make_cell
from vgtui.engine.optim import Optimizer, make_optimizer
from vgtui.engine.toggles import ToggleError, normalize


def pick_device(spec: str = "auto") -> torch.device:
    """auto -> cuda if present, else mps, else cpu. An unavailable device is a ToggleError-like ValueError."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA GPU is available here; allowed: auto, cpu")
    if spec == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("--device mps: MPS is not available here; allowed: auto, cpu")
    if spec not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {spec!r}: allowed: auto, cpu, cuda, mps")
    return torch.device(spec)


def show_value(value: object) -> str:
    """A toggle value as the user would type it: on/off, 0.05, relu."""
    if value is None or value is False:
        return "off"
    if value is True:
        return "on"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass
class Published:
    """The numbers of the steps since the last publish, on the host."""

    steps: np.ndarray  # step numbers (1-based: steps done)
    light: np.ndarray  # (n, 4 + L): loss, acc, total grad norm, clipped, per-layer grad norms
    heavy: telemetry.HeavyStats | None
    heavy_step: int


class Trainer:
    """Trains one scene step by step; toggles change it between steps."""

    def __init__(self, config: RunConfig, device: torch.device | str = "cpu") -> None:
        self.config = config
        self.device = torch.device(device) if isinstance(device, str) else device
        self.data = make_dataset(config.data, config.train.seed, self.device)
        self.state = model_state(config)
        self.step = 0
        self.hist_layer = max(0, config.train.hist_layer - 1)
        self._pending: list[torch.Tensor] = []
        self._pending_steps: list[int] = []
        self._heavies: list[tuple[int, torch.Tensor, telemetry.HeavyLayout]] = []  # row, stats, layout
        self._heavy_step = 0
        self._scratch = telemetry.Scratch()  # big per-step stacks live here, reused (see telemetry)
        self._nan = torch.full((), float("nan"), device=self.device)
        self._zero = torch.zeros((), device=self.device)
        self.build()

    # ------------------------------------------------------------------ building

    def build(self) -> None:
        """(Re)build model, optimizer and batch sampler from the seed and the current state."""
        seed = self.config.train.seed
        torch.manual_seed(seed)
        m, s = self.config.model, self.state
        if s.kind == "mlp":
            self.model: nn.Module = MLP(self.data.n_in, self.data.n_out, s.depth, m.width, s.activation,
                                        m.leaky_slope, s.batchnorm, s.skip)  # fmt: skip
        else:
            self.model = RNNModel(self.data.n_in, self.data.n_out, m.hidden, s.cell)
        init_model(self.model, s.init, s.activation, m.leaky_slope, m.init_gain)
        self.model.to(self.device)
        self.gen = torch.Generator().manual_seed(seed + 1)
        self.optimizer = self._new_optimizer(list(self.model.parameters()))
        self._structure_changed()
        self._pending.clear()
        self._pending_steps.clear()
        self._heavies.clear()

    def _new_optimizer(self, params: list[nn.Parameter]) -> Optimizer:
        t = self.config.train
        return make_optimizer(t.optimizer, params, self.state.lr, t.momentum)

    def _refresh_optimizer(self) -> None:
        """New optimizer over the current parameters, keeping the state (momentum) of those that remain."""
        old = self.optimizer
        self.optimizer = self._new_optimizer(list(self.model.parameters()))
        for p in self.model.parameters():
            if p in old.state:
                self.optimizer.state[p] = old.state[p]
        self._structure_changed()

    def _structure_changed(self) -> None:
        """Cache what every step needs: the parameter list and where the shown layers' weights sit in it."""
        self.model.train()
        self._params = list(self.model.parameters())
        self._weights = self.model.layer_weights()
        self.names = tuple(self.model.layer_names())
        self._grad_plan = telemetry.NormPlan([p.shape for p in self._params], "grad")
        index = {id(p): i for i, p in enumerate(self._params)}
        self._layer_pos = self._grad_plan.pos[[index[id(w)] for w in self._weights]]
        self._plan_order = torch.from_numpy(np.argsort(self._grad_plan.pos)).to(self.device)
        self._light_cols = np.concatenate([np.arange(4), 4 + self._layer_pos])
        self._scratch.layouts.clear()

    def optimizer_params(self) -> list[nn.Parameter]:
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    # ------------------------------------------------------------------ toggles

    def apply(self, toggle: Toggle) -> Event:
        """Apply one toggle now (between steps). Raises ToggleError if it is malformed or does not apply."""
        value = normalize(toggle, self.state.kind)
        name = toggle.name
        m = self.config.model
        s = self.state
        if name == "activation":
            self.model.activation = value
            self.state = replace(s, activation=value)
        elif name == "init":
            self.state = replace(s, init=value)
            init_model(self.model, value, s.activation, m.leaky_slope, m.init_gain)
            self.optimizer.state.clear()  # fresh weights: old momentum no longer applies
        elif name == "batchnorm":
            if value and self.config.train.batch_size < 2:
                raise ToggleError("batchnorm=on needs a batch of 2 or more (train.batch_size is 1)")
            for block in self.model.blocks:
                block.set_batchnorm(value, self.device)
            self.state = replace(s, batchnorm=value)
            self._refresh_optimizer()
        elif name == "skip":
            self.model.skip = value
            self.state = replace(s, skip=value)
        elif name == "clip":
            self.state = replace(s, clip=value)
        elif name == "lr":
            for group in self.optimizer.param_groups:
                group["lr"] = value
            self.state = replace(s, lr=value)
        elif name == "depth":
            self._set_depth(value)
        elif name == "cell":
            model: RNNModel = self.model  # type: ignore[assignment]
            model.cell_name = value
            model.cell = make_cell(value, model.hidden)
            model.init_cell(s.init, m.init_gain)
            model.cell.to(self.device)
            self.state = replace(s, cell=value)
            self._refresh_optimizer()
        return Event(self.step, name, show_value(value))

    def _set_depth(self, depth: int) -> None:
        blocks: nn.ModuleList = self.model.blocks
        m, s = self.config.model, self.state
        while len(blocks) > depth:
            del blocks[len(blocks) - 1]
        while len(blocks) < depth:
            block = Block(m.width, s.batchnorm)
            init_linear(block.linear, s.init, s.activation, m.leaky_slope, m.init_gain)
            blocks.append(block.to(self.device))
        self.state = replace(s, depth=depth)
        self.hist_layer = min(self.hist_layer, depth - 1)
        self._refresh_optimizer()

    def reset(self) -> None:
        """Fresh weights from the seed with the current settings (the step counter keeps counting)."""
        self.build()

    # ------------------------------------------------------------------ training

    def heavy_due(self, step_after: int) -> bool:
        every = self.config.train.log_every
        return step_after == 1 or step_after % every == 0

    def train_step(self) -> None:
        """One optimizer step; per-step numbers stay on the device until collect()."""
        model = self.model
        x, y = self.data.batch(self.config.train.batch_size, self.gen)
        heavy = self.heavy_due(self.step + 1)
        trace = Trace() if heavy else None
        out = model(x, trace)
        if self.data.regression:
            loss = F.mse_loss(out.squeeze(-1), y)
            acc = self._nan
        else:
            loss = F.cross_entropy(out, y)
            acc = (out.argmax(dim=1) == y).sum()  # correct predictions: divided by the batch size in collect
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params, weights = self._params, self._weights
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        # heavy steps: the weights before the update and the histogram of the gradient before clipping
        pre = telemetry.pre_step(self.state.kind, weights, self.hist_layer, self._scratch) if heavy else None
        clip = self.state.clip
        with torch.no_grad():  # the norms of every parameter's gradient, before clipping
            if clip is None:  # row: loss, acc, NaN (total: summed in collect), 0 (not clipped), norms
                row = self._grad_plan.norms(grads, self._scratch, (loss.detach(), acc, self._nan, self._zero))
            else:
                # the total exactly as clip_grad_norm_ sums it (training with clipping is chaotic enough that
                # summing the same norms in another order changes the run), then the norms in plan order
                norms = torch.stack(torch._foreach_norm(grads))
                total = torch.linalg.vector_norm(norms)
                grads = [p.grad for p in params if p.grad is not None]
                torch._foreach_mul_(grads, (clip / (total + 1e-6)).clamp(max=1.0))  # as clip_grad_norm_ does
                head = torch.stack([loss.detach(), acc, total, (total > clip).float()])
                row = torch.cat([head, norms[self._plan_order]])
        self.optimizer.step()
        self.step += 1
        stats = None
        if heavy:
            assert trace is not None and pre is not None
            s = self.state
            tensor, layout = telemetry.heavy_tensor(s.kind, s.activation if s.kind == "mlp" else s.cell, weights, pre,
                                                    trace, self._scratch, self.config.model.leaky_slope)  # fmt: skip
            stats = (len(self._pending), tensor, layout)
        self._pending.append(row)  # only once the whole step went through
        self._pending_steps.append(self.step)
        if stats is not None:
            self._heavies.append(stats)
            self._heavy_step = self.step

    @property
    def pending(self) -> int:
        """Steps whose numbers wait on the device for the next collect."""
        return len(self._pending)

    def collect_all(self) -> list[Published]:
        """Everything since the last collect, moved to the host in one transfer: one Published per heavy step
        (with the rows since the previous one), then one for the rows after the last heavy step."""
        pending, heavies = self._pending, self._heavies
        if not pending:
            return []
        k, width = len(pending), pending[0].shape[0]
        parts = [*pending, *(h[1] for h in heavies)]
        flat = (parts[0] if len(parts) == 1 else torch.cat(parts)).cpu().numpy()
        f64 = flat.astype(np.float64)
        light = f64[: k * width].reshape(k, width)[:, self._light_cols]  # loss, acc, total, clipped, shown layers
        light[:, 1] /= self.config.train.batch_size
        # the total is NaN where the device did not need it (no clipping): sum it here, in float32 as there
        norms = flat[: k * width].reshape(k, width)[:, 4:]
        total = np.sqrt(np.einsum("ij,ij->i", norms, norms))
        np.copyto(light[:, 2], total, where=np.isnan(light[:, 2]))
        steps = np.array(self._pending_steps)
        stats: list[telemetry.HeavyStats] = []
        at, i = k * width, 0
        while i < len(heavies):  # runs of heavy steps sent alike: one gather-divide each
            _, tensor, layout = heavies[i]
            j, size = i + 1, tensor.shape[0]
            while j < len(heavies) and heavies[j][2] is layout:
                j += 1
            stats += telemetry.unpack_heavy_rows(f64[at : at + (j - i) * size].reshape(j - i, size), layout)
            at, i = at + (j - i) * size, j
        out, start = [], 0
        for (row, *_), heavy in zip(heavies, stats, strict=True):
            out.append(Published(steps[start : row + 1], light[start : row + 1], heavy, int(steps[row])))
            start = row + 1
        if start < k:
            out.append(Published(steps[start:], light[start:], None, self._heavy_step))
        pending.clear()
        self._pending_steps.clear()
        heavies.clear()
        return out

    def collect(self) -> Published | None:
        """collect_all() as one Published: every row, and the statistics of the last heavy step among them."""
        pubs = self.collect_all()
        if len(pubs) < 2:
            return pubs[0] if pubs else None
        heavy = [p for p in pubs if p.heavy is not None]
        steps, light = np.concatenate([p.steps for p in pubs]), np.concatenate([p.light for p in pubs])
        return Published(steps, light, heavy[-1].heavy if heavy else None, self._heavy_step)

    def layer_names(self) -> list[str]:
        return self.model.layer_names()

    def describe(self) -> str:
        return self.state.describe()
