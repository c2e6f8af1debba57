"""The image contract of the Python API: float (B, 3, H, W) in [0, 1], checked with a clear error.

Methods and metrics built with :func:`bench.create_method` / :func:`bench.create_metric` take what
pyiqa takes (a path, a PIL image, a numpy HxWx3 uint8 array, a CHW or BCHW float tensor), turn it
into that batch with :func:`as_batch`, and check it (a uint8 or 0-255 tensor would otherwise give
an all-white image or a 59.8 dB PSNR without a word); the runner's own instances skip both (their
inputs are made by the loader).
"""
from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

#: slack for values just outside [0, 1] (resampling overshoot of a float pipeline)
TOLERANCE = 1e-3


class ImageTensorError(ValueError):
    """An image tensor that breaks the API's contract; the message says what was given and the fix."""


def uint8_to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 RGB -> (1, 3, H, W) float32 in [0, 1] (exact multiples of 1/255, as the loader makes)."""
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        got = f"{rgb.dtype} {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise ImageTensorError(f"expected an HxWx3 uint8 RGB array, got {got}")
    if not rgb.flags.writeable:  # PIL's array view: torch wants memory it may own
        rgb = rgb.copy()
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).unsqueeze(0).float() / 255.0


def load_image(path: str | os.PathLike[str]) -> torch.Tensor:
    """A file as the runner reads it (OpenCV decoding, grey/RGBA/16-bit converted): (1, 3, H, W) float in [0, 1]."""
    from bench.core.imageio import read_image

    return uint8_to_tensor(read_image(path).rgb)


def _is_pil(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "PIL" and hasattr(x, "convert")


def as_batch(x: Any, what: str = "image") -> Any:
    """What pyiqa takes -> a float (B, 3, H, W) batch in [0, 1]; other values are returned unchanged.

    A path is read with :func:`load_image`, a PIL image converted to RGB, a numpy HxWx3 uint8 array
    (RGB, as PIL and imageio give it) scaled by 1/255, a CHW tensor given a batch dimension.
    """
    if isinstance(x, (str, os.PathLike)):
        return load_image(x)
    if _is_pil(x):
        return uint8_to_tensor(np.asarray(x.convert("RGB")))
    if isinstance(x, np.ndarray):
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[2] != 3:
            raise ImageTensorError(f"{what}: expected a numpy HxWx3 uint8 RGB array, got {x.dtype} {x.shape}; "
                                   "pass a path, a PIL image or a float tensor (B, 3, H, W) in [0, 1]")
        return uint8_to_tensor(x)
    if isinstance(x, torch.Tensor) and x.ndim == 3 and x.shape[0] == 3:
        return x.unsqueeze(0)
    return x


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
            args = list(args)
            for i, x in enumerate(args[:n_images]):
                if x is not None:
                    what = (f"{getattr(self, 'name', '') or type(self).__name__}.{label} "
                            f"{('input', 'reference')[i] if n_images > 1 else 'input'}")
                    batch = as_batch(x, what)
                    if batch is not x and not isinstance(x, torch.Tensor):
                        batch = batch.to(_device_of(self))
                    check_unit_images(batch, what)
                    args[i] = batch
        return fn(self, *args, **kwargs)

    wrapper.__bfrbench_checked__ = True  # type: ignore[attr-defined]
    return wrapper


def _device_of(module: Any) -> torch.device:
    """Where a module's inputs go: its ``device`` attribute, else its first parameter's, else the CPU."""
    device = getattr(module, "device", None)
    if isinstance(device, (torch.device, str)):
        return torch.device(device)
    for p in module.parameters() if hasattr(module, "parameters") else ():
        return p.device
    return torch.device("cpu")
