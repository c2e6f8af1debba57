"""PIQE (Venkatanath et al., NCC 2015), as pyiqa's ``piqe`` (default) and MATLAB's ``piqe`` compute it.

No model: the grey image (Y of YIQ) is scaled to 0-255 by its maximum and rounded, MSCN
coefficients are taken with a 7x7 Gaussian (sigma 7/6, replicate border, C = 1), and the
image is cut into 16x16 blocks. Blocks with MSCN variance > 0.1 are "active"; an active block
counts as distorted when a 6-pixel segment of one of its edges is nearly flat (std < 0.1:
blockiness) or when the centre/surround deviation test finds noise. The score is
``100 * (sum of distortion weights + 1) / (active blocks + 1)``: 0 is best, 100 worst.

The default protocol is pyiqa 0.1.16's ``piqe`` with its arithmetic (:func:`piqe_pyiqa`): float32
throughout, ``sqrt(x + eps)`` in the MSCN, and sizes not divisible by 16 padded by ``size % 16``
(so the last partial block row/column may be dropped). ``variant='matlab'`` (:func:`piqe`) is
MATLAB's: float64, padded symmetrically up to the next multiple of 16.
"""
from __future__ import annotations

from typing import Literal, get_args

import torch

from bench.core.registry import METRICS
from bench.metrics import _pyiqa_ops as pq
from bench.metrics._colour import check_images, to_levels
from bench.metrics._matlab import filter_same, fspecial_gaussian
from bench.metrics.base import MeanOfImages

BLOCK = 16
ACTIVITY_THRESHOLD = 0.1
IMPAIRED_THRESHOLD = 0.1
SEGMENT = 6
_YIQ_Y = (0.299, 0.587, 0.114)


