"""The bounded history keeps the whole run visible, the statistics measured every log_every steps included."""

from __future__ import annotations

import numpy as np
import pytest

from vgtui.history import History


def run(history: History, steps: int, every: int, batch: int) -> None:
    """Steps published as the engine does: light rows for every step, statistics at every `every`-th."""
    for start in range(1, steps + 1, batch):
        block = np.arange(start, min(start + batch, steps + 1))
        light = np.ones((len(block), 4 + 3))
        heavy_steps = block[block % every == 0]
        heavy_step = int(heavy_steps[-1]) if len(heavy_steps) else -1
        stats = {"weight_mean_abs": np.full(3, float(heavy_step)), "update_ratio": np.full(3, 1e-3)}
        history.add_rows(block, light, stats if heavy_step > 0 else None, heavy_step, 0.1)


@pytest.mark.parametrize("every", [1, 2, 10, 16])
def test_statistics_survive_decimation(every):
    h = History(capacity=64, max_layers=4)
    run(h, 20_000, every, batch=every)
    assert h.stride >= 256
    view = h.view()
    w = view["weight_mean_abs"][:, 0]
    assert np.isfinite(w).mean() > 0.9  # (was 0 % for even log_every: every statistic fell on a dropped row)
    ok = np.isfinite(w)
    assert np.all(np.abs(w[ok] - view.steps[ok]) <= h.stride)  # each value sits within a stride of its own step


def test_decimated_view_samples_the_statistics_between_rows():
    h = History(capacity=4096, max_layers=4)
    run(h, 3000, 10, batch=10)
    view = h.view(max_points=77)  # sampled rows rarely land on a step that has statistics
    assert len(view) == 77
    assert np.isfinite(view["weight_mean_abs"][1:, 0]).all()
    assert np.isfinite(view["grad_norm"][:, 0]).all()


def test_append_and_add_rows_carry_statistics_alike():
    a, b = History(capacity=8, max_layers=2), History(capacity=8, max_layers=2)
    for step in range(1, 200):
        stats = {"gain": np.array([0.5, float(step)])} if step % 2 == 0 else {}
        a.append(step, {"loss": 1.0}, {"grad_norm": np.ones(2), **stats})
        light = np.ones((1, 6))
        light[0, 0] = 1.0
        b.add_rows(np.array([step]), light, stats or None, step, 0.1)
    np.testing.assert_array_equal(a.view()["gain"], b.view()["gain"])
    assert np.isfinite(a.view()["gain"]).all()


@pytest.mark.parametrize("seed", range(5))
def test_a_publish_of_many_rows_lands_as_step_by_step_appends_do(seed):
    """add_rows writes a block at a time where it can: the same rows, statistics and carries as append()."""
    rng = np.random.default_rng(seed)
    fast, slow = History(capacity=16, max_layers=4), History(capacity=16, max_layers=4)
    step = 0
    for _ in range(60):
        n = int(rng.integers(1, 40))
        steps = np.arange(step + 1, step + n + 1)
        step += n
        light = rng.random((n, 4 + int(rng.integers(1, 6))))
        heavy_step = int(rng.choice(steps)) if rng.random() < 0.7 else -1
        heavy = {"weight_norm": rng.random(3), "gain": rng.random(5)} if heavy_step > 0 else None
        fast.add_rows(steps, light, heavy, heavy_step, 0.1)
        for i, s in enumerate(steps):
            row = light[i]
            layers = {"grad_norm": row[4:], **(heavy if heavy is not None and s == heavy_step else {})}
            scalars = {"loss": row[0], "acc": row[1], "lr": 0.1, "grad_total": row[2], "clipped": row[3]}
            slow.append(int(s), scalars, layers)
        a, b = fast.view(), slow.view()
        assert fast.stride == slow.stride and len(a) == len(b) and a.n_layers == b.n_layers
        np.testing.assert_array_equal(a.steps, b.steps)
        for name in (*a.scalars, *a.layers):
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert fast.stride >= 64
