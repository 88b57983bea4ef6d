"""Watch: the user-facing object of vgtui.watch (see the package docstring): hooks in this process, the hub in a
child process (vgtui.watch.hubproxy) or, where that cannot start, a thread."""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import socket
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from vgtui.runlog import RunLogError
from vgtui.watch.core import StepHooks
from vgtui.watch.dist import DistSync, SilentHub, Unsupported, detect, first_rank, unwrap
from vgtui.watch.hub import Hub, HubInfo
from vgtui.watch.hubproc import HubSpec, build_hub
from vgtui.watch.hubproxy import HubProcess, HubStartError
from vgtui.watch.sigterm import TermNotice
from vgtui.watchdir import check_name, socket_path, token_path, watch_dir

__all__ = ["Watch", "watch"]


class Watch:
    """A watched training run: optimizer hooks in this process; the hub serving `vgtui attach` viewers in a child
    process (hub="process", the default) or a thread here (hub="thread", also where no child process can start)."""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        name: str | None = None,
        blocks: Iterable[torch.nn.Module] | None = None,
        layers: Iterable[str | torch.nn.Module] | Callable[[str], bool] | None = None,
        heavy_every: int | None = None,
        publish_every: float = 0.25,
        hist_layer: int = 1,
        record: str | os.PathLike | None = None,
        tcp: tuple[str, int] | None = None,
        token: str | None = None,
        copy_limit_mb: float = 256,
        allow_swap: bool | Iterable[torch.nn.Module | str] = False,
        quiet: bool = False,
        hub: str = "process",
    ) -> None:
        if hub not in ("process", "thread"):
            raise ValueError(f"vgtui.watch: hub={hub!r}: allowed: 'process' (the default) or 'thread'")
        try:
            info, unsupported = detect(model), None
        except Unsupported as exc:
            info, unsupported = None, str(exc)
        self.dist = DistSync(info, model, _device(optimizer)) if info is not None else None
        self.hooks = StepHooks(
            unwrap(model),
            optimizer,
            blocks=list(blocks or ()),
            keep=layers,
            heavy_every=heavy_every,
            publish_every=max(publish_every, 0.01),
            hist_layer=max(hist_layer - 1, 0),
            copy_limit=int(copy_limit_mb * 2**20),
            allow_swap=allow_swap,
            dist=self.dist,
        )
        self.closed = False
        self.pid = os.getpid()  # a forked child (a DataLoader worker) must not close the parent's watch
        self.token_file: Path | None = None
        self.hub: Hub | HubProcess | None = None
        self.term: TermNotice | None = None
        if unsupported is not None:
            if first_rank():
                print(f"vgtui.watch: not watching: {unsupported}; your training goes on", file=sys.stderr)
            self._off()
            return
        if self.dist is not None and not self.dist.rank0:  # rank 0 alone serves the viewers and writes the log
            self.name, self.socket = check_name(name or _default_name()), Path()
            self.hub = self.hooks.hub = SilentHub()  # type: ignore[assignment]
            if not self.dist.agree(True):  # rank 0 could not serve: no rank watches (none waits for it)
                self._off()
                return
            atexit.register(self.close)
            return
        directory = watch_dir(create=True)
        self.name, self.socket = _free_name(name or _default_name(), directory)
        device, heavy = str(self.hooks.params[0].device), self.hooks.heavy_every
        if tcp is not None:
            token = token or secrets.token_urlsafe(32)
            if tcp[0] not in ("127.0.0.1", "::1", "localhost"):
                print(
                    f"vgtui.watch: warning: listening on {tcp[0]}, not loopback: anyone who can reach it and has "
                    "the token can watch and steer this run",
                    file=sys.stderr,
                )
        spec = HubSpec(
            HubInfo(self.name, script=sys.argv[0] if sys.argv else "", device=device, heavy_every=heavy),
            self.socket,
            tcp,
            token,
            os.path.abspath(record) if record is not None else None,
            {"world": self.dist.info.world, "wrapper": self.dist.info.wrapper} if self.dist is not None else None,
            self.hooks.swap.allowed,
        )
        try:
            hub = _start_hub(spec, hub)
        except Exception as exc:  # noqa: BLE001 - degrade to a no-op with one warning
            why = str(exc) if isinstance(exc, (RuntimeError, RunLogError)) else f"{type(exc).__name__}: {exc}"
            print(f"vgtui.watch: not watching ({why}); your training goes on", file=sys.stderr)
            if self.dist is not None:
                self.dist.agree(False)
            self._off()
            return
        if self.dist is not None:
            self.dist.agree(True)
        self.hub = self.hooks.hub = hub
        hub.on_idle = self.hooks.flush_if_idle
        if tcp is not None and token:
            self.token_file = _write_token(token_path(self.name, directory), token)
        if not quiet:
            where = f" (rank 0 of {self.dist.info.describe()})" if self.dist is not None else ""
            print(f"watching {self.name}{where} — attach with: vgtui attach {self.name}", file=sys.stderr)
            if tcp is not None:
                print(
                    f"  over TCP: vgtui attach tcp://{tcp[0]}:{hub.tcp_port} --token-file {self.token_file}",
                    file=sys.stderr,
                )
        if self.dist is not None:
            self.term = TermNotice(self._terminated)
        atexit.register(self.close)

    def _off(self) -> None:
        self.hooks.off = True
        self.hooks.remove_hooks()

    # ------------------------------------------------------------------ the user's calls

    def log(self, loss: Any = None, acc: Any = None, **metrics: Any) -> None:
        """This step's loss, accuracy and any other metrics (tensors stay on the device). Call before step()."""
        self.hooks.log(loss, acc, **metrics)

    def close(self) -> None:
        """Stop watching: final publish, the viewers are told the run ended, sockets removed. Idempotent."""
        if self.closed or os.getpid() != self.pid:
            return
        self.closed = True
        hooks = self.hooks
        hooks.remove_hooks()
        if self.term is not None:  # a SIGTERM now waits until the viewers have been told
            self.term.holding = True
        if self.dist is not None:
            self._crashed()
        if self.hub is not None:
            if not hooks.off and self.hub.alive:
                with contextlib.suppress(Exception):
                    hooks.status = "done"
                    hooks.publish(status="done")
            hooks.off = True
            hooks.status = "done"
            self.hub.wake.set()
            self.hub.close()
        if hooks.swap.swapped:
            print(f"vgtui.watch: {hooks.swap.state()}", file=sys.stderr)
        if self.token_file is not None:
            with contextlib.suppress(OSError):
                self.token_file.unlink()
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)
        if self.term is not None:
            self.term.restore()

    def _terminated(self) -> None:
        """Rank 0 got SIGTERM (torchrun stops every rank when one fails): tell the viewers, then close."""
        if self.closed:
            return
        self._end_with("the watch ended: rank 0 was sent SIGTERM (torchrun stops every rank when one of them fails "
                       "or is stopped)")  # fmt: skip
        self.close()

    def _crashed(self) -> None:
        """At exit under torchrun: where the script ended with an exception (a rank's death reaches rank 0 as an
        error in a collective), the viewers are told which."""
        exc = getattr(sys, "last_value", None)
        if exc is not None and not self.hooks.off:
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            self._end_with(f"the watch ended: rank 0 stopped with {type(exc).__name__}: {first}")

    def _end_with(self, text: str) -> None:
        hooks = self.hooks
        if hooks.off or self.hub is None:
            return
        with contextlib.suppress(Exception):
            hooks._notices.append(("error", text))
            hooks.status = "error"
            hooks.publish(status="error")
        hooks.off = True

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ for scripts and tests

    @property
    def step(self) -> int:
        """Optimizer steps taken while watched."""
        return self.hooks.step

    @property
    def target(self) -> str:
        """What `vgtui attach` takes to reach this run."""
        return f"unix:{self.socket}"

    @property
    def tcp_port(self) -> int:
        return self.hub.tcp_port if self.hub is not None else 0

    def viewer_stats(self) -> list[dict[str, Any]]:
        return self.hub.viewer_stats() if self.hub is not None else []


