"""Where the engine's time goes: seconds per phase of a unit, measured only when profiling.

A :class:`Phases` recorder synchronizes the device at each phase boundary, so a phase's seconds
are its own work rather than work queued before it; that is why a normal run uses :data:`OFF`
(no clock, no sync) and only ``bfrbench profile --e2e`` turns it on.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import torch

from bench.core.device import synchronize

T = TypeVar("T")


class Phases:
    """Accumulated seconds per phase name; ``with phases("restore"): ...`` times one occurrence."""

    enabled = True

    def __init__(self, device: torch.device | str = "cpu", clock: Callable[[], float] = time.perf_counter) -> None:
        self.device, self.clock = torch.device(device), clock
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        synchronize(self.device)
        t0 = self.clock()
        try:
            yield
        finally:
            synchronize(self.device)
            self.seconds[name] = self.seconds.get(name, 0.0) + (self.clock() - t0)

    def total(self) -> float:
        """Seconds of every phase together."""
        return float(sum(self.seconds.values()))


class _Off:
    """The recorder of a normal run: times nothing and never synchronizes."""

    enabled = False
    seconds: dict[str, float] = {}

    def __call__(self, name: str) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def total(self) -> float:
        return 0.0


#: the recorder of a normal run
OFF: Any = _Off()


def timed_iter(items: Iterable[T], phases: Any, name: str) -> Iterator[T]:
    """``items``, with the time spent waiting for each next item recorded as phase ``name``."""
    it = iter(items)
    while True:
        with phases(name):
            try:
                item = next(it)
            except StopIteration:
                return
        yield item


def breakdown(phases: Phases, total_s: float) -> dict[str, float]:
    """Seconds per phase, largest first, plus ``other`` (what no phase covered) for a region of ``total_s``."""
    out = dict(sorted(phases.seconds.items(), key=lambda kv: -kv[1]))
    out["other"] = max(0.0, total_s - phases.total())
    return out


def format_phases(phases: dict[str, float], total_s: float) -> str:
    """One line: ``restore 1.20 s (5%), metric:niqe 8.30 s (38%), ...``."""
    parts = [f"{name} {s:.2f} s ({s / total_s:.0%})" if total_s > 0 else f"{name} {s:.2f} s"
             for name, s in phases.items()]
    return ", ".join(parts)
