"""MATLAB image functions that the classic NR metrics were calibrated with.

``imresize`` is MATLAB's bicubic ``imresize`` (Keys a = -0.5, antialiasing when shrinking,
symmetric borders), computed as two dense resampling matrices so a batch resizes with two
matmuls on the device, in the input's dtype (float64 here: MATLAB computes in double).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic kernel with a = -0.5, as MATLAB's imresize."""
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


@lru_cache(maxsize=64)
def resize_matrix(in_len: int, out_len: int, scale: float, antialias: bool = True) -> np.ndarray:
    """The (out_len, in_len) matrix of MATLAB imresize's 'contributions' for one dimension."""
    kernel_width = 4.0
    shrink_aa = scale < 1 and antialias
    if shrink_aa:
        kernel_width /= scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    p = int(math.ceil(kernel_width)) + 2
    idx = left[:, None] + np.arange(p, dtype=np.float64)[None, :]
    dist = u[:, None] - idx
    w = scale * _cubic(dist * scale) if shrink_aa else _cubic(dist)
    w = w / w.sum(axis=1, keepdims=True)
    # symmetric border: MATLAB's aux = [1:in, in:-1:1] indexing
    aux = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])
    cols = aux[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    mat = np.zeros((out_len, in_len), dtype=np.float64)
    np.add.at(mat, (np.repeat(np.arange(out_len), p), cols.ravel()), w.ravel())
    return mat


def imresize(x: torch.Tensor, scale: float, antialias: bool = True) -> torch.Tensor:
    """MATLAB ``imresize(x, scale)`` (bicubic) of (..., H, W) tensors; output ceil(H*scale) x ceil(W*scale)."""
    h, w = x.shape[-2:]
    oh, ow = math.ceil(h * scale), math.ceil(w * scale)
    mh = torch.from_numpy(resize_matrix(h, oh, float(scale), antialias)).to(device=x.device, dtype=x.dtype)
    mw = torch.from_numpy(resize_matrix(w, ow, float(scale), antialias)).to(device=x.device, dtype=x.dtype)
    return mh @ x @ mw.T


def fspecial_gaussian(size: int, sigma: float) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', size, sigma)`` (normalised to sum 1)."""
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma * sigma))
    g[g < np.finfo(np.float64).eps * g.max()] = 0
    return g / g.sum()


def filter_same(x: torch.Tensor, window: torch.Tensor, padding: str) -> torch.Tensor:
    """Correlate (N, 1, H, W) with an odd square window, output the same size.

    ``padding='replicate'`` is scipy ``convolve(mode='nearest')`` / MATLAB ``imfilter(...,
    'replicate')``; ``'zeros'`` is MATLAB ``filter2(..., 'same')``. Windows here are symmetric,
    so correlation equals convolution.
    """
    k = window.shape[-1]
    r = k // 2
    w = window.to(device=x.device, dtype=x.dtype).view(1, 1, k, k)
    if padding == "replicate":
        return F.conv2d(F.pad(x, (r, r, r, r), mode="replicate"), w)
    if padding == "zeros":
        return F.conv2d(x, w, padding=r)
    raise ValueError(f"padding must be 'replicate' or 'zeros', not {padding!r}")
