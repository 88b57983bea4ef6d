"""vgtui.watch inside a torch.distributed job (torchrun): which wrapper, who serves the viewers, and how every rank
applies the same command at the same step.

Every rank runs the step hooks; rank 0 alone opens the socket, writes the run log and publishes. The wrapper
decides what is measured where:
- plain / DDP: at step time p.grad is already averaged and identical on every rank, so rank 0's own norms are exact
  (summing squares over ranks would be sqrt(N)-fold too high); no communication on the measuring path.
- FSDP1 (use_orig_params=True) / FSDP2 (fully_shard): each rank holds a slice; see vgtui.watch.shard.
Commands: a viewer's command waits in rank 0's queue until the next sync step; there rank 0 starts a broadcast of it
(a small float64 vector, async) and after the following step every rank waits for it and applies it, between the
same two optimizer steps everywhere. Sync steps come every K steps, K
chosen by rank 0 for about one sync per SYNC_S seconds and sent in the same broadcast, so every rank knows the next
one (a collective under a rank-dependent condition would hang). While paused, every rank waits in a broadcast that
rank 0 repeats every HEARTBEAT_S (well inside any process-group timeout). A collective that fails (a rank died, or
the process-group timeout passed) ends the watch: the viewers are told, and the training meets the same error.
"""

from __future__ import annotations

import contextlib
import math
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from vgtui.contract import ACTIVATIONS, Pause, Resume, SelectLayer, Step, Toggle
from vgtui.engine.toggles import normalize

SYNC_S = 0.25  # about this long between two command syncs
HEARTBEAT_S = 1.0  # while paused, every rank meets rank 0 this often
MAX_K = 1000
MAX_COMMANDS = 8  # per sync; more wait for the next one
MAX_STEP = 1 << 62
HEAD = 4  # next K, number of commands, rank 0's watch ended, spare
CODES = {"pause": 1, "resume": 2, "step": 3, "layer": 4, "clip": 5, "lr": 6, "activation": 7}


class Unsupported(ValueError):
    """A distributed setup vgtui.watch cannot measure; str() says why and what to do."""


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world: int
    wrapper: str  # "plain" | "DDP" | "FSDP1" | "FSDP2"

    @property
    def sharded(self) -> bool:
        return self.wrapper in ("FSDP1", "FSDP2")

    def describe(self) -> str:
        return f"{self.wrapper} × {self.world}"


def detect(model: nn.Module) -> DistInfo | None:
    """The process group and wrapper, or None where no process group is initialised. Unsupported: FSDP1 without
    use_orig_params=True (only flat parameters: no layers) and DeepSpeed (p.grad is None under ZeRO)."""
    if type(model).__name__ == "DeepSpeedEngine":
        raise Unsupported(
            "DeepSpeed is not supported: under ZeRO p.grad is None at step time (its gradients live in DeepSpeed's "
            "own partitions), so there is nothing to measure without gathering every gradient"
        )
    if not (dist.is_available() and dist.is_initialized()):
        return None
    rank, world = dist.get_rank(), dist.get_world_size()
    fsdp1 = _fsdp1_modules(model)
    if fsdp1:
        if not all(getattr(m, "_use_orig_params", False) for m in fsdp1):
            raise Unsupported(
                "FSDP without use_orig_params=True shows only flat parameters: wrap with "
                "FullyShardedDataParallel(..., use_orig_params=True) (or use FSDP2's fully_shard)"
            )
        return DistInfo(rank, world, "FSDP1")
    if _is_fsdp2(model):
        return DistInfo(rank, world, "FSDP2")
    if isinstance(model, nn.parallel.DistributedDataParallel):
        return DistInfo(rank, world, "DDP")
    return DistInfo(rank, world, "plain")


def several_ranks() -> bool:
    """An initialised process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def first_rank() -> bool:
    """Rank 0, or no process group at all (who prints the one line)."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _fsdp1_modules(model: nn.Module) -> list[nn.Module]:
    try:
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    except ImportError:  # pragma: no cover - torch without FSDP
        return []
    return [m for m in model.modules() if isinstance(m, FSDP)]


def _is_fsdp2(model: nn.Module) -> bool:
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # pragma: no cover
        return False
    return any(isinstance(m, FSDPModule) for m in model.modules())


def unwrap(model: nn.Module) -> nn.Module:
    """The user's own module inside DDP (its layer names without 'module.')."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


class ShapeBook:
    """Full shapes and numbers of elements of FSDP1's original parameters (on a rank they are flat slices)."""

    def __init__(self, model: nn.Module) -> None:
        self.shapes: dict[int, torch.Size] = {}
        for m in _fsdp1_modules(model):
            handle = getattr(m, "_handle", None)
            flat = getattr(handle, "flat_param", None) if handle is not None else None
            if flat is None:
                continue
            for info, shape in zip(flat._param_infos, flat._shapes, strict=False):
                p = getattr(info.module, info.param_name, None)
                if isinstance(p, torch.Tensor):
                    self.shapes[id(p)] = torch.Size(shape)

    @property
    def measures(self) -> bool:
        """Whether this rank takes the statistics: every rank of a sharded model (each holds a part), rank 0 alone
        under DDP (the others would compute the same numbers only to drop them)."""
        return self.info.sharded or self.rank0

    def ndim(self, p: torch.Tensor) -> int:
        shape = self.shapes.get(id(p))
        return len(shape) if shape is not None else p.dim()

    def numel(self, p: torch.Tensor) -> int:
        shape = self.shapes.get(id(p))
        return math.prod(shape) if shape is not None else p.numel()

    def sharded(self, p: torch.Tensor) -> bool:
        return id(p) in self.shapes or hasattr(p, "to_local")


