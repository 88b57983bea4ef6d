"""Reading a run log: an index built in one pass, step records parsed and checked when asked for. No torch.

Why: a run of 1,000,000 steps logs 100,000 step records (~390 MB). Parsing them all took ~14 s and held ~1.9 GB.
Here one pass over the bytes keeps, for each step line as RunLogWriter writes it (recognised by its first bytes),
only its byte offset, line number and step; the few other lines (meta, events, diagnoses, notices) are parsed and
checked at once. A step record is read back from its offset, parsed and checked when it is first needed, and a
bounded number of them is cached. Every error is a RunLogError naming the file and the line.
"""

from __future__ import annotations

import json
import os
import re
import stat
import threading
from array import array
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from vgtui.config import RunConfig
from vgtui.contract import Event, Verdict
from vgtui.logcheck import Bad, check_record, clip, config_from_log
from vgtui.runlog import RunLogError, show_path

MAX_LINE = 1 << 20  # bytes in one line (a step record of the largest model is ~100 KB)
CHUNK = 1 << 23
CACHE_RECORDS = 64
# the start of a step line: its step number is all the index needs (other spellings are parsed in full)
STEP_LINE = re.compile(rb'\{\s*"type"\s*:\s*"step"\s*,\s*"step"\s*:\s*(\d{1,18})\s*[,}]')
RUN_KEY = re.compile(rb'"run"\s*:\s*"([^"]*)"')  # a compare log's step line: which run (no key: A)


def _open(path: Path) -> IO[bytes]:
    """Open a run log for reading: a regular file only (a pipe or /dev/zero would never end)."""
    label = show_path(path)
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise RunLogError(f"{label}: is a folder; allowed: a run log file (vgtui run --out FILE.jsonl)")
        if not stat.S_ISREG(st.st_mode):
            raise RunLogError(f"{label}: not a regular file; allowed: a run log file (vgtui run --out FILE.jsonl)")
        return open(path, "rb")  # noqa: SIM115 - the index keeps it open to read records back
    except OSError as exc:
        raise RunLogError(f"{label}: cannot read: {exc.strerror or exc}") from None


class _Lines:
    """The lines of a file as (line number, byte offset, bytes without the newline, whether it ended in one)."""

    def __init__(self, fh: IO[bytes], label: str) -> None:
        self.fh, self.label = fh, label

    def __iter__(self) -> Iterator[tuple[int, int, bytes, bool]]:
        base, buf, lineno = 0, b"", 0
        while data := self.fh.read(CHUNK):
            buf = buf + data if buf else data
            pos = 0
            while (nl := buf.find(b"\n", pos)) >= 0:
                lineno += 1
                if nl - pos > MAX_LINE:
                    raise self.too_long(lineno)
                yield lineno, base + pos, buf[pos:nl], True
                pos = nl + 1
            buf, base = buf[pos:], base + pos
            if len(buf) > MAX_LINE:
                raise self.too_long(lineno + 1)
        if buf:
            yield lineno + 1, base, buf, False

    def too_long(self, lineno: int) -> RunLogError:
        return RunLogError(f"{self.label}: line {lineno} is longer than {MAX_LINE >> 20} MB; allowed: a run log "
                           f"line (JSON Lines from vgtui run --out)")  # fmt: skip


