"""The viewers' commands on the training thread: applied between optimizer steps, each recorded as an Event; the
pause gate; the learning rate's scale-and-restore (a mixin of vgtui.watch.core.StepHooks)."""

from __future__ import annotations

import dataclasses
import math
import queue
from typing import Any

import torch

from vgtui.contract import Event, Pause, Resume, SelectLayer, Step, Toggle
from vgtui.engine.toggles import normalize
from vgtui.watch.layers import dominant_activation, find_activations


class Controls:
    """Relies on StepHooks for model, optimizer, hub, step, status, clip, lr_factor, hist_layer, info, acts, probes,
    swap, off, _events, _notices, _steps_left, _saved_lr, publish() and _core_failed()."""

    def _restore_lr(self) -> None:
        saved, self._saved_lr = self._saved_lr, None
        if saved is not None:
            for g, lr in zip(self.optimizer.param_groups, saved, strict=False):
                g["lr"] = lr

    def _drain(self) -> None:
        commands = self.hub.commands if self.hub is not None else None
        while commands is not None and not commands.empty():
            try:
                command = commands.get_nowait()
            except queue.Empty:
                return
            self._apply(command)

    def _apply(self, command: Any) -> None:
        """A command validated by the hub, applied now, between two optimizer steps; recorded as an Event."""
        s = self.step
        if isinstance(command, Pause):
            self.status, self._steps_left = "paused", 0
            self._events.append(Event(s, "pause", "on"))
        elif isinstance(command, Resume):
            self.status, self._steps_left = "running", 0
            self._events.append(Event(s, "pause", "off"))
        elif isinstance(command, Step):
            self.status = "paused"
            self._steps_left += command.count
            self._events.append(Event(s, "step", str(command.count)))
        elif isinstance(command, SelectLayer):
            self.hist_layer = command.layer - 1
            names = self.info.names if self.info else ()
            name = names[self.hist_layer] if self.hist_layer < len(names) else str(command.layer)
            self._events.append(Event(s, "hist_layer", name))
        elif isinstance(command, Toggle) and command.name == "clip":
            self.clip = normalize(command)  # type: ignore[assignment]
            self._events.append(Event(s, "clip", "off" if self.clip is None else f"{self.clip:g}"))
        elif isinstance(command, Toggle) and command.name == "lr":
            value = float(normalize(command))  # type: ignore[arg-type]
            base = self.optimizer.param_groups[0]["lr"]
            base = float(base) if not isinstance(base, torch.Tensor) else float(base.detach().cpu())
            self.lr_factor = value / base if base > 0 else 1.0
            self._events.append(Event(s, "lr", f"{value:g}"))
        elif isinstance(command, Toggle) and command.name == "activation":
            self._swap_activation(str(normalize(command)))
        else:
            self._notices.append(("warn", f"not applied: {command!r}"))

    def _swap_activation(self, value: str) -> None:
        """Swap the hidden activation modules (vgtui.watch.swap) with the probes off, then show the model as it is."""
        probes = self.probes
        armed = probes is not None and probes.armed
        if probes is not None:
            probes.disarm()  # vgtui's own hooks are not left on a module it takes out, nor mistaken for the user's
        try:
            applied, text = self.swap.apply(value)
            if applied:
                self.acts = find_activations(self.model)
                if probes is not None:
                    probes.acts = self.acts
        finally:
            if probes is not None and armed:
                probes.arm()
        if not applied:
            self._notices.append(("warn", f"not applied: {text}"))
            return
        if self.info is not None:
            kind = self.swap.kind or dominant_activation(self.acts)
            self.info = dataclasses.replace(self.info, activation=kind)
        self._events.append(Event(self.step, "activation", value))
        self._notices.append(("info", text))

    def _gate(self) -> None:
        """While paused (and no steps granted), block the training loop here, between two optimizer steps."""
        if self.off or self.hub is None:
            return
        told = False
        while self.status == "paused" and self._steps_left == 0 and not self.off:
            if not told or self._events or self._notices:
                self._safe_publish()
                told = True
            self.hub.wake.wait(0.5)
            self.hub.wake.clear()
            self._drain()

    def _safe_publish(self) -> None:
        try:
            self.publish()
        except Exception as exc:  # noqa: BLE001
            self._core_failed(exc)

    def effective_lr(self) -> float:
        lr = self.optimizer.param_groups[0]["lr"]
        lr = float(lr) if not isinstance(lr, torch.Tensor) else math.nan
        return lr * self.lr_factor
