"""NIQE with the arithmetic of BasicSR 1.4.2's ``calculate_niqe`` as shipped (float32 steps), per image.

BasicSR works on a float32 numpy image: scipy ``convolve`` (computed in double, stored as float32),
float32 MSCN, per 96x96 block float32 means (numpy's pairwise summation), the shape parameter
from the table ``gam = 0.2:0.001:10`` by ``argmin`` of the squared distance, and the half-scale
image from its torch float32 MATLAB ``imresize`` (one ``mv`` per output row and column). The
Gaussian fit and distance run in float64 numpy. Each of these steps is repeated here with the
same libraries and the same operation order, so the result equals BasicSR's to the last bits
on one machine (the tests allow 1e-5 relative).
"""
from __future__ import annotations

import math
import warnings
from functools import lru_cache

import numpy as np
import torch
from scipy.ndimage import convolve
from scipy.special import gamma

BLOCK = 96
#: np.roll shifts of the paired products (rows, cols)
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


@lru_cache(maxsize=1)
def _gam_table() -> tuple[np.ndarray, np.ndarray]:
    """(gam, r_gam): the shape grid and its moment ratio, spelled as BasicSR computes them."""
    gam = np.arange(0.2, 10.001, 0.001)
    inv = np.reciprocal(gam)
    return gam, np.square(gamma(inv * 2)) / (gamma(inv) * gamma(inv * 3))


def _aggd(block: np.ndarray) -> tuple[float, float, float]:
    """(alpha, beta_l, beta_r) of a float32 block, numpy float32 statistics as BasicSR."""
    x = block.reshape(-1)
    left_std = np.sqrt(np.mean(x[x < 0] ** 2))
    right_std = np.sqrt(np.mean(x[x > 0] ** 2))
    ratio = left_std / right_std
    rhat = np.mean(np.abs(x)) ** 2 / np.mean(x**2)
    rhatnorm = (rhat * (ratio**3 + 1) * (ratio + 1)) / ((ratio**2 + 1) ** 2)
    gam, r_gam = _gam_table()
    alpha = gam[np.argmin((r_gam - rhatnorm) ** 2)]
    scale = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return alpha, left_std * scale, right_std * scale


def _block_features(block: np.ndarray) -> list[float]:
    """The 18 features of one MSCN block."""
    alpha, beta_l, beta_r = _aggd(block)
    feats = [alpha, (beta_l + beta_r) / 2]
    for shift in _SHIFTS:
        alpha, beta_l, beta_r = _aggd(block * np.roll(block, shift, axis=(0, 1)))
        feats += [alpha, (beta_r - beta_l) * (gamma(2 / alpha) / gamma(1 / alpha)), beta_l, beta_r]
    return feats


def _resize_weights(in_len: int, out_len: int, scale: float) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """MATLAB bicubic contributions in torch float32 (antialiased shrink): weights, first index, pads."""
    width = 4.0 / scale if scale < 1 else 4.0
    x = torch.linspace(1, out_len, out_len)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - width / 2)
    p = math.ceil(width) + 2
    idx = left.view(-1, 1).expand(out_len, p) + torch.linspace(0, p - 1, p).view(1, p).expand(out_len, p)
    d = u.view(-1, 1).expand(out_len, p) - idx
    if scale < 1:
        d = d * scale
    a = d.abs()
    a2, a3 = a**2, a**3
    w = (1.5 * a3 - 2.5 * a2 + 1) * (a <= 1).type_as(a) + (-0.5 * a3 + 2.5 * a2 - 4 * a + 2) * (
        ((a > 1) * (a <= 2)).type_as(a))
    if scale < 1:
        w = scale * w
    w = w / torch.sum(w, 1).view(out_len, 1).expand(out_len, p)
    zeros = torch.sum(w == 0, 0)
    if not math.isclose(zeros[0], 0, rel_tol=1e-6):
        idx, w = idx.narrow(1, 1, p - 2), w.narrow(1, 1, p - 2)
    if not math.isclose(zeros[-1], 0, rel_tol=1e-6):
        idx, w = idx.narrow(1, 0, p - 2), w.narrow(1, 0, p - 2)
    pad_s = int(-idx.min() + 1)
    pad_e = int(idx.max() - in_len)
    return w.contiguous(), (idx[:, 0] + pad_s - 1).long(), pad_s, pad_e


