"""What the frames between a watched process and its viewers carry: snapshots, history rows, backfill. No torch.

A publish is one 'pub' frame: the Snapshot (numbers in the header, per-layer values as float32 arrays) and the
history rows of the steps since the previous publish, so a viewer that loses frames loses whole publishes, never
half of one. A viewer that joins (or fell behind and resyncs) first gets a 'resync' frame (events so far), then
'backfill' frames of the history so far, then live 'pub' frames.
"""

from __future__ import annotations

import math
from dataclasses import asdict, fields
from typing import Any

import numpy as np

from vgtui.contract import HIST_EDGES, Event, ModelState, Notice, Snapshot, Verdict
from vgtui.history import LAYERWISE, SCALARS, History, HistoryView

SNAP_ARRAYS = (*LAYERWISE, "hist_counts")
EVENTS_PER_PUB = 16  # the newest events ride on every publish (a viewer that lost frames still gets them)
BACKFILL_BYTES = 256 * 1024  # one backfill frame's arrays, at most


def pub_message(snap: Snapshot, rows: dict[str, Any] | None, n_events: int) -> tuple[dict, dict[str, np.ndarray]]:
    """Header and arrays of a 'pub' frame. `rows`: steps, light (n, 4 + layers), lr and segments [(end row, heavy
    step, statistics or None)] (see add_rows); `n_events`: how many events the run has had (snap.events holds the
    newest)."""
    events = snap.events[-EVENTS_PER_PUB:]
    first = n_events - len(events)
    header: dict[str, Any] = {
        "t": "pub",
        "step": snap.step,
        "status": snap.status,
        "loss": snap.loss,
        "acc": snap.acc,
        "lr": snap.lr,
        "grad_total": snap.grad_total,
        "clipped": bool(snap.clipped),
        "layers": list(snap.layer_names),
        "hist_layer": snap.hist_layer,
        "stats_step": snap.stats_step,
        "grad_step": snap.grad_step,
        "steps_per_sec": snap.steps_per_sec,
        "device": snap.device,
        "preset": snap.preset,
        "title": snap.title,
        "error": snap.error,
        "model": asdict(snap.model),
        "verdicts": [[v.code, v.severity, v.text, list(v.remedies)] for v in snap.verdicts],
        "events": [[first + i, e.step, e.name, e.value] for i, e in enumerate(events)],
        "notices": [[n.seq, n.level, n.text] for n in snap.notices],
        "extra": snap.extra,
    }
    arrays = {name: getattr(snap, name) for name in SNAP_ARRAYS}
    if rows is not None:
        light = np.asarray(rows["light"])
        heavies = [h for _, _, h in rows["segments"] if h is not None]
        names = sorted(set(heavies[0]) & set(LAYERWISE)) if heavies else []
        header["rows"] = {
            "n": int(light.shape[0]),
            "w": int(light.shape[1]),
            "lr": float(rows["lr"]),
            "heavy": names,
            "segments": [[int(end), int(step), h is not None] for end, step, h in rows["segments"]],
        }
        arrays["r_steps"] = np.asarray(rows["steps"], dtype=np.int64)
        arrays["r_light"] = light.reshape(-1)
        for name in names:
            arrays[f"r_{name}"] = np.concatenate([h[name] for h in heavies])
    return header, arrays


def snapshot_from(header: dict[str, Any], arrays: dict[str, np.ndarray], events: tuple[Event, ...]) -> Snapshot:
    """The Snapshot a 'pub' frame carries; `events` are all the events the viewer knows of (see merge_events)."""
    n = len(header["layers"])

    def arr(name: str, size: int = n) -> np.ndarray:
        values = arrays.get(name)
        if values is None or len(values) != size:
            return np.full(size, np.nan)
        return values.astype(np.float64)

    known = {f.name for f in fields(ModelState)}
    model = {k: v for k, v in dict(header["model"]).items() if k in known}
    model["capabilities"] = tuple(model.get("capabilities", ()))
    return Snapshot(
        step=int(header["step"]),
        status=str(header["status"]),
        loss=_f(header.get("loss")),
        acc=_f(header.get("acc")),
        lr=_f(header.get("lr")),
        grad_total=_f(header.get("grad_total")),
        clipped=bool(header.get("clipped")),
        layer_names=tuple(str(x) for x in header["layers"]),
        **{name: arr(name) for name in LAYERWISE},
        hist_layer=int(header.get("hist_layer", 0)),
        hist_edges=HIST_EDGES,
        hist_counts=arr("hist_counts", len(HIST_EDGES) - 1),
        time_grad_norm=None,
        model=ModelState(**model),
        verdicts=tuple(Verdict(c, s, t, tuple(r)) for c, s, t, r in header.get("verdicts", ())),
        events=events,
        notices=tuple(Notice(int(q), str(lv), str(t)) for q, lv, t in header.get("notices", ())),
        steps_per_sec=_f(header.get("steps_per_sec"), 0.0),
        device=str(header.get("device", "")),
        preset=str(header.get("preset", "")),
        title=str(header.get("title", "")),
        error=header.get("error"),
        stats_step=int(header.get("stats_step", 0)),
        grad_step=int(header.get("grad_step", 0)),
        extra=dict(header.get("extra") or {}),
    )


