"""Fast inference path: autocast, channels_last, torch.compile with fallback, async copies, sync-free timing.

The runner and the profiler share these so that what ``bfrbench profile`` measures is what a
benchmark run does. Rules they follow: batches come from a pinned-memory DataLoader and move to
the GPU with ``non_blocking=True``; nothing inside a timed loop forces a host sync (no
``.item()``, ``.cpu()`` or ``synchronize``); device time is read from CUDA events once, after
one ``synchronize`` at the end.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


def to_uint8_levels(x: torch.Tensor) -> torch.Tensor:
    """Quantise [0, 1] floats to the nearest of the 256 uint8 levels, kept as float in [0, 1]."""
    return (x.clamp(0, 1) * 255.0).round() / 255.0


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> cuda when a GPU is visible, else cpu; a clear error when cuda is asked for and absent."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        from bench.errors import UserError

        raise UserError("--device cuda asked for, but no CUDA GPU is visible; use --device cpu or auto")
    return torch.device(device)


def dtype_support(device: torch.device, dtype: str) -> tuple[bool, str]:
    """Whether autocast to ``dtype`` makes sense on ``device``, and why not."""
    if dtype not in DTYPES:
        return False, f"unknown dtype {dtype!r} (fp32, fp16 or bf16)"
    if dtype == "fp32":
        return True, ""
    if device.type == "cuda":
        if dtype == "bf16" and not torch.cuda.is_bf16_supported():
            return False, "this GPU has no bf16 support"
        return True, ""
    if device.type == "cpu" and dtype == "bf16":
        return True, ""
    return False, f"{dtype} autocast is not supported on {device.type}; use fp32 (or bf16 on CPU)"


def autocast(device: torch.device, dtype: str) -> contextlib.AbstractContextManager[Any]:
    """Autocast context for ``dtype`` ("fp32" is a no-op); raises ValueError where unsupported."""
    ok, why = dtype_support(device, dtype)
    if not ok:
        raise ValueError(why)
    if dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[dtype])


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work (a no-op on CPU); call only at the ends of a timed region."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def to_device_images(batch_u8: torch.Tensor, device: torch.device, channels_last: bool = False) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float [0, 1] on ``device``: async copy of the small uint8 tensor, convert there."""
    x = batch_u8.to(device, non_blocking=True).float().div_(255.0)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def pinned_loader(dataset: torch.utils.data.Dataset, batch_size: int, workers: int, device: torch.device,
                  collate_fn: Callable | None = None) -> torch.utils.data.DataLoader:
    """In-order DataLoader; pinned host memory when the batches go to a GPU (needed for async copies)."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate_fn,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=2 if workers > 0 else None,
    )


@dataclass
class FastPath:
    """A callable ready for timed use plus what was given up on the way (compile / channels_last fallbacks)."""

    fn: Callable[[torch.Tensor], torch.Tensor]
    channels_last: bool
    compiled: bool
    notes: list[str] = field(default_factory=list)


def prepare_fast_path(
    module: torch.nn.Module,
    example: torch.Tensor,
    *,
    device: torch.device,
    dtype: str = "fp32",
    channels_last: bool = False,
    compile: bool = False,
    compile_mode: str | None = None,
) -> FastPath:
    """Move ``module`` to ``device`` and try the fast options on one example batch, falling back one at a time.

    torch.compile fails lazily (at the first call), and channels_last breaks models that ``.view``
    a non-contiguous tensor; each option is kept only if a real call with it succeeds, and the
    reason for dropping it is recorded in ``notes``.
    """
    module = module.eval().to(device)
    notes: list[str] = []
    # (also undo an earlier call's channels_last: the same module is profiled in several configurations)
    module = module.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    fn: Callable[[torch.Tensor], torch.Tensor] = module
    compiled = False
    if compile:
        try:
            fn = torch.compile(module, mode=compile_mode)
            compiled = True
        except Exception as exc:  # e.g. unsupported Python / platform
            notes.append(f"torch.compile unavailable ({type(exc).__name__}: {_short(exc)}); ran eagerly")
    for _ in range(3):  # at most: compiled+channels_last, eager+channels_last, eager+contiguous
        x = example.to(device)
        x = x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()
        try:
            with torch.no_grad(), autocast(device, dtype):
                fn(x)
            break
        except Exception as exc:
            if compiled:
                notes.append(f"torch.compile failed ({type(exc).__name__}: {_short(exc)}); ran eagerly")
                fn, compiled = module, False
            elif channels_last:
                notes.append(f"channels_last failed ({type(exc).__name__}: {_short(exc)}); used contiguous")
                module = module.to(memory_format=torch.contiguous_format)
                fn, channels_last = module, False
            else:
                raise
    synchronize(device)
    return FastPath(fn=fn, channels_last=channels_last, compiled=compiled, notes=notes)


def _short(exc: BaseException, n: int = 160) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= n else text[: n - 3] + "..."


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


@contextlib.contextmanager
def inference_mode() -> Iterator[None]:
    """no_grad plus cudnn autotuning for fixed-size batches (the benchmark's 512x512 faces)."""
    old = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        with torch.no_grad():
            yield
    finally:
        torch.backends.cudnn.benchmark = old