def _symmetric_pad_post(x: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    """MATLAB ``padarray(x, [ph pw], 'symmetric', 'post')`` on (..., H, W)."""
    if ph:
        x = torch.cat([x, x[..., -ph:, :].flip(-2)], dim=-2)
    if pw:
        x = torch.cat([x, x[..., :, -pw:].flip(-1)], dim=-1)
    return x


def _centre_surround_deviation(blocks: torch.Tensor) -> torch.Tensor:
    """std(centre columns) / std(surround) per block, as MATLAB's centerSurDev(Block, 15).

    MATLAB takes columns 8 and 9 (1-based) as the centre, then deletes column 8 and, from
    what is left, column 9 (originally 10): the surround keeps original column 9. Kept as is.
    """
    n = blocks.shape[-1] - 1  # MATLAB passes blockSize - 1
    c1 = (n + 1) // 2  # 1-based
    c2 = c1 + 1
    centre = torch.stack((blocks[..., c1 - 1], blocks[..., c2 - 1]), dim=-1)
    keep = [i for i in range(blocks.shape[-1]) if i != c1 - 1]
    keep = [keep[i] for i in range(len(keep)) if i != c2 - 1]
    surround = blocks[..., keep]
    ratio = centre.flatten(-2).std(-1) / surround.flatten(-2).std(-1)
    return torch.nan_to_num(ratio)


def _noticeable_distortion(blocks: torch.Tensor) -> torch.Tensor:
    """True for blocks with a near-flat 6-pixel segment on any edge (std < 0.1)."""
    edges = (blocks[..., 0, :], blocks[..., :, -1], blocks[..., -1, :], blocks[..., :, 0])
    impaired = torch.zeros(blocks.shape[:-2], dtype=torch.bool, device=blocks.device)
    for e in edges:
        impaired |= (e.unfold(-1, SEGMENT, 1).std(-1) < IMPAIRED_THRESHOLD).any(-1)
    return impaired


def piqe(x: torch.Tensor) -> torch.Tensor:
    """PIQE of (B, 3, H, W) RGB in [0, 1]; returns (B,) scores in [0, 100] (lower is better)."""
    check_images(x, "pred")
    w = torch.tensor(_YIQ_Y, dtype=torch.float64, device=x.device).view(1, 3, 1, 1)
    gray = (to_levels(x) / 255.0 * w).sum(1, keepdim=True)
    peak = gray.flatten(1).amax(1).view(-1, 1, 1, 1)
    img = torch.round(255.0 * (gray / peak))
    b, _, h, wd = img.shape
    img = _symmetric_pad_post(img, (-h) % BLOCK, (-wd) % BLOCK)
    window = torch.from_numpy(fspecial_gaussian(7, 7 / 6))
    mu = filter_same(img, window, "replicate")
    sigma = torch.sqrt((filter_same(img * img, window, "replicate") - mu * mu).abs())
    mscn = (img - mu) / (sigma + 1)
    nh, nw = mscn.shape[-2] // BLOCK, mscn.shape[-1] // BLOCK
    blocks = mscn.reshape(b, nh, BLOCK, nw, BLOCK).permute(0, 1, 3, 2, 4).reshape(b, nh * nw, BLOCK, BLOCK)
    var = blocks.flatten(-2).var(-1)
    active = var > ACTIVITY_THRESHOLD
    block_sigma = var.sqrt()
    csd = _centre_surround_deviation(blocks)
    beta = (block_sigma - csd).abs() / torch.maximum(block_sigma, csd)
    noisy = block_sigma > 2 * beta
    impaired = _noticeable_distortion(blocks)
    a = active.to(var.dtype)
    dist = a * impaired.to(var.dtype) * (1 - var) + a * noisy.to(var.dtype) * var
    return (dist.sum(1) + 1) / (active.sum(1).to(var.dtype) + 1) * 100


def _symm_pad_tf(x: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
    """pyiqa ``symm_pad(x, (0, pad_w, 0, pad_h))``: half-sample symmetric, bottom/right."""
    h, w = x.shape[-2:]
    rows = list(range(h)) + [h - 1 - i for i in range(pad_h)]
    cols = list(range(w)) + [w - 1 - i for i in range(pad_w)]
    return x[..., torch.tensor(rows, device=x.device)[:, None], torch.tensor(cols, device=x.device)[None, :]]


def _std(x: torch.Tensor, dims: list[int] | int) -> torch.Tensor:
    return torch.std(x, dim=dims, unbiased=True)


def piqe_pyiqa(x: torch.Tensor) -> torch.Tensor:
    """PIQE of (B, 3, H, W) RGB in [0, 1] as pyiqa 0.1.16's ``piqe`` computes it (float32); returns (B,)."""
    check_images(x, "pred")
    img = pq.yiq_y(pq.uint8_float(x), 1)
    img = torch.round(255 * (img / torch.max(img.flatten(1), dim=-1)[0].reshape(img.shape[0], 1, 1, 1)))
    b, _, h, w = img.shape
    img = _symm_pad_tf(img, h % BLOCK, w % BLOCK)
    norm = pq.mscn(img, "replicate")
    blocks = norm.unfold(2, BLOCK, BLOCK).unfold(3, BLOCK, BLOCK).contiguous().view(b, -1, BLOCK, BLOCK)
    var = torch.var(blocks, dim=[2, 3], unbiased=True)
    active = var > ACTIVITY_THRESHOLD
    sigma = torch.sqrt(var)
    c1 = BLOCK // 2  # (15 + 1) // 2, 1-based: columns 8 and 9
    centre = torch.stack((blocks[..., c1 - 1], blocks[..., c1]), dim=3)
    sur = torch.cat((blocks[..., : c1 - 1], blocks[..., c1:]), dim=-1)
    sur = torch.cat((sur[..., :c1], sur[..., c1 + 1:]), dim=-1)
    csd = torch.nan_to_num(_std(centre, [2, 3]) / _std(sur, [2, 3]))
    beta = torch.abs(sigma - csd) / torch.max(sigma, csd)
    noisy = sigma > 2 * beta
    n = BLOCK - 1
    edges = (blocks[:, :, 0, :], blocks[:, :, :, n], blocks[:, :, n, :], blocks[:, :, :, 0])
    counts = [(_std(e.unfold(-1, SEGMENT, 1), -1) < IMPAIRED_THRESHOLD).sum(dim=2) for e in edges]
    impaired = (counts[0] + counts[1] + counts[2] + counts[3]) > 0
    wa = active.float()
    dist = wa * impaired.float() * (1 - var) + wa * noisy.float() * var
    return ((dist.sum(dim=1) + 1) / (1 + active.sum(dim=1))) * 100


Variant = Literal["pyiqa", "matlab"]
VARIANTS: tuple[str, ...] = get_args(Variant)


@METRICS.register
class PIQE(MeanOfImages):
    """PIQE, pyiqa 0.1.16's arithmetic (``variant='matlab'``: MATLAB's); no model; 0 best, 100 worst."""

    name = "piqe"
    description = ("PIQE (Venkatanath et al. 2015) as pyiqa 0.1.16 piqe (variant='matlab': MATLAB piqe): 16x16 blocks, "
                   "0 best, 100 worst")
    higher_better = False
    needs_gt = False
    protocol = "pyiqa-0.1.16-piqe"

    def __init__(self, variant: Variant = "pyiqa") -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
        self.variant = variant
        self.runs_on_host = variant == "pyiqa"  # pyiqa's single-thread CPU arithmetic, image by image
        self.protocol = PIQE.protocol if variant == "pyiqa" else "matlab-piqe-f64"

    def score(self, pred: torch.Tensor, gt: torch.Tensor | None = None) -> torch.Tensor:
        if self.variant == "matlab":
            return piqe(pred)
        x = pred.detach().cpu()
        with pq.stock_cpu():
            out = torch.cat([piqe_pyiqa(x[i:i + 1]) for i in range(x.shape[0])])
        return out.to(device=pred.device, dtype=torch.float64)




__all__ = ["PIQE", "piqe", "piqe_pyiqa"]