def rows_from(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any] | None:
    """The history rows of a 'pub' frame (see add_rows), or None where it carries none."""
    meta = header.get("rows")
    if not meta:
        return None
    light = arrays["r_light"].astype(np.float64).reshape(meta["n"], meta["w"])
    n_layers = meta["w"] - 4
    segments, k = [], 0
    for end, step, has in meta["segments"]:
        heavy = None
        if has:
            heavy = {
                name: arrays[f"r_{name}"][k * n_layers : (k + 1) * n_layers].astype(np.float64)
                for name in meta["heavy"]
                if f"r_{name}" in arrays
            }
            k += 1
        segments.append((int(end), int(step), heavy))
    return {"steps": arrays["r_steps"], "light": light, "lr": meta["lr"], "segments": segments}


def add_rows(history: History, rows: dict[str, Any]) -> None:
    """Add a publish's rows to a History: one History.add_rows per segment, each segment's rows ending at its
    heavy step with that step's statistics (the last segment may have none), as the engine's publishes do."""
    start = 0
    for end, step, heavy in rows["segments"]:
        if end > start:
            history.add_rows(rows["steps"][start:end], rows["light"][start:end], heavy, step, rows["lr"])
        start = end


def merge_events(known: list[Event], header: dict[str, Any], base: int = 0) -> bool:
    """Add the events of a 'pub' or 'resync' header that `known` lacks (each carries its index in the run; `known`
    starts at index `base`); True if any was."""
    added = False
    for index, step, name, value in header.get("events", ()):
        if index == base + len(known):
            known.append(Event(int(step), str(name), str(value)))
            added = True
    return added


def backfill_messages(view: HistoryView) -> list[tuple[dict, dict[str, np.ndarray]]]:
    """The history so far as 'backfill' frames of at most BACKFILL_BYTES of arrays each."""
    nl = view.n_layers
    per_row = 8 + 4 * (len(SCALARS) + len(LAYERWISE) * nl)
    chunk = max(1, BACKFILL_BYTES // per_row)
    scalars = np.stack([view.scalars[name] for name in SCALARS], axis=1) if len(view) else np.zeros((0, len(SCALARS)))
    layers = np.stack([view.layers[name] for name in LAYERWISE], axis=1) if len(view) else np.zeros((0, 0, 0))
    out = []
    for start in range(0, len(view), chunk):
        end = min(len(view), start + chunk)
        block = layers[start:end]
        has = np.isfinite(block[:, 1:, :]).any(axis=(1, 2)) if nl else np.zeros(end - start, bool)
        out.append(
            (
                {"t": "backfill", "n": end - start, "nl": nl},
                {
                    "steps": view.steps[start:end],
                    "scalars": scalars[start:end].reshape(-1),
                    "layers": block.reshape(-1),
                    "has": has.astype(np.float32),
                },
            )
        )
    return out


def backfill_rows(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> list[tuple[int, dict, dict]]:
    """(step, scalars, layers) per row of a 'backfill' frame, ready for History.append."""
    n, nl = int(header["n"]), int(header["nl"])
    scalars = arrays["scalars"].astype(np.float64).reshape(n, len(SCALARS))
    layers = arrays["layers"].astype(np.float64).reshape(n, len(LAYERWISE), nl)
    out = []
    for i in range(n):
        names = LAYERWISE if arrays["has"][i] else LAYERWISE[:1]
        out.append(
            (
                int(arrays["steps"][i]),
                dict(zip(SCALARS, scalars[i].tolist(), strict=True)),
                {name: layers[i, j] for j, name in enumerate(names)},
            )
        )
    return out


def _f(value: Any, default: float = math.nan) -> float:
    return default if value is None else float(value)