def _sym_pad(x: torch.Tensor, dim: int, pad_s: int, pad_e: int) -> torch.Tensor:
    """Mirror ``pad_s`` / ``pad_e`` entries (edge included) onto each end of ``dim``."""
    parts = [x.narrow(dim, 0, pad_s).flip(dim)] if pad_s > 0 else []
    parts.append(x)
    if pad_e > 0:
        parts.append(x.narrow(dim, x.shape[dim] - pad_e, pad_e).flip(dim))
    return torch.cat(parts, dim)


@torch.no_grad()
def imresize_half(img: np.ndarray) -> np.ndarray:
    """BasicSR's ``imresize(img, 0.5)`` of a 2-D float32 array, as its torch float32 loops compute it."""
    h, w = img.shape
    oh, ow = math.ceil(h * 0.5), math.ceil(w * 0.5)
    x = torch.from_numpy(np.ascontiguousarray(img)).float()
    wh, ih, hs, he = _resize_weights(h, oh, 0.5)
    ww, iw, ws, we = _resize_weights(w, ow, 0.5)
    xa = _sym_pad(x, 0, hs, he)
    k = wh.shape[1]
    rows = torch.empty(oh, w)
    for i in range(oh):
        rows[i, :] = xa[int(ih[i]):int(ih[i]) + k, :].transpose(0, 1).mv(wh[i])
    ra = _sym_pad(rows, 1, ws, we)
    k = ww.shape[1]
    out = torch.empty(oh, ow)
    for i in range(ow):
        out[:, i] = ra[:, int(iw[i]):int(iw[i]) + k].mv(ww[i])
    return out.numpy()


def niqe_basicsr(y: np.ndarray, mu_pris: np.ndarray, cov_pris: np.ndarray, window: np.ndarray) -> float:
    """NIQE of a 2-D float32 Y image (integer values, 0-255), BasicSR's ``niqe()`` arithmetic."""
    y = np.asarray(y, dtype=np.float32)
    nh, nw = y.shape[0] // BLOCK, y.shape[1] // BLOCK
    if nh * nw < 2:
        raise ValueError(f"NIQE needs at least two {BLOCK}x{BLOCK} blocks; the image is {y.shape[0]}x{y.shape[1]}")
    img = y[: nh * BLOCK, : nw * BLOCK]
    parts = []
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # flat blocks: empty means, as in BasicSR
        for scale in (1, 2):
            mu = convolve(img, window, mode="nearest")
            sigma = np.sqrt(np.abs(convolve(np.square(img), window, mode="nearest") - np.square(mu)))
            mscn = (img - mu) / (sigma + 1)
            b = BLOCK // scale
            parts.append(np.array([_block_features(mscn[r * b:(r + 1) * b, c * b:(c + 1) * b])
                                   for c in range(nw) for r in range(nh)]))
            if scale == 1:
                img = imresize_half(img / 255.0) * 255.0
        feats = np.concatenate(parts, axis=1)
        mu_d = np.nanmean(feats, axis=0)
        cov_d = np.cov(feats[~np.isnan(feats).any(axis=1)], rowvar=False)
    diff = mu_pris - mu_d
    quality = np.matmul(np.matmul(diff, np.linalg.pinv((cov_pris + cov_d) / 2)), np.transpose(diff))
    return float(np.squeeze(np.sqrt(quality)))


__all__ = ["niqe_basicsr", "imresize_half", "BLOCK"]
