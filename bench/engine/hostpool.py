"""CPU-bound metrics (``runs_on_host``) scored in worker processes, off the device path.

The batch's uint8 outputs are copied to the host once; each worker scores one of ``min(workers, n)``
near-equal slices of the batch with its own copy of the metric (sent once at worker start; workers
come from a forkserver, so they inherit no CUDA context or thread pools), image values coming from
:meth:`bench.metrics.base.Metric.update_isolated` exactly as in the serial path, so per-image values
and errors never depend on the batch or pool size. Every worker is single-threaded (torch, OpenCV,
OpenMP/BLAS): one process per core, no oversubscription. The caller submits before the device
metrics run and collects after (or, in the runner, after the next batch's device work), so both overlap.
"""
from __future__ import annotations

import ast
import contextlib
import copy
import ctypes
import multiprocessing as mp
import os
import select
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import forkserver
from pathlib import Path
from typing import Any

import torch

#: the metrics a worker scores with (set in each worker at start, from the pickled initargs)
_WORKER_METRICS: dict[str, Any] = {}

#: thread-count variables set to 1 for the forkserver (so OpenMP/BLAS pools start with one thread in every worker)
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS")


def slices(n: int, parts: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of ``min(parts, n)`` consecutive slices of ``n`` items, sizes differing by at most one."""
    k = min(max(1, int(parts)), n)
    if k <= 0:
        return []
    size, extra = divmod(n, k)
    out, start = [], 0
    for i in range(k):
        stop = start + size + (1 if i < extra else 0)
        out.append((start, stop))
        start = stop
    return out


def _is_main_guard(node: ast.AST) -> bool:
    """``if __name__ == "__main__":`` (either order)."""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare) or len(node.test.ops) != 1:
        return False
    sides = [node.test.left, node.test.comparators[0]]
    return (isinstance(node.test.ops[0], ast.Eq) and any(isinstance(x, ast.Name) and x.id == "__name__" for x in sides)
            and any(isinstance(x, ast.Constant) and x.value == "__main__" for x in sides))


def unguarded_main() -> str:
    """Why worker processes must not start now ("" when they may).

    The forkserver (as spawn) runs the main script again in its processes, as ``__mp_main__``.
    When this call comes from the script's own top-level code outside an
    ``if __name__ == "__main__":`` block, that re-run would call it again and wait on this
    process forever (a deadlock): the caller then scores in this process instead.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    frame = sys._getframe(1)
    while frame is not None and not (main is not None and frame.f_globals is vars(main)
                                     and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    if frame is None or not path:
        return ""
    line = frame.f_lineno
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return ""  # a main the workers could not re-run either
    for node in tree.body:
        if node.lineno <= line <= (node.end_lineno or node.lineno):
            if _is_main_guard(node) and any(b.lineno <= line <= (b.end_lineno or b.lineno) for b in node.body):
                return ""
            break
    return (f"{path}, line {line}, runs bfrbench from top-level code without an "
            "'if __name__ == \"__main__\":' block; worker processes would run it again and wait forever")


def default_workers(loader_workers: int = 0) -> int:
    """Host-pool processes for this machine: the usable cores less the loader's workers and the main process."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        cores = os.cpu_count() or 1
    return max(1, cores - int(loader_workers or 0) - 1)


@contextlib.contextmanager
def single_threaded_env() -> Iterator[None]:
    """:data:`THREAD_ENV` set to 1 inside the block (a process started there inherits it), restored after."""
    saved = {k: os.environ.get(k) for k in THREAD_ENV}
    os.environ.update({k: "1" for k in THREAD_ENV})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _openblas_libs() -> list[tuple[str, Any, Any]]:
    """The OpenBLAS builds loaded in this process (numpy's, OpenCV's...): (file, get_num_threads, set_num_threads)."""
    found = []
    try:
        with open("/proc/self/maps") as fh:
            paths = sorted({line.split()[-1] for line in fh if "openblas" in line.rsplit("/", 1)[-1].lower()})
    except OSError:  # pragma: no cover - non-Linux
        return found
    for path in paths:
        try:
            lib = ctypes.CDLL(path)  # already loaded: the same handle
        except OSError:  # pragma: no cover
            continue
        for prefix, suffix in (("openblas", ""), ("scipy_openblas", "64_"), ("scipy_openblas", ""),
                               ("openblas", "64_")):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                found.append((os.path.basename(path), get, put))
                break
    return found


def _pin_threads() -> None:
    """One thread for every pool this worker may use: torch (intra- and inter-op), OpenCV, loaded OpenBLAS."""
    os.environ.update({k: "1" for k in THREAD_ENV})  # for libraries loaded later
    torch.set_num_threads(1)  # also the serial path's exact single-thread arithmetic
    with contextlib.suppress(RuntimeError):  # only allowed before any inter-op work
        torch.set_num_interop_threads(1)
    with contextlib.suppress(ImportError):
        import cv2

        cv2.setNumThreads(1)
    for _name, _get, put in _openblas_libs():  # loaded before the env could matter (forkserver started earlier)
        put(1)


def thread_report() -> dict[str, Any]:
    """This process's id and thread counts: torch intra/inter-op, OpenCV, each loaded OpenBLAS, and :data:`THREAD_ENV`."""
    import cv2
    import numpy  # noqa: F401 - so its OpenBLAS is loaded and reported

    return {"pid": os.getpid(), "torch": torch.get_num_threads(), "torch_interop": torch.get_num_interop_threads(),
            "cv2": cv2.getNumThreads(), "openblas": {name: int(get()) for name, get, _ in _openblas_libs()},
            "env": {k: os.environ.get(k) for k in THREAD_ENV}}


def _exit_with(pid: int) -> None:
    """Exit this worker when process ``pid`` (the pool's owner) ends: a SIGKILLed run leaves no orphan workers.

    Orphans would otherwise wait on the pool's queue forever, keeping the forkserver alive too.
    """
    try:
        fd = os.pidfd_open(pid)  # Linux >= 5.3: readable once the process has ended, no pid reuse race
    except ProcessLookupError:
        os._exit(0)
    except (AttributeError, OSError):  # pragma: no cover - no pidfd: poll the pid
        fd = None

    def watch() -> None:
        if fd is not None:
            select.select([fd], [], [])
        else:  # pragma: no cover
            while True:
                time.sleep(1.0)
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                except PermissionError:
                    pass
        os._exit(0)

    threading.Thread(target=watch, name="hostpool-owner-watch", daemon=True).start()


def _init(metrics: dict[str, Any], owner: int) -> None:
    global _WORKER_METRICS
    _exit_with(owner)
    _pin_threads()
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
        self._cpu = {n: _on_cpu(m) for n, m in metrics.items()}
        self._scratch: dict[str, Any] = {}
        # the forkserver (one per process) starts now if not yet running, its BLAS/OpenMP env at one thread;
        # the workers' initializer pins the thread pools again in case it was started earlier without it
        with single_threaded_env():
            forkserver.ensure_running()
        self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("forkserver"), initializer=_init,
                                         initargs=(self._cpu, os.getpid()))

    def submit(self, name: str, u8: torch.Tensor) -> list[tuple[int, Future]]:
        """Score metric ``name`` on a host uint8 batch (B, 3, H, W), split into ``min(workers, B)`` even slices."""
        return [(a, self._pool.submit(_score, name, u8[a:b].clone())) for a, b in slices(u8.shape[0], self.workers)]

    def collect(self, name: str, jobs: list[tuple[int, Future]], into: Any = None
                ) -> tuple[torch.Tensor | None, dict[int, str], dict[str, torch.Tensor] | None]:
        """Wait for a batch's slices: (per-image values, {index: error}, the batch's state or None).

        The slices' states are folded into ``into`` (the run's metric instance; None is returned as
        the state), or, without it, into a fresh copy whose state (this batch's alone) is returned.
        """
        target = into
        if target is None:
            if name not in self._scratch:
                self._scratch[name] = copy.deepcopy(self._cpu[name])  # never the caller's instance
            target = self._scratch[name]
            target.reset()
        parts, errors = [], {}
        for start, fut in jobs:
            values, errs, state = fut.result()
            target.merge_state(state)
            errors.update({start + i: why for i, why in errs.items()})
            if values is not None:
                parts.append(values)
        values = torch.cat(parts).to(torch.float64) if parts and target.per_image else None
        return values, errors, (None if into is not None else target.state())

    def thread_report(self) -> dict[str, Any]:
        """:func:`thread_report` as seen in one of the pool's workers."""
        return self._pool.submit(thread_report).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def score_serially(metric: Any, out: torch.Tensor) -> tuple[torch.Tensor | None, dict[int, str], dict[str, Any]]:
    """What a pool's workers return for a whole batch, computed in this process (a broken pool's batch).

    ``out`` is the batch at uint8 levels (any device); the metric scores a CPU copy of itself,
    reset, so ``metric`` is untouched: (per-image values, {index: error}, the batch's state).
    """
    work = _on_cpu(metric)
    if work is metric:
        work = copy.deepcopy(metric)
    work.reset()
    x = out.detach().mul(255.0).round_().to(torch.uint8).cpu().float().div_(255.0)
    values, errors = work.update_isolated(x, None)
    values = values.detach().cpu().to(torch.float64) if values is not None and work.per_image else None
    return values, errors, work.state()


def _on_cpu(metric: Any) -> Any:
    """A CPU copy of ``metric`` for the workers (the main process's instance stays where it is)."""
    try:
        device = next(iter(metric.buffers())).device
    except StopIteration:
        device = torch.device("cpu")
    return metric if device.type == "cpu" else copy.deepcopy(metric).to("cpu")
