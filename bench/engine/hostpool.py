"""CPU-bound metrics (``runs_on_host``) scored in worker processes, off the device path.

The batch's uint8 outputs are copied to the host once; each worker scores a slice of the batch
with its own copy of the metric (sent once at worker start; workers come from a forkserver, so they
inherit no CUDA context or thread pools; one torch thread, as the serial path pins),
image values coming from :meth:`bench.metrics.base.Metric.update_isolated` exactly as in the
serial path, so per-image values and errors never depend on the batch or pool size. The
caller submits before the device metrics run and collects after, so both overlap.
"""
from __future__ import annotations

import math
import multiprocessing as mp
import os
from collections.abc import Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import torch

#: the metrics a worker scores with (set in each worker at start, from the pickled initargs)
_WORKER_METRICS: dict[str, Any] = {}


def default_workers(loader_workers: int = 0) -> int:
    """Host-pool processes for this machine: the usable cores less the loader's workers and the main process."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        cores = os.cpu_count() or 1
    return max(1, cores - int(loader_workers or 0) - 1)


def _init(metrics: dict[str, Any]) -> None:
    global _WORKER_METRICS
    torch.set_num_threads(1)  # the serial path's exact single-thread arithmetic
    _WORKER_METRICS = metrics


def _score(name: str, u8: torch.Tensor) -> tuple[torch.Tensor | None, dict[int, str], dict[str, torch.Tensor]]:
    """One slice of a batch: (per-image values, {index in slice: error}, the slice's metric state)."""
    m = _WORKER_METRICS[name]
    m.reset()
    x = u8.float().div_(255.0)  # the same float levels as the engine's to_uint8_levels output
    values, errors = m.update_isolated(x, None)
    return (values.detach().cpu() if values is not None else None), errors, m.state()


class HostPool:
    """A process pool scoring host metrics; ``submit`` a batch, then ``collect`` into the main metrics."""

    def __init__(self, metrics: Mapping[str, Any], workers: int) -> None:
        self.names = tuple(metrics)
        self.workers = max(1, int(workers))
        cpu = {n: _on_cpu(m) for n, m in metrics.items()}
        self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("forkserver"), initializer=_init,
                                         initargs=(cpu,))

    def submit(self, name: str, u8: torch.Tensor) -> list[tuple[int, Future]]:
        """Score metric ``name`` on a host uint8 batch (B, 3, H, W), split into up to ``workers`` slices."""
        n = u8.shape[0]
        step = max(1, math.ceil(n / self.workers))
        return [(i, self._pool.submit(_score, name, u8[i:i + step].clone())) for i in range(0, n, step)]

    @staticmethod
    def collect(metric: Any, jobs: list[tuple[int, Future]]) -> tuple[torch.Tensor | None, dict[int, str]]:
        """Wait for a batch's slices; fold their states into ``metric``: (per-image values, {index: error})."""
        parts, errors = [], {}
        for start, fut in jobs:
            values, errs, state = fut.result()
            metric.merge_state(state)
            errors.update({start + i: why for i, why in errs.items()})
            if values is not None:
                parts.append(values)
        values = torch.cat(parts).to(torch.float64) if parts and metric.per_image else None
        return values, errors

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _on_cpu(metric: Any) -> Any:
    """A CPU copy of ``metric`` for the workers (the main process's instance stays where it is)."""
    import copy

    try:
        device = next(iter(metric.buffers())).device
    except StopIteration:
        device = torch.device("cpu")
    return metric if device.type == "cpu" else copy.deepcopy(metric).to("cpu")
