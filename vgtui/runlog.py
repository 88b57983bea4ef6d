"""The JSON Lines run log: written line by line and flushed, so a killed run leaves valid lines. No torch."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import IO, Any

import numpy as np

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
        "gain": snap.gain,
        "gain_product": snap.gain_product,
        "hist_layer": snap.hist_layer + 1,
        "hist_counts": snap.hist_counts,
        "stats_step": snap.stats_step,
        "status": snap.status,
        "model": snap.model.describe(),
    }
    if snap.time_grad_norm is not None:
        rec["time_grad_norm"] = snap.time_grad_norm
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
