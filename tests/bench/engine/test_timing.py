"""The profiler's accounting, driven by a fake clock: data-wait share, device-busy share, latency percentiles."""
from __future__ import annotations

import torch

from bench.engine.loading import LoadedBatch
from bench.engine.timing import LoopTiming, ProfileRow, StepTimer, summarise, timed_loop

CPU = torch.device("cpu")


class FakeClock:
    """A clock that only moves when the code under test says time passes."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def batch(n: int) -> LoadedBatch:
    return LoadedBatch(names=[f"x{i}" for i in range(n)], lq=torch.zeros(n, 3, 2, 2, dtype=torch.uint8), gt=None,
                       errors={}, conversions={}, lq_paths=[], gt_paths=[])


def slow_loader(clock: FakeClock, n_batches: int, wait: float, size: int = 4):
    for _ in range(n_batches):
        clock.advance(wait)  # decoding happens inside next(): the loop sees it as waiting
        yield batch(size)


def test_shares_and_latency_from_the_loop():
    clock = FakeClock()
    calls = []

    def step(b):
        calls.append(len(b.names))
        clock.advance(0.030)

    timing = timed_loop(slow_loader(clock, 10, 0.010), step, CPU, warmup=2, iters=5, clock=clock)
    assert len(calls) == 7  # warm-up steps ran but are not timed
    assert timing.images == 20 and len(timing.waits) == len(timing.steps) == 5
    row = summarise(ProfileRow(kind="method", name="t", batch_size=4, dtype="fp32"), timing)
    assert abs(row.wall_s - 0.2) < 1e-9
    assert abs(row.data_wait_share - 0.25) < 1e-9 and abs(row.device_busy_share - 0.75) < 1e-9
    assert abs(row.images_per_s - 100.0) < 1e-6 and abs(row.compute_images_per_s - 20 / 0.15) < 1e-6
    assert abs(row.latency_p50_ms - 30.0) < 1e-6 and abs(row.latency_p95_ms - 30.0) < 1e-6


def test_loop_stops_when_the_loader_runs_dry():
    clock = FakeClock()
    timing = timed_loop(slow_loader(clock, 4, 0.0, size=3), lambda b: clock.advance(0.01), CPU,
                        warmup=1, iters=10, clock=clock)
    assert timing.images == 9 and len(timing.steps) == 3


def test_percentiles_in_milliseconds():
    steps = [i / 1000 for i in range(1, 21)]  # 1..20 ms
    row = summarise(ProfileRow(kind="method", name="t", batch_size=1, dtype="fp32"),
                    LoopTiming(waits=[0.0] * 20, steps=steps, wall=sum(steps), images=20))
    assert abs(row.latency_p50_ms - 10.5) < 1e-9
    assert abs(row.latency_p95_ms - 19.05) < 1e-9
    assert row.data_wait_share == 0.0 and abs(row.device_busy_share - 1.0) < 1e-12


def test_step_timer_on_cpu_uses_the_clock():
    clock = FakeClock()
    timer = StepTimer(CPU, clock)
    for d in (0.002, 0.005):
        timer.start()
        clock.advance(d)
        timer.stop()
    assert [round(x, 9) for x in timer.durations()] == [0.002, 0.005]
