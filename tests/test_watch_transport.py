"""The hub's transport: private socket files, TCP only with a token, bad frames refused, a stalled viewer bounded."""

from __future__ import annotations

import socket
import stat
import struct

import numpy as np
import pytest
import torch
from torch import nn
from watch_helpers import one_torch_thread_fixture, train_steps, wait_for, watch_dir_fixture  # noqa: F401 - fixtures

import vgtui
from vgtui.attach import AttachError, connect, list_watches
from vgtui.watch import hub as hub_module
from vgtui.wire import INBOUND_MAX, FrameReader, decode, encode

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(depth: int = 3, width: int = 8) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.Tanh()]
    model = nn.Sequential(*layers, nn.Linear(width, 2))
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


def _frames(sock: socket.socket, timeout: float = 3.0) -> list[dict]:
    """Frames a peer sends until it closes the connection (or `timeout` passes)."""
    sock.settimeout(timeout)
    reader, out = FrameReader(), []
    try:
        while data := sock.recv(65536):
            out += [decode(b)[0] for b in reader.feed(data)]
    except TimeoutError:
        out.append({"t": "(still open)"})
    return out


def test_the_socket_is_private(watch_dir):
    model, opt = _model()
    with vgtui.watch(model, opt, name="perm", quiet=True) as w:
        assert stat.S_IMODE(watch_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE(w.socket.stat().st_mode) == 0o600
        assert [x["name"] for x in list_watches()] == ["perm"]
    assert not w.socket.exists()


def test_tcp_needs_the_token(watch_dir):
    model, opt = _model()
    with vgtui.watch(model, opt, name="tcp", tcp=("127.0.0.1", 0), token="s3cret-token", quiet=True) as w:
        port = w.tcp_port
        assert stat.S_IMODE(w.token_file.stat().st_mode) == 0o600
        for join in ({"t": "join"}, {"t": "join", "token": "wrong"}, {"t": "join", "token": 12}):
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(encode(join))
                frames = _frames(s)
            assert [f["t"] for f in frames] == ["refused"] and "token" in frames[0]["reason"]
        with pytest.raises(AttachError, match="token"):
            connect(f"tcp://127.0.0.1:{port}", token="wrong")
        session = connect(f"tcp://127.0.0.1:{port}", token_file=str(w.token_file))
        train_steps(model, opt, w, 5)
        wait_for(lambda: session.latest() is not None and session.latest().step == 5, 30, "step 5")
        session.stop()
    assert not w.token_file.exists()


@pytest.mark.parametrize(
    "payload",
    [
        struct.pack("<I", INBOUND_MAX + 1) + b"x" * 1024,  # oversized: refused from its length alone
        struct.pack("<I", 6) + b"\x02\x00\x00\x00{x",  # malformed JSON
        encode({"t": "cmd", "c": "pause"}),  # no join first
        b"\xff" * 64,  # garbage
    ],
    ids=["oversized", "malformed", "no-join", "garbage"],
)
def test_bad_frames_are_refused_and_the_hub_goes_on(watch_dir, payload):
    model, opt = _model()
    with vgtui.watch(model, opt, name="bad", quiet=True) as w:
        good = connect("bad")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(w.socket))
            s.sendall(payload)
            frames = _frames(s)
        assert [f["t"] for f in frames] == ["refused"]
        # after a join, bad content in a well-formed command is answered with a notice; a bad frame closes
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(w.socket))
            s.sendall(encode({"t": "join"}) + encode({"t": "cmd", "c": "exec", "code": "rm -rf /"}))
            s.sendall(struct.pack("<I", INBOUND_MAX + 1))
            kinds = [f["t"] for f in _frames(s)]
        assert "notice" in kinds and kinds[-1] == "refused"
        train_steps(model, opt, w, 3)
        wait_for(lambda: good.latest() is not None and good.latest().step == 3, 30, "the good viewer")
        good.stop()


def test_a_viewer_that_never_reads_stays_bounded(watch_dir, monkeypatch):
    """The hub in a thread of this process (hub="thread": the same Hub class the hub process runs) so that a small
    write cap can be set here."""
    cap = 48 * 1024
    monkeypatch.setattr(hub_module, "WRITE_CAP", cap)
    monkeypatch.setattr(hub_module, "RESYNC_BELOW", cap // 4)
    model, opt = _model(depth=24, width=8)
    w = vgtui.watch(model, opt, name="stall", publish_every=0.01, heavy_every=5, quiet=True, hub="thread")
    stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(str(w.socket))
    stalled.sendall(encode({"t": "join", "client": "stalled"}))
    reader = connect("stall")
    wait_for(lambda: len(w.viewer_stats()) == 2, 30, "two viewers")
    steps = 1500
    train_steps(model, opt, w, steps)
    wait_for(lambda: reader.latest() is not None and reader.latest().step == steps, 20, "the reading viewer")
    stats = {s["id"]: s for s in w.viewer_stats()}
    slow, fast = stats[1], stats[2]
    biggest = max(len(encode(*_last_pub(w))), 1)
    assert slow["dropped"] > 0 and slow["peak_buffer"] <= cap + biggest, slow
    assert fast["dropped"] == 0 and fast["resyncs"] == 0, fast
    view = reader.history.view()
    assert view.steps.tolist() == list(range(1, steps + 1))  # the reading viewer got every step
    # once the stalled viewer reads again, it is resynced: a fresh backfill of the whole run
    kinds = []
    stalled.settimeout(0.5)
    frames = FrameReader(limit=1 << 23)
    for _ in range(40):
        try:
            data = stalled.recv(1 << 16)
        except TimeoutError:
            continue
        kinds += [decode(b)[0]["t"] for b in frames.feed(data)]
        if "resync" in kinds:
            break
    assert "resync" in kinds
    stalled.close()
    reader.stop()
    w.close()


def _last_pub(w) -> tuple[dict, dict]:
    from vgtui.wire_messages import pub_message

    r = w.hub.reporter
    light = np.zeros((30, 4 + len(r.layers.names)))
    return pub_message(r.latest, {"steps": np.arange(30), "light": light, "lr": 0.1, "segments": [(30, 1, None)]},
                       r.n_events)  # fmt: skip
