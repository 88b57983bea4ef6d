"""RSS of a headless engine run over many steps: bounded history, flat after warm-up."""

from __future__ import annotations

import os
import time

from vgtui.config import apply_sets
from vgtui.engine.session import Session
from vgtui.presets import resolve


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux /proc; falls back to peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def run(
    steps: int = 1_000_000, model: tuple[str, ...] = ("model.depth=4", "model.width=8", "train.batch_size=8")
) -> dict:
    """Drive the engine headless for `steps` steps (a small model, so a million steps take minutes)."""
    cfg = apply_sets(resolve("deep-sigmoid"), [*model, f"train.steps={steps}"])
    session = Session(cfg, device="cpu", max_steps=steps).start()
    samples = []
    t0 = time.perf_counter()
    next_mark = 0.0
    while not session.done.wait(1.0):
        now = time.perf_counter() - t0
        if now >= next_mark:
            snap = session.latest()
            samples.append((snap.step if snap else 0, round(rss_mb(), 1), len(session.history)))
            next_mark = now + 10
    snap = session.latest()
    samples.append((snap.step, round(rss_mb(), 1), len(session.history)))
    session.stop()
    warm = next((s for s in samples if s[0] >= min(50_000, steps // 10)), samples[0])
    result = {
        "steps": snap.step,
        "seconds": round(time.perf_counter() - t0, 1),
        "rss_mb_after_warmup": warm[1],
        "rss_mb_end": samples[-1][1],
        "rss_mb_max": max(s[1] for s in samples),
        "history_rows": len(session.history),
        "history_capacity": session.history.capacity,
        "history_mb": round(session.history.nbytes() / 1e6, 1),
        "samples": samples,
    }
    print({k: v for k, v in result.items() if k != "samples"}, flush=True)
    return result
