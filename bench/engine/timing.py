"""Timing without host syncs: step timers, peak memory, the timed loop, and method / metric throughput rows.

A timed loop pulls batches from a DataLoader reading real PNG files, runs the step, and records
images/s, per-batch latency p50/p95, peak memory, the share of wall time spent waiting on the
DataLoader and the share the device was busy (CUDA events around each step; on CPU, the step's
host time). Nothing inside the timed region forces a host sync.
"""
from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bench.core.device import dtype_support, inference_mode, resolve_device, synchronize, to_device_images
from bench.engine.loading import LoadedBatch, make_loader
from bench.engine.step import Engine

Clock = Callable[[], float]

#: columns of profile.csv, in order
COLUMNS = [
    "kind", "name", "batch_size", "dtype", "compile", "channels_last", "device", "images", "wall_s",
    "images_per_s", "compute_images_per_s", "latency_p50_ms", "latency_p95_ms", "peak_mem_mb", "mem_kind",
    "data_wait_share", "device_busy_share", "standin", "standard", "status", "note",
]

@dataclass
class LoopTiming:
    """Raw numbers of one timed loop (seconds)."""

    waits: list[float]
    steps: list[float]
    wall: float
    images: int

@dataclass
class ProfileRow:
    kind: str
    name: str
    batch_size: int
    dtype: str
    compile: bool = False
    channels_last: bool = False
    device: str = "cpu"
    images: int = 0
    wall_s: float = float("nan")
    images_per_s: float = float("nan")
    compute_images_per_s: float = float("nan")
    latency_p50_ms: float = float("nan")
    latency_p95_ms: float = float("nan")
    peak_mem_mb: float = float("nan")
    mem_kind: str = ""
    data_wait_share: float = float("nan")
    device_busy_share: float = float("nan")
    #: a method on random / stand-in weights (its speed is real, its outputs are not the method's)
    standin: bool = False
    #: a metric on its standard network (False: an offline stand-in such as fid-mobilenet)
    standard: bool = True
    status: str = "ok"
    note: str = ""

class StepTimer:
    """Device time of each step without host syncs: CUDA events on a GPU, the host clock on CPU.

    ``start()`` / ``stop()`` around each step; ``durations()`` synchronizes once and returns seconds.
    """

    def __init__(self, device: torch.device, clock: Callable[[], float] = time.perf_counter) -> None:
        self.device, self.clock = device, clock
        self._events: list[tuple[Any, Any]] = []
        self._host: list[float] = []
        self._t0: float | None = None
        self._start_event: Any = None

    def start(self) -> None:
        if self.device.type == "cuda":
            self._start_event = torch.cuda.Event(enable_timing=True)
            self._start_event.record()
        else:
            self._t0 = self.clock()

    def stop(self) -> None:
        if self.device.type == "cuda":
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self._events.append((self._start_event, end))
        else:
            assert self._t0 is not None, "stop() without start()"
            self._host.append(self.clock() - self._t0)

    def durations(self) -> list[float]:
        if self.device.type == "cuda":
            synchronize(self.device)
            return [a.elapsed_time(b) / 1000.0 for a, b in self._events]
        return list(self._host)

class PeakMemory:
    """Peak memory of a region: ``torch.cuda.max_memory_allocated`` on a GPU; on CPU the peak RSS
    above the RSS at entry, sampled every few milliseconds by a thread (this process only)."""

    def __init__(self, device: torch.device, interval: float = 0.002) -> None:
        self.device, self.interval = device, interval
        self.peak_bytes: int = 0
        self.kind = "cuda_max_allocated" if device.type == "cuda" else "cpu_rss_delta"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._base = 0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._base = current_rss()
            self._peak_rss = self._base
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak_rss = max(self._peak_rss, current_rss())
            self._stop.wait(self.interval)

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            self.peak_bytes = int(torch.cuda.max_memory_allocated(self.device))
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._peak_rss = max(self._peak_rss, current_rss())
            self.peak_bytes = max(0, self._peak_rss - self._base)

