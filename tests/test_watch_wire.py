"""The wire: frames round-trip, commands come from a closed list, bad frames are refused. No torch."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from vgtui.contract import HIST_BINS, Event, ModelState, NextEvent, Pause, Reset, Resume, SelectLayer, Step, Toggle
from vgtui.history import History
from vgtui.wire import INBOUND_MAX, FrameReader, WireError, command_header, decode, encode, parse_command
from vgtui.wire_messages import add_rows, backfill_messages, backfill_rows, pub_message, rows_from, snapshot_from


def test_frames_round_trip_arrays_as_raw_little_endian():
    frame = encode({"t": "x", "k": [1, "a"]}, {"f": np.array([1.5, np.nan]), "s": np.array([3, 2**40])})
    (n,) = struct.unpack_from("<I", frame)
    header, arrays = decode(frame[4:])
    assert n == len(frame) - 4 and header == {"t": "x", "k": [1, "a"]}
    assert arrays["f"].dtype == np.dtype("<f4") and np.isnan(arrays["f"][1]) and arrays["f"][0] == 1.5
    assert arrays["s"].tolist() == [3, 2**40]


@pytest.mark.parametrize(
    "body, why",
    [
        (b"\x01", "truncated"),
        (struct.pack("<I", 99) + b"{}", "truncated"),
        (struct.pack("<I", 5) + b"nope!", "malformed"),
        (struct.pack("<I", 2) + b"[]", "malformed"),
        (struct.pack("<I", 8) + b'{"t":1} ', "malformed"),
        (struct.pack("<I", 28) + b'{"t":"x","a":[["v","f8",1]]}', "malformed"),
        (struct.pack("<I", 28) + b'{"t":"x","a":[["v","f4",9]]}', "truncated"),
        (encode({"t": "x"})[4:] + b"extra", "malformed"),
    ],
)
def test_malformed_frames_are_refused(body, why):
    with pytest.raises(WireError, match=why):
        decode(body)


def test_oversized_frames_are_refused_before_they_are_read():
    reader = FrameReader(limit=INBOUND_MAX)
    with pytest.raises(WireError, match="over the limit"):
        list(reader.feed(struct.pack("<I", INBOUND_MAX + 1)))
    with pytest.raises(WireError, match="over the limit"):
        decode(b"x" * (INBOUND_MAX + 1), INBOUND_MAX)


def test_frame_reader_splits_a_stream_in_any_chunks():
    frames = [encode({"t": "a", "i": i}, {"v": np.arange(i)}) for i in range(5)]
    stream = b"".join(frames)
    reader, got = FrameReader(), []
    for i in range(0, len(stream), 7):
        got += [decode(b)[0]["i"] for b in reader.feed(stream[i : i + 7])]
    assert got == list(range(5))


@pytest.mark.parametrize(
    "command", [Pause(), Resume(), Reset(), NextEvent(), Step(3), SelectLayer(2), Toggle("clip", "1.0")]
)
def test_commands_round_trip(command):
    header, _ = decode(encode(command_header(command))[4:])
    assert parse_command(header) == command


@pytest.mark.parametrize(
    "header",
    [
        {"c": "exec", "code": "import os"},
        {"c": "step", "count": "3"},
        {"c": "step", "count": 0},
        {"c": "step", "count": True},
        {"c": "toggle", "name": "clip", "value": 1.0},
        {"c": "toggle", "name": "clip", "value": "x" * 65},
        {"c": "speed", "factor": float("nan")},
    ],
)
def test_commands_outside_the_whitelist_are_refused(header):
    with pytest.raises(WireError):
        parse_command({"t": "cmd", **header})


def _snapshot(step: int, n: int = 3):
    from vgtui.contract import HIST_EDGES, Snapshot

    arr = np.linspace(0.1, 1.0, n)
    model = ModelState("user", "relu", "yours", False, False, 0.5, 0.01, n, "", "AdamW", ("pause", "clip"))
    events = tuple(Event(i, "clip", "1") for i in range(20))
    return Snapshot(step, "running", 0.5, float("nan"), 0.01, 2.0, True, ("a", "b.c", "[0]"), arr, arr, arr, arr,
                    arr, arr, arr, arr, arr, arr, 1, HIST_EDGES, np.arange(HIST_BINS, dtype=float), None, model, (),
                    events, (), 12.5, "cpu", "exp", "watching exp", extra={"metrics": {"ppl": 3.0}})  # fmt: skip


def test_a_publish_round_trips_snapshot_and_rows():
    snap = _snapshot(7)
    light = np.arange(2 * 7, dtype=float).reshape(2, 7)
    heavy = {"weight_norm": np.array([1.0, 2.0, 3.0]), "slope": np.array([0.1, np.nan, 0.3])}
    rows = {"steps": np.array([6, 7]), "light": light, "lr": 0.01, "segments": [(1, 6, heavy), (2, 6, None)]}
    header, arrays = decode(encode(*pub_message(snap, rows, n_events=25))[4:])
    known = [Event(i, "x", "y") for i in range(9)]
    from vgtui.wire_messages import merge_events

    assert merge_events(known, header)  # events 9..24 ride along (the newest 16)
    back = snapshot_from(header, arrays, tuple(known))
    assert back.model == snap.model and back.layer_names == snap.layer_names and back.extra == snap.extra
    np.testing.assert_allclose(back.grad_norm, snap.grad_norm, rtol=1e-7)
    assert back.step == 7 and back.clipped and np.isnan(back.acc) and len(known) == 25
    history = History(8)
    add_rows(history, rows_from(header, arrays))
    view = history.view()
    assert view.steps.tolist() == [6, 7] and view["weight_norm"][0].tolist() == [1.0, 2.0, 3.0]


def test_backfill_round_trips_a_history_with_and_without_statistics():
    history = History(64)
    for step in range(1, 40):
        layers = {"grad_norm": np.full(3, float(step))}
        if step % 5 == 0:
            layers["weight_norm"] = np.full(3, 2.0 * step)
        history.append(step, {"loss": 1.0 / step}, layers)
    copy = History(64)
    for header, arrays in backfill_messages(history.view()):
        decoded = decode(encode(header, arrays)[4:])
        for step, scalars, layers in backfill_rows(*decoded):
            copy.append(step, scalars, layers)
    a, b = history.view(), copy.view()
    np.testing.assert_array_equal(a.steps, b.steps)
    np.testing.assert_allclose(a["grad_norm"], b["grad_norm"])
    np.testing.assert_allclose(a["weight_norm"], b["weight_norm"])
