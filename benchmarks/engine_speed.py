"""Bare torch loop vs the instrumented engine, interleaved and repeated; medians and ratios."""

from __future__ import annotations

import statistics
import time

import torch
from torch.nn import functional as F

from vgtui.config import RunConfig, apply_sets
from vgtui.engine.data import make_dataset
from vgtui.engine.models import MLP, RNNModel, init_model
from vgtui.engine.session import Session
from vgtui.presets import resolve


def scene(name: str, *sets: str) -> RunConfig:
    return apply_sets(resolve(name), list(sets))


def bare_steps_per_sec(cfg: RunConfig, steps: int, device: str = "cpu", threads: int | None = 1) -> float:
    """The same model and batches in a plain loop: forward, backward, step. No telemetry at all.

    `threads` = torch intra-op threads, 1 like the engine's worker (None: torch's default).
    """
    dev = torch.device(device)
    default_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    data = make_dataset(cfg.data, cfg.train.seed, dev)
    torch.manual_seed(cfg.train.seed)
    m = cfg.model
    if m.kind == "mlp":
        model = MLP(data.n_in, data.n_out, m.depth, m.width, m.activation, m.leaky_slope, m.batchnorm, m.skip)
    else:
        model = RNNModel(data.n_in, data.n_out, m.hidden, m.cell)
    init_model(model, m.init, m.activation, m.leaky_slope, m.init_gain)
    model.to(dev)
    t = cfg.train
    if t.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=t.lr)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum)
    gen = torch.Generator().manual_seed(t.seed + 1)

    def step() -> None:
        x, y = data.batch(t.batch_size, gen)
        out = model(x)
        loss = F.mse_loss(out.squeeze(-1), y) if data.regression else F.cross_entropy(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(10):
        step()
    _sync(dev)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(dev)
    rate = steps / (time.perf_counter() - t0)
    torch.set_num_threads(default_threads)
    return rate


WARM = 10  # steps a session runs before it is timed


def engine_steps_per_sec(cfg: RunConfig, steps: int, device: str = "cpu") -> float:
    """The Session (worker thread, telemetry, history, diagnosis) running `steps` steps after a warm-up."""
    return session_steps_per_sec(Session(cfg, device=device, max_steps=WARM + steps, start_paused=False))


def session_steps_per_sec(session: Session) -> float:
    """Steps per second of `session` (built with max_steps = WARM + the steps to time) after WARM steps."""
    session.start()
    while session.latest() is None or session.latest().step < WARM:
        time.sleep(0.001)
    s0, t0 = session.latest().step, time.perf_counter()
    session.done.wait()
    elapsed = time.perf_counter() - t0
    session.stop()
    return (session.latest().step - s0) / elapsed


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def compare(label: str, cfg: RunConfig, steps: int, repeats: int, device: str = "cpu") -> dict:
    """Interleave bare and engine runs `repeats` times; report medians and the ratio."""
    bare, bare_default, eng = [], [], []
    for _ in range(repeats):
        bare.append(bare_steps_per_sec(cfg, steps, device))
        eng.append(engine_steps_per_sec(cfg, steps, device))
        if device == "cpu":
            bare_default.append(bare_steps_per_sec(cfg, steps, device, threads=None))
    b, e = statistics.median(bare), statistics.median(eng)
    row = {"case": label, "bare_steps_s": round(b, 1), "engine_steps_s": round(e, 1), "ratio": round(e / b, 3)}
    if bare_default:
        row["bare_default_threads_steps_s"] = round(statistics.median(bare_default), 1)
    return row


def run(repeats: int = 5, steps: int = 300, device: str = "cpu") -> list[dict]:
    mlp = ("model.depth=20", "model.width=64", "train.batch_size=128")
    cases = [
        ("deep-sigmoid 20x64 b128, default cadence", scene("deep-sigmoid", *mlp)),
        ("deep-sigmoid 20x64 b128, log_every=1", scene("deep-sigmoid", *mlp, "train.log_every=1")),
        ("rnn-long, default cadence", scene("rnn-long")),
        ("rnn-long, log_every=1", scene("rnn-long", "train.log_every=1")),
    ]
    rows = []
    for label, cfg in cases:
        # an RNN step is ~3x an MLP step: half the steps still time ~0.7 s per run (a fifth, 0.27 s, read +-5%)
        n = steps if cfg.model.kind == "mlp" else max(steps // 2, 20)
        rows.append(compare(label, cfg, n, repeats, device))
        print(rows[-1], flush=True)
    from benchmarks import compare_speed  # A/B: paired steps against two separate runs

    return rows + compare_speed.run(repeats, steps, device)
