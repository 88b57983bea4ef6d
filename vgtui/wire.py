"""Frames between a watched training process and its viewers. No torch, no pickle.

A frame is a 4-byte little-endian length N, then N bytes: a 4-byte header length H, H bytes of a JSON object
(the header), then the raw little-endian arrays it lists in `header["a"]` as [name, dtype, count] ("f4" float32,
"i8" int64 for step numbers). Nothing is ever unpickled, evaluated or imported from a frame: a peer can only send
numbers and short strings, and the reader refuses a frame longer than its limit before reading it.

Limits: what a viewer sends to the training process (commands) is capped at 64 KiB; what a viewer accepts from
it at 8 MiB (a backfill is sent in chunks far below that).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from typing import Any

import numpy as np

from vgtui.contract import (
    Command,
    NextEvent,
    Pause,
    Reset,
    Resume,
    Seek,
    SelectLayer,
    SetSpeed,
    Step,
    Toggle,
)

PROTOCOL = 1
INBOUND_MAX = 64 * 1024  # bytes a training process accepts in one frame from a viewer
OUTBOUND_MAX = 8 * 1024 * 1024  # bytes a viewer accepts in one frame from the training process
DTYPES = {"f4": np.dtype("<f4"), "i8": np.dtype("<i8")}
MAX_TEXT = 64  # longest string a command may carry
MAX_ARRAYS = 64
_LEN = struct.Struct("<I")


class WireError(ValueError):
    """A frame that is too long, truncated or malformed; str() says which."""


def encode(header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> bytes:
    """One frame: the header as JSON and each array as raw little-endian data (float arrays as float32)."""
    blobs: list[bytes] = []
    listed: list[list[Any]] = []
    for name, values in (arrays or {}).items():
        arr = np.asarray(values)
        code = "i8" if arr.dtype.kind in "iu" else "f4"
        data = np.ascontiguousarray(arr, dtype=DTYPES[code]).tobytes()
        listed.append([name, code, int(arr.size)])
        blobs.append(data)
    head = json.dumps({**header, "a": listed}, separators=(",", ":")).encode()
    body = b"".join([_LEN.pack(len(head)), head, *blobs])
    return _LEN.pack(len(body)) + body


def decode(body: bytes, limit: int = OUTBOUND_MAX) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and arrays of a frame's body (the bytes after its length). Raises WireError."""
    if len(body) > limit:
        raise WireError(f"frame of {len(body)} bytes is over the limit of {limit}")
    if len(body) < 4:
        raise WireError("truncated frame: no header length")
    (hlen,) = _LEN.unpack_from(body)
    if hlen > len(body) - 4:
        raise WireError("truncated frame: header longer than the frame")
    try:
        header = json.loads(body[4 : 4 + hlen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise WireError(f"malformed header: {type(exc).__name__}") from None
    if not isinstance(header, dict) or not isinstance(header.get("t"), str):
        raise WireError("malformed header: not an object with a type 't'")
    listed = header.pop("a", [])
    if not isinstance(listed, list) or len(listed) > MAX_ARRAYS:
        raise WireError("malformed header: bad array list")
    arrays: dict[str, np.ndarray] = {}
    at = 4 + hlen
    for entry in listed:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str) and entry[1] in DTYPES):
            raise WireError("malformed header: bad array entry")
        name, code, count = entry
        if not isinstance(count, int) or count < 0:
            raise WireError(f"malformed header: bad size for array {name[:MAX_TEXT]!r}")
        nbytes = count * DTYPES[code].itemsize
        if at + nbytes > len(body):
            raise WireError(f"truncated frame: array {name[:MAX_TEXT]!r} runs past the end")
        arrays[name] = np.frombuffer(body, dtype=DTYPES[code], count=count, offset=at)
        at += nbytes
    if at != len(body):
        raise WireError("malformed frame: bytes after the last array")
    return header, arrays


class FrameReader:
    """Splits a byte stream into frame bodies; refuses a frame longer than `limit` as soon as its length is read."""

    def __init__(self, limit: int = OUTBOUND_MAX) -> None:
        self.limit = limit
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Add received bytes; yield every complete frame body. Raises WireError on an oversized frame."""
        self._buf += data
        while len(self._buf) >= 4:
            (n,) = _LEN.unpack_from(self._buf)
            if n > self.limit:
                raise WireError(f"frame of {n} bytes is over the limit of {self.limit}")
            if len(self._buf) < 4 + n:
                return
            body = bytes(self._buf[4 : 4 + n])
            del self._buf[: 4 + n]
            yield body


async def read_frame(reader: Any, limit: int) -> bytes:
    """The next frame body from an asyncio StreamReader (IncompleteReadError at the end of the stream)."""
    (n,) = _LEN.unpack(await reader.readexactly(4))
    if n > limit:
        raise WireError(f"frame of {n} bytes is over the limit of {limit}")
    return await reader.readexactly(n)


# --------------------------------------------------------------------------- commands (viewer -> training process)


def command_header(command: Command) -> dict[str, Any]:
    """The frame header that carries a command."""
    if isinstance(command, Toggle):
        return {"t": "cmd", "c": "toggle", "name": command.name, "value": command.value}
    if isinstance(command, Step):
        return {"t": "cmd", "c": "step", "count": int(command.count)}
    if isinstance(command, SelectLayer):
        return {"t": "cmd", "c": "select_layer", "layer": int(command.layer)}
    if isinstance(command, Seek):
        return {"t": "cmd", "c": "seek", "records": int(command.records)}
    if isinstance(command, SetSpeed):
        return {"t": "cmd", "c": "speed", "factor": float(command.factor)}
    for kind, name in ((Pause, "pause"), (Resume, "resume"), (Reset, "reset"), (NextEvent, "next_event")):
        if isinstance(command, kind):
            return {"t": "cmd", "c": name}
    raise WireError(f"not a command: {type(command).__name__}")


def parse_command(header: dict[str, Any]) -> Command:
    """The Command a 'cmd' header asks for, from a closed list; WireError for anything else."""
    c = header.get("c")
    if c == "toggle":
        name, value = header.get("name"), header.get("value")
        if not (isinstance(name, str) and isinstance(value, str) and len(name) <= MAX_TEXT and len(value) <= MAX_TEXT):
            raise WireError("toggle: name and value must be short strings")
        return Toggle(name, value)
    simple = {"pause": Pause, "resume": Resume, "reset": Reset, "next_event": NextEvent}
    if c in simple:
        return simple[c]()
    ranged = (
        ("step", "count", Step, 1, 100_000),
        ("select_layer", "layer", SelectLayer, 1, 4096),
        ("seek", "records", Seek, -(10**6), 10**6),
    )
    for name, key, kind, lo, hi in ranged:
        if c == name:
            value = header.get(key)
            if type(value) is not int or not lo <= value <= hi:
                raise WireError(f"{name}: {key} must be an integer from {lo} to {hi}")
            return kind(value)
    if c == "speed":
        factor = header.get("factor")
        if not isinstance(factor, (int, float)) or not math.isfinite(factor) or not 0 < factor <= 100:
            raise WireError("speed: factor must be a number in (0, 100]")
        return SetSpeed(float(factor))
    raise WireError(f"unknown command {str(c)[:MAX_TEXT]!r}")