class SilentHub:
    """What the hooks publish to on ranks other than 0: nothing is kept, no socket is opened."""

    alive = True
    error = None
    tcp_port = 0

    def __init__(self) -> None:
        self.commands: queue.SimpleQueue = queue.SimpleQueue()
        self.wake = threading.Event()
        self.on_idle = None

    def publish(self, _item: Any) -> None:
        pass

    def close(self, timeout: float = 0.0) -> None:
        pass

    def viewer_stats(self) -> list[dict[str, Any]]:
        return []


class DistSync:
    """The hooks' distributed half: the meter to use, the command sync, the pause gate, a failed collective."""

    def __init__(self, info: DistInfo, model: nn.Module, device: torch.device) -> None:
        self.info = info
        self.book = ShapeBook(model)
        self.device = device
        self.next_sync = 1  # the first sync is after step 1; later ones every K steps, K from rank 0
        self.k = 1
        self.failed: str | None = None
        self._mark: tuple[float, int] | None = None
        self.syncs = 0
        self._pending: tuple[torch.Tensor, Any, int] | None = None  # a broadcast started, not yet waited for
        self.collectives = 0  # how many vgtui ran, and the seconds they took (waiting for the other ranks included)
        self.collective_s = 0.0

    @property
    def rank0(self) -> bool:
        return self.info.rank == 0

    @property
    def measures(self) -> bool:
        """Whether this rank takes the statistics: every rank of a sharded model (each holds a part), rank 0 alone
        under DDP (the others would compute the same numbers only to drop them)."""
        return self.info.sharded or self.rank0

    def ndim(self, p: torch.Tensor) -> int:
        return self.book.ndim(p)

    def meter(self, hooks: Any, params: list[torch.Tensor], layers: list, copy_limit: int) -> Any:
        if not self.info.sharded:
            from vgtui.watch.light import LightPlan
            from vgtui.watch.stats import Meter

            meter = Meter(params, layers, copy_limit)
            if not self.measures:  # DDP: rank 0's (averaged) gradients are every rank's; the others only clip
                meter.plan = LightPlan([])
            return meter
        from vgtui.watch.shard import ShardMeter

        return ShardMeter(
            params,
            layers,
            copy_limit,
            global_numel=self.book.numel,
            sharded=self.book.sharded,
            hooks=hooks,
            collective=lambda fn: self.collective(hooks, fn),
            world=self.info.world,
            rank=self.info.rank,
        )

    # ------------------------------------------------------------------ collectives

    def agree(self, ok: bool) -> bool:
        """At vgtui.watch(): whether every rank is ready to watch (rank 0's hub may have failed to start); one
        all_reduce(MIN), so that all ranks watch or none does (a rank left alone would wait in the next sync)."""
        flag = torch.tensor([1.0 if ok else 0.0], device=self.device)
        try:
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        except Exception:  # noqa: BLE001 - no agreement: do not watch
            return False
        return bool(flag.item())

    def collective(self, hooks: Any, fn: Callable[[], object]) -> None:
        """Run one collective; where it fails (a rank died, the timeout passed) the watch ends and says why, and the
        error goes on to the caller (the hooks catch it: the training then meets it in its own next collective)."""
        t0 = time.perf_counter()
        try:
            fn()
        except Exception as exc:
            self.lost(hooks, exc)
            raise
        self.collectives += 1
        self.collective_s += time.perf_counter() - t0

    def lost(self, hooks: Any, exc: BaseException) -> None:
        if self.failed is not None:
            return
        text = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        self.failed = text[:300]
        hooks._notices.append(
            (
                "error",
                f"the watch ended: a collective with the other ranks of this {self.info.describe()} job failed "
                f"(a rank died, or the process-group timeout passed): {self.failed}",
            )
        )
        hooks.status = "error"
        hooks.off = True
        if self.rank0:
            print(f"vgtui.watch: the watch ended: a collective with the other ranks failed ({self.failed})",
                  file=sys.stderr)  # fmt: skip
            with contextlib.suppress(Exception):  # the hub may be gone too
                hooks._publish("error")

    # ------------------------------------------------------------------ commands

    def sync(self, hooks: Any) -> None:
        """After an optimizer step (in place of draining the queue). A sync step starts the broadcast of rank 0's
        commands without waiting; every rank waits for it after the next step and applies them then, so a late
        rank's lateness overlaps a step of training."""
        self.settle(hooks)
        if hooks.step >= self.next_sync:
            vec, works = self._vector(hooks), []
            self.collective(hooks, lambda: works.append(dist.broadcast(vec, 0, async_op=True)))
            self._pending = (vec, works[0], hooks.step)
            self.next_sync = MAX_STEP  # known once this broadcast is taken

    def settle(self, hooks: Any) -> None:
        """Wait for the broadcast started at the last sync step and apply its commands."""
        pending, self._pending = self._pending, None
        if pending is not None:
            vec, work, started = pending
            self.collective(hooks, work.wait)
            self._take(hooks, vec.tolist(), started)

    def exchange(self, hooks: Any) -> None:
        """One broadcast from rank 0, waited for at once (the pause gate): the commands apply now on every rank."""
        self.settle(hooks)
        vec = self._vector(hooks)
        self.collective(hooks, lambda: dist.broadcast(vec, 0))
        self._take(hooks, vec.tolist(), hooks.step)

    def _vector(self, hooks: Any) -> torch.Tensor:
        vec = torch.zeros(HEAD + 2 * MAX_COMMANDS, dtype=torch.float64, device=self.device)
        if self.rank0:
            vec.copy_(torch.tensor(self._encode(hooks), dtype=torch.float64))
        return vec

    def _take(self, hooks: Any, values: list[float], started: int) -> None:
        """A broadcast's content, the same on every rank: the next sync step, then the commands in order."""
        self.syncs += 1
        self.k = max(1, min(MAX_K, int(values[0])))
        self.next_sync = started + self.k
        if values[2] and not self.rank0:  # rank 0's watch was closed while paused: stop meeting it
            hooks.off = True
            return
        for j in range(int(values[1])):
            command = _decode(values[HEAD + 2 * j], values[HEAD + 2 * j + 1])
            if command is not None:
                hooks._apply(command)

    def _encode(self, hooks: Any) -> list[float]:
        now = time.monotonic()
        k = self.k
        if self._mark is not None and hooks.step > self._mark[1]:
            per_step = (now - self._mark[0]) / (hooks.step - self._mark[1])
            k = max(1, min(MAX_K, int(SYNC_S / per_step))) if per_step > 0 else MAX_K
        self._mark = (now, hooks.step)
        out = [float(k), 0.0, 1.0 if hooks.off else 0.0, 0.0]
        commands = hooks.hub.commands if hooks.hub is not None else None
        n = 0
        while commands is not None and n < MAX_COMMANDS:
            try:
                command = commands.get_nowait()
            except queue.Empty:
                break
            encoded = _encode(command)
            if encoded is None:
                hooks._notices.append(("warn", f"not applied: {command!r}"))
                continue
            out += encoded
            n += 1
        out[1] = float(n)
        return out + [0.0] * (2 * (MAX_COMMANDS - n))

    def gate(self, hooks: Any) -> None:
        """While paused (and no steps granted), every rank waits here; rank 0 meets the others every HEARTBEAT_S (at
        once when a command arrives) with the commands so far."""
        told = False
        while hooks.status == "paused" and hooks._steps_left == 0 and not hooks.off:
            if self.rank0:
                if not told or hooks._events or hooks._notices:
                    hooks._safe_publish()
                    told = True
                hooks.hub.wake.wait(HEARTBEAT_S)
                hooks.hub.wake.clear()
                self._mark = None  # a pause is no step time
            try:
                self.exchange(hooks)
            except Exception as exc:  # noqa: BLE001 - told to the viewers in lost()
                hooks._core_failed(exc)
                return


