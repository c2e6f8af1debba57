"""Honest sizes: metrics compare a method's output with the benchmark at the benchmark's size.

A method declares ``output_size`` (512 for the released networks; a tiny trained checkpoint gives
64). When it differs from the benchmark's size, the output is resized to it with
:data:`COMPARE_INTERPOLATION` (bicubic, as BasicSR's ``imresize`` family and the papers' resizing
scripts; antialiased when shrinking) and quantised again, and the run records that it did.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from bench.core.device import to_uint8_levels

#: the protocol's interpolation for outputs of another size than the benchmark's
COMPARE_INTERPOLATION = "bicubic"


def declared_output_size(method: Any) -> int | None:
    """The side a method says its outputs have (None: it does not say, e.g. a folder of saved outputs)."""
    size = getattr(method, "output_size", None)
    return int(size) if isinstance(size, int) and size > 0 else None


def size_record(method: Any, benchmark_size: int) -> dict[str, Any]:
    """What the manifest records about a method's output size and the size its outputs are compared at."""
    out = declared_output_size(method)
    resized = out is not None and out != benchmark_size
    return {"output_size": out, "compared_at": benchmark_size,
            "resize": f"{out} -> {benchmark_size} {COMPARE_INTERPOLATION}" if resized else None}


def to_benchmark_size(out: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 3, h, w) outputs at uint8 levels -> (B, 3, size, size) at uint8 levels (unchanged when already so)."""
    if tuple(out.shape[-2:]) == (size, size):
        return out
    shrink = out.shape[-1] > size or out.shape[-2] > size
    resized = F.interpolate(out.float(), size=(size, size), mode=COMPARE_INTERPOLATION, align_corners=False,
                            antialias=shrink)
    return to_uint8_levels(resized)
