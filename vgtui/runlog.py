"""The JSON Lines run log: written line by line and flushed, so a killed run leaves valid lines. No torch."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import stat
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

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


class RunLogError(ValueError):
    """A run log that cannot be written or read. str() is one line naming the file and what went wrong;
    `reason` is the bare cause (e.g. 'No space left on device (ENOSPC)')."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


_OPEN_REASONS = {
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EACCES: "not writable (permission denied)",
    errno.EPERM: "not writable (operation not permitted)",
    errno.EROFS: "not writable (read-only file system)",
    errno.EISDIR: "is a folder; give a file name such as run.jsonl",
    errno.ENAMETOOLONG: "the name is too long; allowed: up to 255 bytes a name",
    errno.ENXIO: "is a pipe with no reader",
    errno.ELOOP: "is a symbolic link; use --force to write through it, or another name",
}


def show_path(path: Path | str, limit: int = 120) -> str:
    """A path for a message: in full up to `limit` characters, else its start and its end around '…'."""
    text = str(path)
    return text if len(text) <= limit else text[: limit // 3] + "…" + text[-(limit - limit // 3 - 1) :]


def _reason(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0)
    return f"{exc.strerror or exc} ({name})" if name else str(exc.strerror or exc)


def next_free_path(path: Path | str) -> Path:
    """`path` if nothing is there, else the first free `name-2.jsonl`, `name-3.jsonl`, ... beside it."""
    path = Path(path)
    n = 1
    candidate = path
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


class RunLogWriter:
    """Appends records as JSON lines, each in one write of the whole line, so the file always holds whole lines.

    Opening refuses, with a RunLogError, a missing folder, a folder, a path that is not writable, and an existing
    file or symbolic link unless `force`. A write that fails (disk full, /dev/full, the file size limit) cuts the
    file back to its last whole line where it can, closes the writer and raises a RunLogError.
    """

    def __init__(self, path: Path | str, force: bool = False) -> None:
        self.path = Path(path)
        self.lines = 0  # whole lines written
        self._size = 0  # bytes of whole lines
        self._lock = threading.Lock()
        self._created = False
        self._fd: int | None = self._open(force)

    @classmethod
    def numbered(cls, path: Path | str) -> RunLogWriter:
        """A new writer at `path`, or at `name-2.jsonl`, `name-3.jsonl`... if that is taken (never overwrites)."""
        while True:
            candidate = next_free_path(path)
            try:
                return cls(candidate)
            except RunLogError:
                if not (candidate.exists() or candidate.is_symlink()):  # not taken in the meantime: a real error
                    raise

    @property
    def closed(self) -> bool:
        return self._fd is None

    def _error(self, what: str) -> RunLogError:
        return RunLogError(f"{show_path(self.path)}: {what}", what)

    def _open(self, force: bool) -> int:
        path = self.path
        try:
            st = os.stat(path)  # follows links: what a write would reach
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise self._error(f"cannot write: {_OPEN_REASONS.get(exc.errno, _reason(exc))}") from None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise self._error(_OPEN_REASONS[errno.EISDIR])
        special = st is not None and not stat.S_ISREG(st.st_mode)  # /dev/null, /dev/stdout, a pipe: written as is
        if not special and not force and (st is not None or path.is_symlink()):
            raise self._error("exists; use --force to overwrite, or another name")
        if st is None and not path.parent.is_dir():
            raise self._error(f"cannot write: the folder {show_path(path.parent)} does not exist")
        flags = os.O_WRONLY | os.O_CLOEXEC
        if special:
            flags |= os.O_NONBLOCK if stat.S_ISFIFO(st.st_mode) else 0  # no reader: ENXIO, not a hang
        elif force:
            flags |= os.O_CREAT | os.O_TRUNC
        else:
            flags |= os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(path, flags, 0o644)
        except FileExistsError:
            raise self._error("exists; use --force to overwrite, or another name") from None
        except OSError as exc:
            raise self._error(f"cannot write: {_OPEN_REASONS.get(exc.errno, _reason(exc))}") from None
        if special and flags & os.O_NONBLOCK:
            os.set_blocking(fd, True)
        self._created = st is None
        return fd

    def write(self, record: dict[str, Any]) -> None:
        """Write one record as one line. On an OSError: back to the last whole line, closed, RunLogError."""
        data = (json.dumps(_clean(record), separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            if self._fd is None:
                raise self._error(f"the run log is closed (after {self.lines} lines)")
            view = memoryview(data)
            try:
                while view:
                    view = view[os.write(self._fd, view) :]
            except OSError as exc:
                self._fail(exc)
            self._size += len(data)
            self.lines += 1

    def _fail(self, exc: OSError) -> NoReturn:
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):  # a pipe or a device cannot be cut: nothing to undo there
            if stat.S_ISREG(os.fstat(fd).st_mode) and os.fstat(fd).st_size != self._size:
                os.ftruncate(fd, self._size)
        with contextlib.suppress(OSError):
            os.close(fd)
        reason = _reason(exc)
        raise RunLogError(f"{show_path(self.path)}: cannot write: {reason}", reason) from None

    def close(self) -> None:
        """Close the file (again: nothing)."""
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def discard(self) -> None:
        """Close, and remove the file if this writer created it and wrote nothing (a run that never started)."""
        self.close()
        if self._created and self.lines == 0:
            with contextlib.suppress(OSError):
                self.path.unlink()


class Recorder:
    """Session subscriber that writes every publish to the run log and remembers the first numbers.

    `record` is a vgtui.engine.session.PublishRecord (snapshot, published, events, verdicts_changed). When the log
    cannot be written any more, `error` says where it stopped and why, and the RunLogError goes up to the session,
    which stops: a run is not worth more than its record here.
    """

    def __init__(self, writer: RunLogWriter | None, run: str | None = None) -> None:
        self.writer = writer
        self.run = run  # a compare run ("A" or "B"): every line it writes carries "run"
        self.first: Snapshot | None = None
        self.notice_seq = 0
        self.last_step: int | None = None  # the last step whose record is in the log
        self.error: RunLogError | None = None

    def __call__(self, record: Any) -> None:
        try:
            self._write(record)
        except RunLogError as exc:
            path = show_path(self.writer.path) if self.writer is not None else "the run log"
            where = f"at step {self.last_step}" if self.last_step is not None else "before the first step"
            self.error = RunLogError(
                f"{path}: the run log stopped {where} because of: {exc.reason}; it holds valid JSON Lines up to there",
                exc.reason,
            )
            self.writer = None
            raise self.error from None

    def _write(self, record: Any) -> None:
        snap = record.snapshot
        writer = self.writer
        if writer is not None and self.run is not None:
            writer = _Tagged(writer, self.run)
        if writer is not None:
            for event in record.events:
                writer.write(event_record(event))
        if record.published is not None:
            if self.first is None and math.isfinite(snap.loss):
                self.first = snap
            if writer is not None:
                writer.write(step_record(snap))
                self.last_step = snap.step
        for notice in snap.notices:
            if notice.seq > self.notice_seq:
                self.notice_seq = notice.seq
                if writer is not None:
                    writer.write({"type": "notice", "step": snap.step, "level": notice.level, "text": notice.text})
        if record.verdicts_changed and writer is not None:
            writer.write(diagnosis_record(snap.step, snap.verdicts))


class _Tagged:
    """A writer that adds `"run": A|B` to every record it writes (a compare log)."""

    def __init__(self, writer: RunLogWriter, run: str) -> None:
        self.writer, self.run = writer, run

    def write(self, record: dict[str, Any]) -> None:
        self.writer.write({**record, "run": self.run})


def compare_record(toggles: list[str], fork_at: int | None, label: str) -> dict[str, Any]:
    """The meta record's "compare": run B is run A with `toggles` from step `fork_at` (None: when forked live)."""
    return {"toggles": list(toggles), "fork_at": fork_at, "label": label}


def read_runlog(path: Path | str) -> list[dict[str, Any]]:
    """Every record of a run log, checked, in file order; a torn last line (a killed run) is skipped.

    For small logs and tools; `vgtui replay` indexes a log instead of loading it (vgtui.logreader).
    """
    from vgtui.logreader import iter_records  # (it imports this module)

    return list(iter_records(path))


class Recordings:
    """Where `launch --record FILE` writes: FILE for the first session, then FILE-2, FILE-3... for each session the
    dashboard starts after it (another preset), so that no recording overwrites an earlier one. The path is
    checked before the screen is taken over (one line, exit 2); the child process then writes each file."""

    def __init__(self, path: str, force: bool) -> None:
        RunLogWriter(path, force=force).discard()  # a missing folder, a folder, an existing file: refused now
        self.path = path
        self.used: list[str] = []

    def next(self) -> str:
        if not self.used:
            path = self.path
        else:  # claim the next free name now (the child opens it with force, as it is ours)
            writer = RunLogWriter.numbered(self.path)
            path = str(writer.path)
            writer.close()
        self.used.append(path)
        return path