def _encode(command: Any) -> list[float] | None:
    if isinstance(command, Pause):
        return [CODES["pause"], 0.0]
    if isinstance(command, Resume):
        return [CODES["resume"], 0.0]
    if isinstance(command, Step):
        return [CODES["step"], float(command.count)]
    if isinstance(command, SelectLayer):
        return [CODES["layer"], float(command.layer)]
    if isinstance(command, Toggle) and command.name == "clip":
        value = normalize(command)
        return [CODES["clip"], math.nan if value is None else float(value)]  # type: ignore[arg-type]
    if isinstance(command, Toggle) and command.name == "lr":
        return [CODES["lr"], float(normalize(command))]  # type: ignore[arg-type]
    if isinstance(command, Toggle) and command.name == "activation" and normalize(command) in ACTIVATIONS:
        return [CODES["activation"], float(ACTIVATIONS.index(str(normalize(command))))]
    return None


def _decode(code: float, value: float) -> Any:
    c = int(code)
    if c == CODES["pause"]:
        return Pause()
    if c == CODES["resume"]:
        return Resume()
    if c == CODES["step"]:
        return Step(int(value))
    if c == CODES["layer"]:
        return SelectLayer(int(value))
    if c == CODES["clip"]:
        return Toggle("clip", "off" if math.isnan(value) else repr(value))
    if c == CODES["lr"]:
        return Toggle("lr", repr(value))
    if c == CODES["activation"] and 0 <= int(value) < len(ACTIVATIONS):
        return Toggle("activation", ACTIVATIONS[int(value)])
    return None
