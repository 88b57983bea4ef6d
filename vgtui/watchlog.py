"""Run logs of watched runs: the same JSON Lines records as `vgtui run --out` (so `vgtui replay` and `vgtui plot`
read them), written from Snapshots — by the training process (`vgtui.watch(..., record=F)`) or by a viewer
(`vgtui attach TARGET --out F`). No torch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from vgtui.config import ModelConfig, RunConfig, TrainConfig
from vgtui.contract import Snapshot
from vgtui.runlog import RunLogWriter, diagnosis_record, event_record, meta_record, step_record


def user_config(name: str, snap: Snapshot | None = None, heavy_every: int = 0) -> RunConfig:
    """A RunConfig that describes a watched user model (for the dashboard's title and the run log's meta line)."""
    m = snap.model if snap is not None else None
    lr = m.lr if m is not None and math.isfinite(m.lr) else 0.0
    return RunConfig(
        name=name,
        title=f"watching {name}",
        description="your own model, watched with vgtui.watch: live gradient telemetry between optimizer steps",
        model=ModelConfig(kind="user", depth=m.depth if m else 0, activation=m.activation if m else "none"),
        train=TrainConfig(
            optimizer=m.optimizer if m else "?",
            lr=lr,
            clip=m.clip if m else None,
            steps=0,
            log_every=max(heavy_every, 1),
        ),
        source=f"vgtui.watch:{name}",
    )


class SnapshotLog:
    """Writes a run log from a stream of Snapshots: the meta line at the first one with layers, then per publish
    the new events, a step record, the diagnosis when it changed and the new notices."""

    def __init__(self, path: str | Path, name: str, heavy_every: int = 0) -> None:
        self.writer = RunLogWriter(path)
        self.name = name
        self.heavy_every = heavy_every
        self._meta = False
        self._events = 0
        self._notice = 0
        self._verdicts: Any = None
        self.records = 0

    def write(self, snap: Snapshot, n_events: int | None = None) -> None:
        """Record one publish. `n_events`: how many events the run has had (default: len(snap.events))."""
        if not snap.layer_names and not self._meta:
            return
        if not self._meta:
            self.writer.write(
                meta_record(user_config(self.name, snap, self.heavy_every), snap.device, list(snap.layer_names))
            )
            self._meta = True
        total = len(snap.events) if n_events is None else n_events
        new = min(total - self._events, len(snap.events))
        for event in snap.events[len(snap.events) - new :] if new > 0 else ():
            self.writer.write(event_record(event))
        self._events = max(self._events, total)
        self.writer.write(step_record(snap))
        self.records += 1
        write_news(self, snap)

    def close(self) -> None:
        self.writer.close()


def write_news(log: Any, snap: Snapshot) -> None:
    """Into a run log: a changed diagnosis and the notices not written yet (`log` has writer, _verdicts, _notice)."""
    if snap.verdicts != log._verdicts:
        log.writer.write(diagnosis_record(snap.step, snap.verdicts))
        log._verdicts = snap.verdicts
    for notice in snap.notices:
        if notice.seq > log._notice:
            log._notice = notice.seq
            log.writer.write({"type": "notice", "step": snap.step, "level": notice.level, "text": notice.text})
