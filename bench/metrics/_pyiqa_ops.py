"""The image operations of pyiqa 0.1.16's classic NR metrics, with its arithmetic (float32 steps).

pyiqa's ``brisque``, ``piqe`` and ``niqe`` defaults work on the float32 RGB image: the Y of YIQ by
a 3x3 matmul, ``fspecial`` Gaussians stored as float32, ``sqrt(x + eps)``, shape tables from a
float32 ``arange`` and ``lgamma``, and an ``imresize`` that always runs in float32 (its input
cast tests ``dtype != float32 or dtype != float64``, which is always true). Each operation here
is the same torch operation on the same shapes, so the results equal pyiqa's on one device.

pyiqa's own numbers depend on the thread count: torch splits a float32 reduction over more than
32768 elements (BRISQUE's image-wide means) between threads, which rounds differently, and the
shape-table ``argmin`` turns that into 1e-4 to 1e-3 relative changes. The reference is pyiqa on
the CPU with one thread; :func:`stock_cpu` runs these metrics the same way on every machine.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

#: rows of pyiqa's rgb2yiq matrix (used transposed, as a right factor)
_YIQ = ((0.299, 0.587, 0.114), (0.5959, -0.2746, -0.3213), (0.2115, -0.5227, 0.3112))


@contextlib.contextmanager
def stock_cpu() -> Iterator[None]:
    """One torch intra-op thread for the duration (restored after): pyiqa's single-thread sums."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def uint8_float(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] images to float32 uint8 levels / 255, as pyiqa reads a PNG."""
    return x.float().mul(255.0).round_().clamp_(0.0, 255.0).div_(255.0)


def yiq_y(x: torch.Tensor, data_range: float) -> torch.Tensor:
    """pyiqa ``to_y_channel(x, data_range, 'yiq')``: (B, 3, H, W) -> (B, 1, H, W), rounded if range >= 255."""
    w = torch.tensor(_YIQ).t().to(x)
    y = torch.matmul(x.permute(0, 2, 3, 1), w).permute(0, 3, 1, 2)[:, [0]] * data_range
    return y.round() if data_range >= 255 else y


def fspecial32(size: int, sigma: float) -> torch.Tensor:
    """MATLAB ``fspecial('gaussian')`` computed in float64 and stored as float32 (1, 1, k, k)."""
    m = (size - 1.0) / 2.0
    yy, xx = np.ogrid[-m:m + 1, -m:m + 1]
    h = np.exp(-(xx * xx + yy * yy) / (2.0 * sigma * sigma))
    h[h < np.finfo(h.dtype).eps * h.max()] = 0
    h /= h.sum()
    return torch.from_numpy(h).float().view(1, 1, size, size)


def imfilter(x: torch.Tensor, k: torch.Tensor, padding: str) -> torch.Tensor:
    """Correlation with 'same' output: ``padding`` 'same' (zeros) or 'replicate'."""
    r = k.shape[-1] // 2
    mode = "constant" if padding == "same" else padding
    return F.conv2d(F.pad(x, (r, r, r, r), mode=mode), k)


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(x + torch.finfo(x.dtype).eps)


def mscn(img: torch.Tensor, padding: str) -> torch.Tensor:
    """pyiqa ``normalize_img_with_gauss`` (7x7, sigma 7/6, C = 1)."""
    k = fspecial32(7, 7.0 / 6).to(img)
    mu = imfilter(img, k, padding)
    var = imfilter(img**2, k, padding)
    return (img - mu) / (safe_sqrt((var - mu**2).abs()) + 1)


def _gam(like: torch.Tensor) -> torch.Tensor:
    return torch.arange(0.2, 10 + 0.001, 0.001, dtype=torch.float32).to(like)