def watch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, **options: Any) -> Watch:
    """Watch `model` trained by `optimizer`; see Watch for the options (name, blocks, layers, heavy_every, record,
    tcp, token, allow_swap, ...). allow_swap=True lets viewers swap hidden nn.Sigmoid/nn.Tanh modules to
    ReLU/LeakyReLU and back (see vgtui.watch.swap for which modules); a list of modules or paths names them.
    hub="thread" serves the viewers from a thread of this process instead of a child process."""
    return Watch(model, optimizer, **options)


def _start_hub(spec: HubSpec, kind: str) -> Hub | HubProcess:
    """The hub in its own process (the default) or, asked for or where no process can start, in a thread here."""
    if kind == "process":
        try:
            return HubProcess(spec).start()
        except HubStartError:
            pass
    return build_hub(spec).start()


def _device(optimizer: torch.optim.Optimizer) -> torch.device:
    """Where the collectives' small vectors live: the parameters' device (NCCL needs CUDA tensors)."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            return p.device
    return torch.device("cpu")


def _default_name() -> str:
    stem = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] not in ("", "-c", "-m") else "python"
    stem = re.sub(r"[^A-Za-z0-9._-]", "-", stem).strip("-._")[:40] or "python"
    return stem


def _free_name(base: str, directory: Path) -> tuple[str, Path]:
    """`base`, or base-2, base-3, ... where a live run already uses it (a socket left by a dead run is removed)."""
    check_name(base)
    for i in range(1, 1000):
        name = base if i == 1 else f"{base}-{i}"
        path = socket_path(name, directory)
        if not path.exists() and not path.is_symlink():
            return name, path
        if not _live(path):
            with contextlib.suppress(OSError):
                path.unlink()
            return name, path
    raise RuntimeError(f"too many watches named {base}-N")


def _live(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(0.3)
        try:
            s.connect(str(path))
        except OSError:
            return False
        return True


def _write_token(path: Path, token: str) -> Path:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return path
