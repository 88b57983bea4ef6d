"""Switchable models: a deep MLP whose blocks can change live, and an RNN with a swappable cell."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F


def activate(z: torch.Tensor, name: str, slope: float) -> torch.Tensor:
    if name == "sigmoid":
        return torch.sigmoid(z)
    if name == "tanh":
        return torch.tanh(z)
    if name == "relu":
        return F.relu(z)
    if name == "leaky_relu":
        return F.leaky_relu(z, slope)
    raise ValueError(f"unknown activation {name!r}")


def init_linear(layer: nn.Linear, scheme: str, activation: str, slope: float, gain: float) -> None:
    """Re-initialise one Linear layer: torch's default, Glorot (xavier) or Kaiming (he)."""
    if scheme == "default":
        layer.reset_parameters()
    elif scheme == "xavier":
        nn.init.xavier_uniform_(layer.weight)
        nn.init.zeros_(layer.bias)
    elif scheme == "he":
        nonlin = "leaky_relu" if activation == "leaky_relu" else "relu"
        nn.init.kaiming_normal_(layer.weight, a=slope if nonlin == "leaky_relu" else 0.0, nonlinearity=nonlin)
        nn.init.zeros_(layer.bias)
    else:
        raise ValueError(f"unknown init {scheme!r}")
    if gain != 1.0:
        with torch.no_grad():
            layer.weight.mul_(gain)


@dataclass
class Trace:
    """What a recorded forward pass keeps for telemetry."""

    hidden: list[torch.Tensor] = field(default_factory=list)  # h_0 .. h_D (MLP) or h_1 .. h_T (RNN), grads retained
    acts: list[torch.Tensor] = field(default_factory=list)  # per block activation output (MLP)
    cells: list[torch.Tensor] = field(default_factory=list)  # LSTM: cell states c_1 .. c_T, grads retained


class Block(nn.Module):
    """Linear -> [BatchNorm] -> activation, with an optional residual skip around it."""

    def __init__(self, width: int, batchnorm: bool) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.bn: nn.BatchNorm1d | None = nn.BatchNorm1d(width) if batchnorm else None

    def set_batchnorm(self, on: bool, device: torch.device) -> None:
        if on and self.bn is None:
            self.bn = nn.BatchNorm1d(self.linear.out_features).to(device)
        elif not on:
            self.bn = None


class MLP(nn.Module):
    """input -> stem Linear -> `depth` hidden blocks -> output Linear."""

    kind = "mlp"

    def __init__(self, n_in: int, n_out: int, depth: int, width: int, activation: str, slope: float,
                 batchnorm: bool, skip: bool) -> None:  # fmt: skip
        super().__init__()
        self.width = width
        self.activation = activation
        self.slope = slope
        self.skip = skip
        self.stem = nn.Linear(n_in, width)
        self.blocks = nn.ModuleList(Block(width, batchnorm) for _ in range(depth))
        self.head = nn.Linear(width, n_out)

    @property
    def depth(self) -> int:
        return len(self.blocks)

    def layer_weights(self) -> list[torch.Tensor]:
        """The weights whose telemetry is shown, input -> output (one per hidden block)."""
        return [b.linear.weight for b in self.blocks]

    def layer_names(self) -> list[str]:
        return [f"L{i + 1}" for i in range(self.depth)]

    def linears(self) -> list[nn.Linear]:
        return [self.stem, *(b.linear for b in self.blocks), self.head]

    def forward(self, x: torch.Tensor, trace: Trace | None = None) -> torch.Tensor:
        h = self.stem(x)
        if trace is not None:
            h.retain_grad()
            trace.hidden.append(h)
        for block in self.blocks:
            z = block.linear(h)
            if block.bn is not None:
                z = block.bn(z)
            a = activate(z, self.activation, self.slope)
            h = h + a if self.skip else a
            if trace is not None:
                h.retain_grad()
                trace.hidden.append(h)
                trace.acts.append(a)
        return self.head(h)


def make_cell(cell: str, hidden: int) -> nn.Module:
    if cell == "rnn":
        return nn.RNNCell(hidden, hidden, nonlinearity="tanh")
    if cell == "lstm":
        return nn.LSTMCell(hidden, hidden)
    if cell == "gru":
        return nn.GRUCell(hidden, hidden)
    raise ValueError(f"unknown cell {cell!r}")


class RNNModel(nn.Module):
    """input projection -> recurrent cell unrolled over time -> head on the last step."""

    kind = "rnn"

    def __init__(self, n_in: int, n_out: int, hidden: int, cell: str) -> None:
        super().__init__()
        self.hidden = hidden
        self.cell_name = cell
        self.proj = nn.Linear(n_in, hidden)
        self.cell = make_cell(cell, hidden)
        self.head = nn.Linear(hidden, n_out)

    @property
    def depth(self) -> int:
        return 1

    def layer_weights(self) -> list[torch.Tensor]:
        return [self.proj.weight, self.cell.weight_ih, self.cell.weight_hh, self.head.weight]

    def layer_names(self) -> list[str]:
        return ["input", "cell W_ih", "cell W_hh", "head"]

    def init_cell(self, scheme: str, gain: float) -> None:
        """Initialise the recurrent weights; LSTM forget gates start with bias 1 (common practice)."""
        if scheme == "default":
            self.cell.reset_parameters()
        else:
            n_gates = self.cell.weight_hh.shape[0] // self.hidden
            for w in (self.cell.weight_ih, self.cell.weight_hh):
                for k in range(n_gates):
                    chunk = w.data[k * self.hidden : (k + 1) * self.hidden]
                    if scheme == "xavier":
                        nn.init.xavier_uniform_(chunk)
                    else:
                        nn.init.kaiming_normal_(chunk, nonlinearity="relu")
            nn.init.zeros_(self.cell.bias_ih)
            nn.init.zeros_(self.cell.bias_hh)
        if gain != 1.0:
            with torch.no_grad():
                self.cell.weight_hh.mul_(gain)
        if self.cell_name == "lstm":
            with torch.no_grad():
                self.cell.bias_ih[self.hidden : 2 * self.hidden].fill_(1.0)
                self.cell.bias_hh[self.hidden : 2 * self.hidden].fill_(0.0)

    def forward(self, x: torch.Tensor, trace: Trace | None = None) -> torch.Tensor:
        u = self.proj(x)  # (B, T, H)
        batch = x.shape[0]
        h = u.new_zeros(batch, self.hidden)
        c = u.new_zeros(batch, self.hidden) if self.cell_name == "lstm" else None
        for t in range(u.shape[1]):
            if c is not None:
                h, c = self.cell(u[:, t], (h, c))
            else:
                h = self.cell(u[:, t], h)
            if trace is not None:
                h.retain_grad()
                trace.hidden.append(h)
                if c is not None:
                    c.retain_grad()
                    trace.cells.append(c)
        return self.head(h)


def init_model(model: nn.Module, scheme: str, activation: str, slope: float, gain: float) -> None:
    """Apply an init scheme to every layer of the model."""
    if isinstance(model, MLP):
        for layer in model.linears():
            init_linear(layer, scheme, activation, slope, gain)
    else:
        assert isinstance(model, RNNModel)
        init_linear(model.proj, scheme, "tanh", slope, 1.0)
        init_linear(model.head, scheme, "tanh", slope, 1.0)
        model.init_cell(scheme, gain)
