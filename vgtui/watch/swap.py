"""Swapping a user's hidden activation modules from a viewer (vgtui.watch(..., allow_swap=True)); undoable.

Only nn.Sigmoid / nn.Tanh modules (exactly those types) become nn.ReLU / nn.LeakyReLU, and back to the very module
objects they were. vgtui cannot read a forward() to know what an activation's output feeds: a sigmoid that gates
(an LSTM's, a GLU's, an attention or squeeze-excitation weight) multiplies something, and swapping it changes the
model's meaning. So a module is swapped only where its data flow is known to be a plain chain:

- **hidden**: it sits in an nn.Sequential with a child holding a weight matrix after it; or it is the last of such
  trailing weightless children of a Sequential that is itself a child of a Sequential with a weight after it, and
  so on up (an nn.Sequential passes each child's output to the next child and to nothing else);
- or **you list it**: allow_swap=[model.act1, "encoder.act"] (modules or module paths) vouches for those modules
  instead (still only Sigmoid/Tanh);
- and in both cases it **ran** in the first training step's forward pass (else the model calls F.* there), and it
  is **not the output activation**: some weight-bearing module runs after its last call in that step.

Refused with one reason: without allow_swap, a compiled model (torch.compile: a swap would recompile it mid-run;
seen as a compiled module, in a forward hook while compiling, or as no forward hook running at all in the first
step: a compiled graph may run without them), several torch.distributed ranks (a swap on rank 0 alone would split
the model), no activation module ran (F.* calls), another target than relu /
leaky_relu (or the original kind, to undo), no module passing the rules above. A module carrying a hook someone
else registered is left alone (the hook would be lost). Nothing else of the model changes: the new modules are
vgtui's own (not in place), the original objects are kept untouched for the undo.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from vgtui.watch.dist import several_ranks
from vgtui.watch.layers import ACTIVATIONS, display_path
from vgtui.watch.remedies import NOT_ALLOWED

SWAPPABLE: dict[type[nn.Module], str] = {nn.Sigmoid: "sigmoid", nn.Tanh: "tanh"}
TARGETS = ("relu", "leaky_relu")
LEAK = 0.01
MAX_CALLS = 100_000  # forward calls recorded in the first step (a long recurrent loop stops recording there)

COMPILED = (
    "your model is compiled (torch.compile): swapping a module would recompile it mid-run; change the activation "
    "in your code"
)
RANKS = (
    "this run has several torch.distributed ranks: a swap would have to happen on every rank at the same step, "
    "which vgtui does not do yet; change the activation in your code"
)
UNSEEN = (
    "vgtui's forward hooks did not run in your model's first step (a model compiled with torch.compile runs "
    "without them): swapping a module would recompile it; change the activation in your code"
)
NO_MODULES = (
    "no activation module ran in your model's forward pass (it calls F.* functions?): vgtui can swap only "
    "nn.Sigmoid/nn.Tanh modules; change the activation in your code"
)
NONE_SAFE = (
    "no hidden nn.Sigmoid/nn.Tanh module vgtui can swap safely: only those inside an nn.Sequential with a weight "
    "layer after them, or the modules you list in allow_swap=[...], and never the output activation"
)


@dataclass
class Slot:
    """Where a module object sits: parent._modules[name]."""

    parent: nn.Module
    name: str


@dataclass
class Target:
    path: str  # as the viewers read it ("[1]", "encoder.2")
    original: nn.Module
    kind: str  # "sigmoid" | "tanh"
    slots: list[Slot]


def _weighty(module: nn.Module) -> bool:
    return any(p.dim() >= 2 for p in module.parameters())


def _direct_weights(module: nn.Module) -> bool:
    return any(p.dim() >= 2 for p in module.parameters(recurse=False))


class Swapper:
    """The activation swap of one watched model: what may be swapped, the swap and its undo."""

    def __init__(self, model: nn.Module, allow: bool | Iterable[nn.Module | str]) -> None:
        self.model = model
        self.allowed = bool(allow) if isinstance(allow, bool) else True
        self.listed: set[int] | None = None if isinstance(allow, bool) else self._listed(model, allow)
        self.compiled = _compiled(model)
        self.calls: list[int] = []  # ids of activation and weight-bearing modules, in call order (first step)
        self.swapped: dict[int, tuple[Target, nn.Module]] = {}  # id(original) -> (target, its replacement)
        self.kind: str | None = None  # what the swapped modules are now
        self.targets: list[Target] = []
        self.left: list[str] = []  # "path (why)" of the Sigmoid/Tanh modules left alone
        self._handles: list[RemovableHandle] = []
        self._finished = False
        if self.allowed and not self.compiled:
            self._handles.append(model.register_forward_pre_hook(self._root))
            for module in model.modules():
                if type(module) in SWAPPABLE or _direct_weights(module) or _is_activation(module):
                    self._handles.append(module.register_forward_pre_hook(self._ran))

    # ------------------------------------------------------------------ first step

    def _root(self, _module: nn.Module, _args: Any) -> None:
        if torch.compiler.is_compiling():
            self.compiled = True

    def _ran(self, module: nn.Module, _args: Any) -> None:
        if len(self.calls) < MAX_CALLS:
            self.calls.append(id(module))

    def finish(self) -> None:
        """After the first step's forward and backward: stop recording, decide what may be swapped (once)."""
        if self._finished:
            return
        self._finished = True
        for h in self._handles:
            h.remove()
        self._handles.clear()
        if self.allowed and not self.compiled:
            self.targets, self.left = self._plan()

    @property
    def capabilities(self) -> tuple[str, ...]:
        """'activation' and 'activation_from=KIND' (the kind an undo restores) where a swap can be done."""
        if not self.targets or self.compiled:
            return ()
        return ("activation", f"activation_from={self.original_kind}")

    @property
    def original_kind(self) -> str:
        kinds = [t.kind for t in self.targets]
        return max(set(kinds), key=kinds.count) if kinds else ""

    # ------------------------------------------------------------------ a viewer's command

    def apply(self, value: str) -> tuple[bool, str]:
        """(applied, text): swap the targets to `value` (relu, leaky_relu) or back (their original kind)."""
        if not self.allowed:
            return False, NOT_ALLOWED
        if self.compiled or _compiled(self.model):
            self.compiled = True
            return False, COMPILED
        if several_ranks():
            return False, RANKS
        if not self.calls:
            return False, UNSEEN
        if not self.targets:
            ran = any(_is_activation(m) and id(m) in set(self.calls) for m in self.model.modules())
            return False, NONE_SAFE if ran else NO_MODULES
        originals = {t.kind for t in self.targets}
        if value in originals and self.swapped:
            return self.undo()
        if value in originals:
            return False, f"the hidden activations are {value} already: no swap to undo"
        if value not in TARGETS:
            back = " or ".join(sorted(originals))
            return False, f"activation={value}: allowed: relu or leaky_relu (from {back}), or {back} to undo the swap"
        if self.kind == value:
            return False, f"the hidden activations are already {value}"
        done, busy = [], []
        for t in self.targets:
            current = self.swapped[id(t.original)][1] if id(t.original) in self.swapped else t.original
            if _foreign_hooks(current):
                busy.append(t.path)
                continue
            new = nn.ReLU() if value == "relu" else nn.LeakyReLU(LEAK)
            new.train(t.original.training)
            for slot in t.slots:
                setattr(slot.parent, slot.name, new)
            self.swapped[id(t.original)] = (t, new)
            done.append(t.path)
        if not done:
            return False, f"not swapped: {', '.join(busy)} carry hooks vgtui did not register"
        self.kind = value
        text = f"swapped {len(done)} hidden activation module(s) to {value}: {_listing(done)}"
        left = self.left + [f"{p} (carries a hook vgtui did not register)" for p in busy]
        if left:
            text += f"; left alone: {_listing(left)}"
        return True, text + f"; activation={self.original_kind} undoes it"

    def undo(self) -> tuple[bool, str]:
        """Put the original module objects back where they were."""
        if not self.swapped:
            return False, "no activation was swapped: nothing to undo"
        paths = []
        for target, _ in self.swapped.values():
            for slot in target.slots:
                setattr(slot.parent, slot.name, target.original)
            paths.append(target.path)
        self.swapped.clear()
        self.kind = None
        return True, f"restored your original activation modules: {_listing(paths)}"

    def state(self) -> str:
        """One line on what is swapped now (for the end of a run)."""
        paths = [t.path for t, _ in self.swapped.values()]
        return f"your model keeps the activation swap made from a viewer: {_listing(paths)} are {self.kind}"

    # ------------------------------------------------------------------ which modules

    def _plan(self) -> tuple[list[Target], list[str]]:
        slots: dict[int, list[Slot]] = {}
        parents: dict[int, list[tuple[nn.Module, int]]] = {}  # id(child) -> (parent Sequential, its position)
        paths: dict[int, str] = {}
        for path, module in self.model.named_modules(remove_duplicate=False):
            paths.setdefault(id(module), display_path(path) if path else type(self.model).__name__)
            for i, (name, child) in enumerate(module._modules.items()):
                if child is None:
                    continue
                slots.setdefault(id(child), []).append(Slot(module, name))
                parents.setdefault(id(child), []).append((module, i))
        last_call = {mid: i for i, mid in enumerate(self.calls)}
        weight_ids = {id(m) for m in self.model.modules() if _direct_weights(m)}
        last_weight = max((i for i, mid in enumerate(self.calls) if mid in weight_ids), default=-1)
        targets, left = [], []
        for module in self.model.modules():
            kind = SWAPPABLE.get(type(module))  # exact types: a subclass may do more
            if kind is None:
                continue
            path, mid = paths[id(module)], id(module)
            if mid not in last_call:
                why = "did not run in the first step"
            elif last_call[mid] > last_weight:
                why = "the output activation: no weight layer runs after it"
            elif self.listed is not None:
                why = "" if mid in self.listed else "not listed in allow_swap=[...]"
            else:
                why = "" if _hidden(module, parents) else "not followed by a weight layer in an nn.Sequential"
            if why:
                left.append(f"{path} ({why})")
            else:
                targets.append(Target(path, module, kind, slots.get(mid, [])))
        return [t for t in targets if t.slots], left

    @staticmethod
    def _listed(model: nn.Module, allow: Iterable[nn.Module | str]) -> set[int]:
        by_path = {}
        for path, module in model.named_modules():
            by_path[path] = by_path[display_path(path)] = module
        ids = set()
        for item in allow:
            module = by_path.get(item) if isinstance(item, str) else item
            if not isinstance(module, nn.Module) or not any(module is m for m in model.modules()):
                raise ValueError(
                    f"vgtui.watch: allow_swap lists {item!r}: allowed: modules of the model or their paths"
                )
            if type(module) not in SWAPPABLE:
                raise ValueError(
                    f"vgtui.watch: allow_swap lists {item!r}, a {type(module).__name__}: allowed: nn.Sigmoid or "
                    "nn.Tanh modules"
                )
            ids.add(id(module))
        return ids


