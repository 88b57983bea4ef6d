"""What a viewer in another process receives equals what the training script computes itself (to 1e-5), and two
viewers at once receive the same data."""

from __future__ import annotations

import numpy as np
from watch_helpers import SCRIPTS, spawn, wait_for, watch_dir_fixture  # noqa: F401 - fixtures

from vgtui.attach import connect
from vgtui.watchdir import socket_path


def _rows(view, steps: np.ndarray) -> np.ndarray:
    index = {int(s): i for i, s in enumerate(view.steps)}
    assert all(int(s) in index for s in steps), "a step is missing from the viewer's history"
    return np.array([index[int(s)] for s in steps])


def test_two_viewers_receive_what_the_script_computes(watch_dir, tmp_path):
    out = tmp_path / "ref.npz"
    proc = spawn([str(SCRIPTS / "reference_train.py"), "--name", "ref", "--out", str(out), "--viewers", "2"])
    try:
        wait_for(lambda: socket_path("ref").exists() or proc.poll() is not None, 60, "the watch socket")
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        a, b = connect("ref"), connect("ref", read_only=True)
        wait_for(lambda: a.ended.is_set() and b.ended.is_set(), 120, "the run to end")
        assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
    ref = np.load(out)
    va, vb = a.history.view(), b.history.view()
    assert a.latest().status == "done" and a.latest().layer_names == ("[0]", "[2]", "[4]", "[6]", "[8]")
    # per-layer gradient norms, every step
    rows = _rows(va, ref["step"])
    np.testing.assert_allclose(va["grad_norm"][rows], ref["grad"], rtol=1e-5, atol=1e-9)
    # heavy steps: weight norms, the real update size, the activations' slope, dead and saturated shares
    rows = _rows(va, ref["heavy_step"])
    np.testing.assert_allclose(va["weight_norm"][rows], ref["weight"], rtol=1e-5)
    np.testing.assert_allclose(va["update_ratio"][rows], ref["update"], rtol=1e-5)
    # activation statistics from step 1 on (the probes are armed when watching starts)
    assert ref["heavy_step"][0] == 1
    for name, key in (("slope", "slope"), ("dead", "dead"), ("saturation", "sat")):
        np.testing.assert_allclose(va[name][rows], ref[key], rtol=1e-5, atol=1e-7)
    # the second viewer got the same data
    np.testing.assert_array_equal(va.steps, vb.steps)
    for name in ("grad_norm", "weight_norm", "update_ratio", "slope", "loss"):
        np.testing.assert_array_equal(va[name], vb[name])
    np.testing.assert_array_equal(a.latest().grad_norm, b.latest().grad_norm)
    a.stop()
    b.stop()
