"""The command line of a comparison: `--compare "activation=leaky_relu,init=he"` and `--fork-at STEP`. No torch."""

from __future__ import annotations

import argparse

from vgtui.config import ConfigError, RunConfig
from vgtui.contract import Toggle
from vgtui.engine.toggles import ToggleError, normalize, parse_compare

MAX_COMPARE = 400  # characters: a few toggles


def add_compare_args(parser: argparse.ArgumentParser, fork_at: bool = True) -> None:
    parser.add_argument("--compare", default=None, metavar="TOGGLES",
                        help='train a run B beside the preset (run A) on the same batches, B with these toggles, '
                             'e.g. "activation=leaky_relu,init=he"; --toggle applies to both runs')  # fmt: skip
    if fork_at:
        parser.add_argument("--fork-at", type=int, default=None, metavar="STEP",
                            help="with --compare: fork B from A at this step (default 0: from the start)")  # fmt: skip


def compare_options(args: argparse.Namespace, config: RunConfig) -> tuple[tuple[Toggle, ...] | None, int]:
    """(B's toggles or None, the fork step), checked against the preset; ConfigError: one line, what is allowed."""
    text, fork_at = args.compare, getattr(args, "fork_at", None)
    if text is None:
        if fork_at is not None:
            raise ConfigError('--fork-at needs --compare: e.g. --compare "activation=leaky_relu" --fork-at 300')
        return None, 0
    if len(text) > MAX_COMPARE:
        raise ConfigError(f"--compare is {len(text):,} characters long; allowed: name=value toggles joined by ',', "
                          f"up to {MAX_COMPARE}")  # fmt: skip
    toggles = parse_compare(text)
    for t in toggles:
        try:
            normalize(t, config.model.kind)
        except ToggleError as exc:
            raise ToggleError(f"--compare {t.name}={t.value}: {exc}") from None
    steps = config.train.steps
    if fork_at is not None and not 0 <= fork_at < steps:
        raise ConfigError(f"--fork-at {fork_at}: allowed: a step from 0 to {steps - 1} (the run has {steps} steps)")
    return toggles, fork_at or 0


def toggle_texts(toggles: tuple[Toggle, ...]) -> list[str]:
    return [f"{t.name}={t.value}" for t in toggles]