def parse_line(raw: bytes, label: str, lineno: int) -> Any:
    """One line -> its JSON value, or a RunLogError naming the file and the line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _at(label, lineno, f"not valid UTF-8 (byte {exc.start + 1}); a run log is UTF-8 JSON Lines") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise _at(label, lineno, "not valid JSON: nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise _at(label, lineno, f"not valid JSON: {exc.msg} at column {exc.colno}") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise _at(label, lineno, f"not valid JSON: {clip(str(exc))}") from None


def _at(label: str, lineno: int, what: str) -> RunLogError:
    return RunLogError(f"{label}: line {lineno}: {what}", what)


def _check(rec: Any, label: str, lineno: int) -> str:
    try:
        return check_record(rec)
    except Bad as exc:
        raise _at(label, lineno, str(exc)) from None


def _not_a_log(label: str, lineno: int, what: str) -> RunLogError:
    return _at(label, lineno, f"not a vgtui run log: {what}; the first line must be the 'meta' record that "
                              f"vgtui run --out writes")  # fmt: skip


def iter_records(path: Path | str) -> Iterator[dict[str, Any]]:
    """Every record of a run log in file order, each checked; a torn last line (a killed run) is skipped."""
    path = Path(path)
    label = show_path(path)
    with _open(path) as fh:
        first = True
        for lineno, _, raw, whole in _Lines(fh, label):
            if not raw.strip():
                continue
            try:
                rec = parse_line(raw, label, lineno)
            except RunLogError as exc:
                if not whole and not first:
                    return
                if first:
                    raise _not_a_log(label, lineno, exc.reason) from None
                raise
            if first and not (isinstance(rec, dict) and rec.get("type") == "meta"):
                raise _not_a_log(label, lineno, f"it starts with {_describe(rec)}")
            _check(rec, label, lineno)
            if first:
                _meta_config(rec, label, lineno)
            first = False
            yield rec
        if first:
            raise RunLogError(f"{label}: empty: not a vgtui run log (the first line must be the 'meta' record)")


def _meta_config(meta: dict[str, Any], label: str, lineno: int) -> RunConfig:
    try:
        return config_from_log(meta["config"], label)
    except Bad as exc:
        raise _at(label, lineno, f"meta record: {exc}") from None


def _describe(rec: Any) -> str:
    if isinstance(rec, dict):
        return f"a '{clip(str(rec.get('type')), 20)}' record" if "type" in rec else "an object without a 'type'"
    return {list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(type(rec), "a number")


class RunLogIndex:
    """A run log opened for replay: the meta record, its config, the events, diagnoses and notices, and an index
    of the step records (`steps`, their step numbers) whose records `record(i)` reads back on demand."""

    def __init__(self, path: Path | str, run: str = "A") -> None:
        self.path = Path(path)
        self.run = run  # a compare log holds two runs: this index holds run A's (or B's) records only
        self.other_run = False  # whether the log holds records of the other run (a compare log)
        self.label = show_path(self.path)
        self._fh = _open(self.path)
        self.size = os.fstat(self._fh.fileno()).st_size  # bytes when opened
        self._lock = threading.Lock()
        self._cache: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self.meta: dict[str, Any] = {}
        self.events: list[Event] = []
        self.notices: list[tuple[int, str, str]] = []
        self.diagnoses: list[tuple[int, tuple[Verdict, ...]]] = []
        try:
            self._scan()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ the one pass

    def _scan(self) -> None:
        steps, offsets, lines = array("q"), array("q"), array("q")
        meta_line = 0
        for lineno, offset, raw, whole in _Lines(self._fh, self.label):
            m = STEP_LINE.match(raw) if meta_line else None
            if m and whole:  # a compare log: a line of the other run is skipped (no "run": run A's)
                r = RUN_KEY.search(raw) if b'"run"' in raw else None
                if r is not None and r.group(1) not in (b"A", b"B"):
                    m = None  # parsed and checked below, to say what is wrong
                elif (r.group(1).decode() if r is not None else "A") != self.run:
                    self.other_run = True
                    continue
            if m and whole:  # checked when read (a torn last line is parsed now, below)
                steps.append(int(m.group(1)))
                offsets.append(offset)
                lines.append(lineno)
                continue
            if not raw.strip():
                continue
            try:
                rec = parse_line(raw, self.label, lineno)
            except RunLogError as exc:
                if not whole and meta_line:
                    break  # the torn last line of a killed run
                if not meta_line:
                    raise _not_a_log(self.label, lineno, exc.reason) from None
                raise
            if not meta_line:
                if not (isinstance(rec, dict) and rec.get("type") == "meta"):
                    raise _not_a_log(self.label, lineno, f"it starts with {_describe(rec)}")
                _check(rec, self.label, lineno)
                self.meta, meta_line = rec, lineno
                self.config = self._config(rec, lineno)
                continue
            kind = _check(rec, self.label, lineno)
            if kind != "meta" and (rec.get("run") or "A") != self.run:
                self.other_run = True
                continue
            if kind == "step":
                steps.append(rec["step"])
                offsets.append(offset)
                lines.append(lineno)
            elif kind == "event":
                self.events.append(Event(rec["step"], rec["name"], str(rec.get("value"))))
            elif kind == "diagnosis":
                self.diagnoses.append((rec["step"], _verdicts(rec)))
            elif kind == "notice":
                self.notices.append((rec["step"], rec.get("level") or "info", rec["text"]))
            else:
                raise _at(self.label, lineno, f"a second 'meta' record (the first is on line {meta_line}); "
                                              "allowed: one run per log")  # fmt: skip
        if not meta_line:
            raise RunLogError(f"{self.label}: empty: not a vgtui run log (the first line must be the 'meta' record)")
        self.steps = np.frombuffer(steps, dtype=np.int64) if steps else np.zeros(0, dtype=np.int64)
        self._offsets = np.frombuffer(offsets, dtype=np.int64) if offsets else np.zeros(0, dtype=np.int64)
        self._lines = np.frombuffer(lines, dtype=np.int64) if lines else np.zeros(0, dtype=np.int64)

    def _config(self, meta: dict[str, Any], lineno: int) -> RunConfig:
        return _meta_config(meta, self.label, lineno)

    # ------------------------------------------------------------------ records on demand

    def __len__(self) -> int:
        return len(self.steps)

    def line_of(self, index: int) -> int:
        return int(self._lines[index])

    def record(self, index: int) -> dict[str, Any]:
        """Step record `index` (0-based), parsed and checked; RunLogError naming the line if it is not valid."""
        with self._lock:
            rec = self._cache.get(index)
            if rec is not None:
                self._cache.move_to_end(index)
                return rec
            lineno = int(self._lines[index])
            try:
                self._fh.seek(int(self._offsets[index]))
                raw = self._fh.readline(MAX_LINE + 1)
            except (OSError, ValueError) as exc:
                raise _at(self.label, lineno, f"cannot read: {exc}") from None
            rec = parse_line(raw, self.label, lineno)
            if not isinstance(rec, dict) or rec.get("type") != "step":
                raise _at(self.label, lineno, "not the step record it was when the log was opened")
            try:
                check_record(rec)
            except Bad as exc:
                raise _at(self.label, lineno, str(exc)) from None
            self._cache[index] = rec
            if len(self._cache) > CACHE_RECORDS:
                self._cache.popitem(last=False)
            return rec

    def close(self) -> None:
        self._fh.close()


def _verdicts(record: dict) -> tuple[Verdict, ...]:
    return tuple(
        Verdict(v["code"], v["severity"], v["text"], tuple(v.get("remedies") or ())) for v in record["verdicts"]
    )
