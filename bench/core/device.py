"""The device and precision policy, in one place: device resolution, dtypes, autocast, uint8 quantisation,
async copies, channels_last and torch.compile with fallback.

``run``, ``profile`` and ``restore`` all go through these (via :mod:`bench.engine.step`), so what
``bfrbench profile`` measures is what a benchmark run does. Batches move to the GPU with
``non_blocking=True`` from pinned memory; nothing here forces a host sync except
:func:`synchronize`, called only at the ends of a timed region.
"""
from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

#: the one map of dtype names (the engine's ``--dtype``, the one precision knob) to torch dtypes
DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats as uint8 (nearest level, clamped): what a paper's script saves (``tensor2img``)."""
    return (x.clamp(0, 1) * 255.0).round().to(torch.uint8)


def to_uint8_levels(x: torch.Tensor) -> torch.Tensor:
    """Quantise [0, 1] floats to the nearest of the 256 uint8 levels, kept as float in [0, 1] (the one rounding rule)."""
    return (x.clamp(0, 1) * 255.0).round() / 255.0


def method_dtype(method: Any, dtype: str) -> str:
    """The dtype a method runs in: the engine's ``--dtype``, unless the method says it needs fp32 (``needs_fp32``)."""
    return "fp32" if getattr(method, "needs_fp32", False) else dtype


def run_dtype(device: torch.device, dtype: str) -> str:
    """The dtype ``bfrbench run`` restores in: ``--dtype`` on a GPU, fp32 on the CPU (recorded in each unit's key)."""
    return dtype if device.type == "cuda" else "fp32"


def use_channels_last(setting: str | bool, device: torch.device) -> bool:
    """``auto`` -> on for CUDA only; ``on``/``off`` (or a bool) as given."""
    if isinstance(setting, bool):
        return setting
    if setting not in ("auto", "on", "off"):
        raise ValueError(f"channels_last must be auto, on or off, not {setting!r}")
    return setting == "on" or (setting == "auto" and device.type == "cuda")


def set_memory_format(module: torch.nn.Module, channels_last: bool) -> int:
    """Put every rank-4 parameter and buffer of ``module`` in channels_last (or back to contiguous).

    Tensors of another rank (e.g. GFPGAN's rank-5 modulated-conv weights, on which
    ``module.to(memory_format=...)`` raises) are left as they are; returns how many were skipped.
    """
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    skipped = 0
    for t in itertools.chain(module.parameters(), module.buffers()):
        if t.dim() == 4:
            t.data = t.data.contiguous(memory_format=fmt)
        elif t.dim() > 4:
            skipped += 1
    return skipped


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> cuda when a GPU is visible, else cpu; a clear error for a device this machine lacks."""
    from bench.core.errors import UserError

    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but no CUDA GPU is visible; use --device cpu or auto")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise UserError(f"--device {device!r}: not a device; use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise UserError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA GPU(s) "
                        f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    return resolved


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
    skipped = set_memory_format(module, channels_last)
    if channels_last and skipped:
        notes.append(f"channels_last: {skipped} tensor(s) of rank 5+ left as they are")
    fn: Callable[[torch.Tensor], torch.Tensor] = module
    compiled = False
    if not compile and not channels_last:
        return FastPath(fn=fn, channels_last=False, compiled=False, notes=notes)  # nothing to try out
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
                set_memory_format(module, False)
                fn, channels_last = module, False
            else:  # fails as it is too: the real batches will report it (one batch at a time)
                notes.append(f"trial call failed ({type(exc).__name__}: {_short(exc)})")
                break
    synchronize(device)
    return FastPath(fn=fn, channels_last=channels_last, compiled=compiled, notes=notes)


def _short(exc: BaseException, n: int = 160) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= n else text[: n - 3] + "..."


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
