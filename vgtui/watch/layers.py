"""Which of a user's modules are shown as layers, in the order the forward pass runs them, and named by path.

A layer is a weight matrix (a parameter of 2 or more dimensions that the optimizer updates) of a module: Linear,
Conv, Embedding, an RNN's weight_ih/weight_hh. A module with one such matrix is named by its module path
("encoder.2"); with several, by path and parameter ("lstm.weight_hh_l0"). The order is the first forward pass's
execution order (a forward pre-hook on each such module, removed after the first step), not the order of
named_parameters: a model may define its modules in any order. Modules that did not run go last.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

MAX_SHOWN = 64  # the history keeps at most this many layers (vgtui.history.MAX_LAYERS)

ACTIVATIONS: dict[type[nn.Module], str] = {
    nn.Sigmoid: "sigmoid",
    nn.Tanh: "tanh",
    nn.ReLU: "relu",
    nn.LeakyReLU: "leaky_relu",
    nn.GELU: "gelu",
    nn.SiLU: "silu",
}


@dataclass(frozen=True)
class Layer:
    name: str
    module: nn.Module
    param: nn.Parameter


def optimizer_params(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """Every parameter the optimizer updates, once, in its order."""
    seen: set[int] = set()
    out = []
    for group in optimizer.param_groups:
        for p in group["params"]:
            if id(p) not in seen and p.requires_grad:
                seen.add(id(p))
                out.append(p)
    return out


WRAPPER_PARTS = ("_fsdp_wrapped_module", "_checkpoint_wrapped_module", "_orig_mod")  # FSDP1, checkpoint, compile


def display_path(path: str) -> str:
    """A module path as the user indexes it: '0' -> '[0]', '0.fc' -> '[0].fc' (children of a root Sequential);
    the parts wrappers insert (FSDP1's '_fsdp_wrapped_module', ...) left out."""
    path = ".".join(part for part in path.split(".") if part not in WRAPPER_PARTS)
    head, dot, rest = path.partition(".")
    return f"[{head}]{dot}{rest}" if head.isdigit() else path


def _candidates(
    model: nn.Module, updated: set[int], ndim: Callable[[torch.Tensor], int]
) -> list[tuple[str, nn.Module, list[tuple[str, nn.Parameter]]]]:
    out = []
    for path, module in model.named_modules():
        mats = [(n, p) for n, p in module.named_parameters(recurse=False) if ndim(p) >= 2 and id(p) in updated]
        if mats:
            out.append((display_path(path) or type(model).__name__, module, mats))
    return out


class ForwardOrder:
    """Records the order in which weight-bearing modules first run (forward pre-hooks until `finish`)."""

    def __init__(
        self, model: nn.Module, params: Iterable[torch.Tensor], ndim: Callable[[torch.Tensor], int] | None = None
    ) -> None:
        """`ndim`: a parameter's number of dimensions where its tensor is a flat shard (FSDP1)."""
        updated = {id(p) for p in params}
        self.candidates = _candidates(model, updated, ndim or torch.Tensor.dim)
        self._order: list[int] = []
        self._seen: set[int] = set()
        self._handles: list[RemovableHandle] = []
        for _, module, _ in self.candidates:
            self._handles.append(module.register_forward_pre_hook(self._saw))

    def _saw(self, module: nn.Module, _args: object) -> None:
        if id(module) not in self._seen:
            self._seen.add(id(module))
            self._order.append(id(module))

    def finish(self) -> list[Layer]:
        """Stop recording; the layers in first-forward order (modules that never ran last, in definition order)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()
        rank = {mid: i for i, mid in enumerate(self._order)}
        ordered = sorted(self.candidates, key=lambda c: rank.get(id(c[1]), len(rank)))
        layers = []
        for path, module, mats in ordered:
            for pname, p in mats:
                layers.append(Layer(path if len(mats) == 1 else f"{path}.{pname}", module, p))
        return layers


def select(
    layers: list[Layer], keep: Callable[[str], bool] | None = None, limit: int = MAX_SHOWN
) -> tuple[list[Layer], str | None]:
    """The layers to show: those `keep` accepts, then at most `limit`, evenly spread from first to last (a note
    says so)."""
    chosen = [la for la in layers if keep is None or keep(la.name)]
    if len(chosen) <= limit:
        return chosen, None
    idx = sorted({round(i * (len(chosen) - 1) / (limit - 1)) for i in range(limit)})
    note = f"showing {len(idx)} of {len(chosen)} layers, evenly spread; pass layers=[...] to vgtui.watch to choose"
    return [chosen[i] for i in idx], note


def find_activations(model: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """(path, module, kind) of every activation module vgtui measures."""
    out = []
    for path, module in model.named_modules():
        kind = ACTIVATIONS.get(type(module))
        if kind is not None:
            out.append((path, module, kind))
    return out


def dominant_activation(acts: list[tuple[str, nn.Module, str]]) -> str:
    """The activation most modules use ("none" where the model has no activation modules, e.g. it calls F.*)."""
    if not acts:
        return "none"
    counts: dict[str, int] = {}
    for _, _, kind in acts:
        counts[kind] = counts.get(kind, 0) + 1
    return max(counts, key=lambda k: counts[k])


def module_path(model: torch.nn.Module, module: torch.nn.Module) -> str:
    """`module`'s path in `model` ("encoder.2"), the model's class name for the model itself."""
    for path, m in model.named_modules():
        if m is module:
            return path or type(model).__name__
    return type(module).__name__
