"""The JSON Lines run log: written line by line and flushed, so a killed run leaves valid lines. No torch."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

import numpy as np

from vgtui import __version__
from vgtui.config import RunConfig, to_dict
from vgtui.contract import Event, Snapshot, Verdict


def _clean(value: Any) -> Any:
    """JSON-safe: numpy -> lists, NaN/Inf -> null."""
    if isinstance(value, np.ndarray):
        return [_clean(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def step_record(snap: Snapshot) -> dict[str, Any]:
    """One 'step' line from a snapshot."""
    rec: dict[str, Any] = {
        "type": "step",
        "step": snap.step,
        "loss": snap.loss,
        "acc": snap.acc,
        "lr": snap.lr,
        "grad_total": snap.grad_total,
        "clipped": snap.clipped,
        "layers": list(snap.layer_names),
        "grad_norm": snap.grad_norm,
        "weight_norm": snap.weight_norm,
        "update_ratio": snap.update_ratio,
        "weight_mean_abs": snap.weight_mean_abs,
        "saturation": snap.saturation,
        "dead": snap.dead,
        "negative": snap.negative,
        "slope": snap.slope,
        "gain": snap.gain,
        "gain_product": snap.gain_product,
        "hist_layer": snap.hist_layer + 1,
        "hist_counts": snap.hist_counts,
        "stats_step": snap.stats_step,
        "status": snap.status,
        "model": snap.model.describe(),
        "model_state": asdict(snap.model),
        "steps_per_sec": snap.steps_per_sec,
    }
    if snap.time_grad_norm is not None:
        rec["time_grad_norm"] = snap.time_grad_norm
    if snap.grad_step and snap.grad_step != snap.step:  # a diverged step: grad_norm is the last finite one
        rec["grad_step"] = snap.grad_step
    if snap.time_cell_grad_norm is not None:
        rec["time_cell_grad_norm"] = snap.time_cell_grad_norm
    return _clean(rec)


def event_record(event: Event) -> dict[str, Any]:
    return {"type": "event", "step": event.step, "name": event.name, "value": event.value}


def diagnosis_record(step: int, verdicts: tuple[Verdict, ...]) -> dict[str, Any]:
    return {
        "type": "diagnosis",
        "step": step,
        "verdicts": [
            {"code": v.code, "severity": v.severity, "text": v.text, "remedies": list(v.remedies)} for v in verdicts
        ],
    }


def meta_record(config: RunConfig, device: str, layers: list[str]) -> dict[str, Any]:
    """The first line of a run log: what was run, where."""
    return {
        "type": "meta",
        "version": __version__,
        "preset": config.name,
        "title": config.title,
        "device": device,
        "layers": list(layers),
        "config": to_dict(config),
    }


class RunLogWriter:
    """Appends records as JSON lines, flushing each, so every line but the one being written is valid."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._fh: IO[str] = self.path.open("w", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(_clean(record), separators=(",", ":")) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


def read_runlog(path: Path | str) -> list[dict[str, Any]]:
    """Read a run log, skipping a torn last line (a killed run)."""
    records = []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise ValueError(f"{path}: line {i + 1} is not valid JSON") from None
    return records


class Recorder:
    """Session subscriber that writes every publish to the run log and remembers the first numbers.

    `record` is a vgtui.engine.session.PublishRecord (snapshot, published, events, verdicts_changed).
    """

    def __init__(self, writer: RunLogWriter | None) -> None:
        self.writer = writer
        self.first: Snapshot | None = None
        self.notice_seq = 0

    def __call__(self, record: Any) -> None:
        snap = record.snapshot
        if self.writer is not None:
            for event in record.events:
                self.writer.write(event_record(event))
        if record.published is not None:
            if self.first is None and math.isfinite(snap.loss):
                self.first = snap
            if self.writer is not None:
                self.writer.write(step_record(snap))
        for notice in snap.notices:
            if notice.seq > self.notice_seq:
                self.notice_seq = notice.seq
                if self.writer is not None:
                    self.writer.write({"type": "notice", "step": snap.step, "level": notice.level, "text": notice.text})
        if record.verdicts_changed and self.writer is not None:
            self.writer.write(diagnosis_record(snap.step, snap.verdicts))