def aggd(block: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """pyiqa ``estimate_aggd_param`` of (N, 1, h, w): (alpha, left_std, right_std), each (N,)."""
    gam = _gam(block)
    r_gam = (2 * torch.lgamma(2.0 / gam) - (torch.lgamma(1.0 / gam) + torch.lgamma(3.0 / gam))).exp()
    left, right = block < 0, block > 0
    n_left = left.sum(dim=(-1, -2), dtype=torch.float32)
    n_right = right.sum(dim=(-1, -2), dtype=torch.float32)
    left_std = torch.sqrt((block * left).pow(2).sum(dim=(-1, -2)) / n_left)
    right_std = torch.sqrt((block * right).pow(2).sum(dim=(-1, -2)) / n_right)
    g = left_std / right_std
    rhat = block.abs().mean(dim=(-1, -2)).pow(2) / block.pow(2).mean(dim=(-1, -2))
    rhatnorm = (rhat * (g.pow(3) + 1) * (g + 1)) / (g.pow(2) + 1).pow(2)
    alpha = gam[(r_gam.repeat(block.shape[0], 1) - rhatnorm).abs().argmin(dim=-1)]
    return alpha, left_std.squeeze(-1), right_std.squeeze(-1)


def aggd_beta(alpha: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """beta = std * sqrt(Gamma(1/alpha) / Gamma(3/alpha)), spelled as pyiqa."""
    return std * (torch.lgamma(1 / alpha) - torch.lgamma(3 / alpha)).exp().sqrt()


def ggd(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """pyiqa ``estimate_ggd_param`` of (B, 1, H, W): (alpha, sigma), each (B,)."""
    gam = _gam(x)
    r_table = (torch.lgamma(1.0 / gam) + torch.lgamma(3.0 / gam) - 2 * torch.lgamma(2.0 / gam)).exp()
    sigma_sq = x.pow(2).mean(dim=(-1, -2))
    e = x.abs().mean(dim=(-1, -2))
    rho = sigma_sq / e**2
    alpha = gam[(rho - r_table.repeat(x.size(0), 1)).abs().argmin(dim=-1)]
    return alpha, sigma_sq.sqrt().squeeze(dim=-1)


def _cubic(x: torch.Tensor) -> torch.Tensor:
    """pyiqa's ``cubic_contribution`` (a = -0.5), in its operation order."""
    a = -0.5
    ax = x.abs()
    ax2 = ax * ax
    ax3 = ax * ax2
    in01 = ax.le(1).to(dtype=x.dtype)
    in12 = torch.logical_and(ax.gt(1), ax.le(2)).to(dtype=x.dtype)
    c01 = ((a + 2) * ax3 - (a + 3) * ax2 + 1) * in01
    c12 = ((a * ax3) - (5 * a * ax2) + (8 * a * ax) - (4 * a)) * in12
    return c01 + c12


def _reflect_pad(x: torch.Tensor, dim: int, pre: int, post: int) -> torch.Tensor:
    """MATLAB 'symmetric' padding (edge sample repeated) of (N, 1, H, W) along ``dim`` (-2 or -1)."""
    n = x.shape[dim]
    order = list(reversed(range(pre))) + list(range(n)) + [n - 1 - p for p in range(post)]
    return x.index_select(dim, torch.tensor(order, device=x.device))


def _resize_1d(x: torch.Tensor, dim: int, size: int, scale: float) -> torch.Tensor:
    """pyiqa ``resize_1d`` (cubic, antialiased when shrinking, 'reflect' = MATLAB symmetric)."""
    ksize = 4
    factor = 1.0
    if scale < 1:
        factor = scale
        ksize = math.ceil(ksize / factor)
    ksize += 2
    pos = torch.linspace(0, size - 1, steps=size, dtype=x.dtype, device=x.device)
    pos = (pos + 0.5) / scale - 0.5
    base = pos.floor() - (ksize // 2) + 1
    dist = pos - base
    buf = dist.new_zeros(ksize, len(dist))
    for i in range(ksize):
        buf[i].copy_(dist - i)
    buf *= factor
    weight = _cubic(buf)
    weight /= weight.sum(dim=0, keepdim=True)
    base = base.long()
    lo, hi = int(base.min()), int(base.max()) + ksize - 1
    pre = -lo if lo <= 0 else 0
    base = base + pre
    post = hi - x.size(dim) + 1 if hi >= x.size(dim) else 0
    xp = _reflect_pad(x, dim, pre, post)
    if dim == -2:
        unfold = F.unfold(xp, (ksize, 1))
        unfold = unfold.view(unfold.size(0), -1, xp.size(-2) - ksize + 1, xp.size(-1))
        sample = unfold[..., base, :]
        weight = weight.view(1, ksize, sample.size(2), 1)
    else:
        unfold = F.unfold(xp, (1, ksize))
        unfold = unfold.view(unfold.size(0), -1, xp.size(-2), xp.size(-1) - ksize + 1)
        sample = unfold[..., base]
        weight = weight.view(1, ksize, 1, sample.size(3))
    return (sample * weight).sum(dim=1, keepdim=True)


def imresize_half(x: torch.Tensor) -> torch.Tensor:
    """pyiqa ``imresize(x, scale=0.5, antialiasing=True)`` of (B, C, H, W): float32 inside, input dtype out."""
    b, c, h, w = x.shape
    dtype = x.dtype
    y = x.reshape(-1, 1, h, w).float()
    y = _resize_1d(y, -2, math.ceil(h * 0.5), 0.5)
    y = _resize_1d(y, -1, math.ceil(w * 0.5), 0.5)
    return y.view(b, c, y.size(-2), y.size(-1)).to(dtype)


__all__ = ["stock_cpu", "uint8_float", "yiq_y", "fspecial32", "imfilter", "safe_sqrt", "mscn", "aggd", "aggd_beta", "ggd",
           "imresize_half"]
