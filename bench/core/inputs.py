"""The image-tensor contract of the Python API: float (B, 3, H, W) in [0, 1], checked with a clear error.

Methods and metrics built with :func:`bench.create_method` / :func:`bench.create_metric` check
what they are given (a uint8 or 0-255 tensor would otherwise give an all-white image or a
59.8 dB PSNR without a word); the runner's own instances skip the check (their inputs are made
by the loader).
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

#: slack for values just outside [0, 1] (resampling overshoot of a float pipeline)
TOLERANCE = 1e-3


class ImageTensorError(ValueError):
    """An image tensor that breaks the API's contract; the message says what was given and the fix."""


def check_unit_images(x: Any, what: str) -> None:
    """Raise :class:`ImageTensorError` unless ``x`` is a float (B, 3, H, W) tensor with values in [0, 1]."""
    if not isinstance(x, torch.Tensor):
        raise ImageTensorError(f"{what}: expected a torch.Tensor (B, 3, H, W) in [0, 1], got {type(x).__name__}")
    if not x.is_floating_point():
        raise ImageTensorError(
            f"{what}: got a {x.dtype} tensor; bfrbench takes float images in [0, 1]: pass x.float() / 255")
    if x.ndim != 4 or x.shape[1] != 3:
        raise ImageTensorError(f"{what}: expected RGB images (B, 3, H, W), got shape {tuple(x.shape)}")
    if x.numel() == 0:
        return
    lo, hi = (float(v) for v in torch.aminmax(x.detach()))
    if lo < -TOLERANCE or hi > 1 + TOLERANCE:
        hint = "it looks like 0-255 values: divide by 255" if hi > 1.5 else "clamp it to [0, 1]"
        raise ImageTensorError(f"{what}: values lie in [{lo:.4g}, {hi:.4g}], outside [0, 1]; {hint}")


def checked(fn: Callable[..., Any], label: str, n_images: int) -> Callable[..., Any]:
    """Wrap a method's ``restore`` (n_images=1) or a metric's ``update`` (2): check tensors when asked to.

    The check runs only on instances whose ``check_inputs`` is True (those the public API builds).
    """

    @functools.wraps(fn)
    def wrapper(self, *args: Any, **kwargs: Any) -> Any:
        if getattr(self, "check_inputs", False):
            for i, x in enumerate(args[:n_images]):
                if x is not None:
                    check_unit_images(x, f"{getattr(self, 'name', '') or type(self).__name__}.{label} "
                                         f"{('input', 'reference')[i] if n_images > 1 else 'input'}")
        return fn(self, *args, **kwargs)

    wrapper.__bfrbench_checked__ = True  # type: ignore[attr-defined]
    return wrapper
