"""A/B in lockstep vs two separate runs: what training a remedy beside its baseline costs.

A paired step is one step of run A and one of run B (CompareSession, one worker thread, torch threads 1). Its
baseline is the same two runs one after the other, each a plain Session: a paired step costs what two steps of
two separate runs cost when the ratio (paired steps/s over separate-pair steps/s) is 1.0.
"""

from __future__ import annotations

import statistics

from vgtui.config import RunConfig
from vgtui.engine.compare import CompareSession
from vgtui.engine.toggles import parse_compare


def paired_steps_per_sec(cfg: RunConfig, steps: int, toggles: str, device: str = "cpu") -> float:
    """Paired steps per second of a CompareSession (B = A with `toggles` from step 0), after a warm-up."""
    from benchmarks.engine_speed import WARM, session_steps_per_sec

    return session_steps_per_sec(CompareSession(cfg, device=device, max_steps=WARM + steps,
                                                compare=parse_compare(toggles)))  # fmt: skip


def compare_pair(label: str, cfg: RunConfig, toggles: str, steps: int, repeats: int, device: str = "cpu") -> dict:
    """Interleaved: one run of A alone, one of B alone (each a Session), one paired run; medians and ratios."""
    from benchmarks.engine_speed import engine_steps_per_sec
    from vgtui.config import apply_sets

    sets = [f"{'train' if t.name in ('lr', 'clip') else 'model'}.{t.name}={t.value}"
            for t in parse_compare(toggles)]  # fmt: skip
    cfg_b = apply_sets(cfg, sets)
    one, separate, paired = [], [], []
    for _ in range(repeats):
        ra = engine_steps_per_sec(cfg, steps, device)
        rb = engine_steps_per_sec(cfg_b, steps, device)
        one.append(ra)
        separate.append(1.0 / (1.0 / ra + 1.0 / rb))  # A's steps then B's: pairs of steps per second
        paired.append(paired_steps_per_sec(cfg, steps, toggles, device))
    o, s, p = statistics.median(one), statistics.median(separate), statistics.median(paired)
    return {
        "case": label,
        "one_run_steps_s": round(o, 1),
        "two_separate_runs_pairs_s": round(s, 1),
        "paired_steps_s": round(p, 1),
        "paired_vs_two_separate": round(p / s, 3),
        "paired_cost_in_runs": round(o / p, 2),
    }


def run(repeats: int = 5, steps: int = 300, device: str = "cpu") -> list[dict]:
    from benchmarks.engine_speed import scene

    cases = [
        ("A/B deep-sigmoid 20x64 vs leaky_relu+he", scene("deep-sigmoid"), "activation=leaky_relu,init=he"),
        ("A/B rnn-long vs lstm", scene("rnn-long"), "cell=lstm"),
    ]
    rows = []
    for label, cfg, toggles in cases:
        n = steps if cfg.model.kind == "mlp" else max(steps // 2, 20)
        rows.append(compare_pair(label, cfg, toggles, n, repeats, device))
        print(rows[-1], flush=True)
    return rows
