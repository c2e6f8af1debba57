"""argparse types for numeric flags. A bad value is a one-line ``UserError`` naming the flag (exit 2)
while the command line is parsed, before any work, not a traceback deep in a run
(``--workers -1``, ``--seed 99999999999``). argparse passes exceptions other than
``ValueError``/``TypeError``/``ArgumentTypeError`` through, so the CLI's one error path shows it."""
from __future__ import annotations

import math
from collections.abc import Callable

from bench.core.errors import UserError

#: the largest seed numpy and torch both accept
MAX_SEED = 2**32 - 1


def int_range(flag: str, lo: int, hi: int | None = None) -> Callable[[str], int]:
    """An argparse type for ``flag``: a whole number in ``[lo, hi]`` (no upper bound when ``hi`` is None)."""
    bound = f"between {lo} and {hi}" if hi is not None else f"{lo} or more"

    def parse(text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except ValueError:
            raise UserError(f"{flag} {text!r}: expected a whole number {bound}") from None
        if value < lo or (hi is not None and value > hi):
            raise UserError(f"{flag} {value}: must be {bound}")
        return value
    return parse


def unit_float(flag: str) -> Callable[[str], float]:
    """An argparse type for ``flag``: a finite number in [0, 1] (a fidelity weight or quality condition)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise UserError(f"{flag} {text!r}: expected a number between 0 and 1")
        return value
    return parse