def current_rss() -> int:
    """Resident set size of this process in bytes (Linux /proc; else the lifetime peak from getrusage)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):  # pragma: no cover - non-Linux
        import resource
        import sys

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss if sys.platform == "darwin" else rss * 1024

def timed_loop(
    batches: Iterable[LoadedBatch],
    step: Callable[[LoadedBatch], Any],
    device: torch.device,
    *,
    warmup: int,
    iters: int,
    clock: Clock = time.perf_counter,
) -> LoopTiming:
    """Run ``warmup`` untimed then up to ``iters`` timed steps; no host sync between the two end syncs."""
    it: Iterator[LoadedBatch] = iter(batches)
    for batch in itertools.islice(it, warmup):
        step(batch)
    synchronize(device)
    timer = StepTimer(device, clock)
    waits: list[float] = []
    images = 0
    start = clock()
    for _ in range(iters):
        t0 = clock()
        batch = next(it, None)
        if batch is None:
            break
        waits.append(clock() - t0)
        timer.start()
        step(batch)
        timer.stop()
        images += len(batch.names)
    synchronize(device)
    wall = clock() - start
    return LoopTiming(waits=waits, steps=timer.durations(), wall=wall, images=images)

def summarise(row: ProfileRow, timing: LoopTiming) -> ProfileRow:
    """Fill a row's speed columns from a loop's raw timings."""
    steps = np.asarray(timing.steps, dtype=float)
    row.images = timing.images
    row.wall_s = timing.wall
    if timing.wall > 0:
        row.images_per_s = timing.images / timing.wall
        row.data_wait_share = min(1.0, float(np.sum(timing.waits)) / timing.wall)
        row.device_busy_share = min(1.0, float(steps.sum()) / timing.wall)
    if steps.size:
        row.latency_p50_ms = float(np.percentile(steps, 50) * 1000)
        row.latency_p95_ms = float(np.percentile(steps, 95) * 1000)
        if steps.sum() > 0:
            row.compute_images_per_s = timing.images / float(steps.sum())
    return row

def _cycled(pairs: Sequence[Any], n: int) -> list[Any]:
    if not pairs:
        raise ValueError("no images to profile on")
    return [pairs[i % len(pairs)] for i in range(n)]

def profile_method(
    method: torch.nn.Module,
    name: str,
    pairs: Sequence[Any],
    *,
    batch_size: int,
    dtype: str = "fp32",
    device: torch.device | str = "cpu",
    compile: bool = False,
    channels_last: str = "auto",
    size: int = 512,
    iters: int = 10,
    warmup: int = 2,
    workers: int | None = 0,
    clock: Clock = time.perf_counter,
) -> ProfileRow:
    """Restore throughput of one method at one batch size and dtype, on the fast path."""
    device = resolve_device(device)
    row = ProfileRow(kind="method", name=name, batch_size=batch_size, dtype=dtype, compile=compile, device=str(device))
    ok, why = dtype_support(device, dtype)
    if not ok:
        row.status, row.note = "skipped", why
        return row
    loader = make_loader(_cycled(pairs, (warmup + iters) * batch_size), batch_size, workers,
                         pin_memory=device.type == "cuda", size=size)
    engine = Engine(device, dtype, compile=compile, channels_last=channels_last)
    with inference_mode(), PeakMemory(device) as mem:
        prepared = engine.prepare(method, batch_size, size)

        def step(batch: LoadedBatch) -> None:
            if batch.names:
                engine.restore(prepared, batch.lq)

        timing = timed_loop(loader, step, device, warmup=warmup, iters=iters, clock=clock)
    row.compile, row.channels_last, row.dtype = prepared.fast.compiled, prepared.fast.channels_last, prepared.dtype
    row.peak_mem_mb, row.mem_kind = mem.peak_bytes / 2**20, mem.kind
    row.note = "; ".join(prepared.notes)
    return summarise(row, timing)


def profile_metric(
    metric: torch.nn.Module,
    name: str,
    pairs: Sequence[Any],
    *,
    batch_size: int,
    device: torch.device | str = "cpu",
    size: int = 512,
    iters: int = 10,
    warmup: int = 2,
    workers: int | None = 0,
    clock: Clock = time.perf_counter,
) -> ProfileRow:
    """``update`` throughput of one metric (predictions: the LQ images; references: the GT images)."""
    device = resolve_device(device)
    row = ProfileRow(kind="metric", name=name, batch_size=batch_size, dtype="fp32", device=str(device))
    needs_gt = bool(getattr(metric, "needs_gt", False))
    if needs_gt and any(getattr(p, "gt_path", None) is None for p in pairs):
        row.status, row.note = "skipped", "needs ground truth; the profiled images have none"
        return row
    metric = metric.to(device)
    loader = make_loader(_cycled(pairs, (warmup + iters) * batch_size), batch_size, workers,
                         pin_memory=device.type == "cuda", need_gt=needs_gt, size=size)

    def step(batch: LoadedBatch) -> None:
        if not batch.names:
            return
        pred = to_device_images(batch.lq, device)
        gt = to_device_images(batch.gt, device) if needs_gt and batch.gt is not None else None
        metric.reset()  # bounded memory: the runner also keeps one batch of state at a time
        metric.update(pred, gt)

    with inference_mode(), PeakMemory(device) as mem:
        timing = timed_loop(loader, step, device, warmup=warmup, iters=iters, clock=clock)
    row.peak_mem_mb, row.mem_kind = mem.peak_bytes / 2**20, mem.kind
    return summarise(row, timing)