def _hidden(module: nn.Module, parents: dict[int, list[tuple[nn.Module, int]]]) -> bool:
    """Whether every place the module sits passes its output down a plain nn.Sequential chain to a weight layer."""
    places = parents.get(id(module), [])
    return bool(places) and all(_hidden_at(parent, i, parents) for parent, i in places)


def _hidden_at(parent: nn.Module, i: int, parents: dict[int, list[tuple[nn.Module, int]]]) -> bool:
    if type(parent) is not nn.Sequential:  # a subclass may override forward
        return False
    after = [c for c in list(parent._modules.values())[i + 1 :] if c is not None]
    if any(_weighty(c) for c in after):
        return True
    return _hidden(parent, parents)  # the Sequential's output is this one's output: look one level up


def _is_activation(module: nn.Module) -> bool:
    return type(module) in ACTIVATIONS


def _foreign_hooks(module: nn.Module) -> bool:
    """Hooks on the module that are not vgtui's (vgtui's probes are disarmed while swapping)."""
    return any(
        bool(getattr(module, attr, None))
        for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    )


def _compiled(model: nn.Module) -> bool:
    """torch.compile(model) handed to vgtui, or model.compile() called on it."""
    return type(model).__name__ == "OptimizedModule" or getattr(model, "_compiled_call_impl", None) is not None


def _listing(paths: list[str], limit: int = 6) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")
