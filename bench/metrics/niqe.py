"""NIQE (Mittal et al. 2013) with the MATLAB release's pristine model, as BasicSR computes it.

BasicSR's ``calculate_niqe`` (crop_border 0, ``convert_to='y'``): the Y channel of MATLAB's
rgb2ycbcr rounded to integers, 96x96 blocks without overlap, MSCN with the 7x7 Gaussian window
of the release (replicate border), 18 AGGD features per block at full and half scale (MATLAB
bicubic ``imresize`` with antialiasing), a Gaussian fitted to the block features (NaN rows
dropped from the covariance) and its distance to the pristine Gaussian. Here it runs batched in
float64 torch; the pristine parameters are ``niqe_pris_params.npz`` from the ``basicsr==1.4.2``
sdist on PyPI (a registry asset, see ``bfrbench fetch niqe-pris-params``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bench.core.registry import METRICS
from bench.metrics._colour import check_images, rgb_to_y
from bench.metrics._matlab import filter_same, imresize
from bench.metrics._nss import aggd_fit, lgamma_ratio
from bench.metrics.base import MeanOfImages, MetricUnavailable
from bench.weights import MissingWeightsError, availability, resolve

WEIGHTS_NAME = "niqe-pris-params"

BLOCK = 96
#: (dy, dx) shifts of the paired products, as np.roll in BasicSR's compute_feature
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


def load_pris_params(path: str | Path) -> dict[str, torch.Tensor]:
    """Read ``mu_pris_param``, ``cov_pris_param`` and ``gaussian_window`` (float64) from the npz."""
    try:
        with np.load(path) as data:
            out = {k: torch.from_numpy(np.asarray(data[k], dtype=np.float64)) for k in
                   ("mu_pris_param", "cov_pris_param", "gaussian_window")}
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(
            f"{path}: not a valid NIQE parameter file ({type(exc).__name__}: {exc}); "
            f"delete it and run `bfrbench fetch {WEIGHTS_NAME}`"
        ) from exc
    if out["mu_pris_param"].numel() != 36 or out["cov_pris_param"].shape != (36, 36):
        raise ValueError(f"{path}: expected mu 1x36 and cov 36x36, got {tuple(out['mu_pris_param'].shape)} "
                         f"and {tuple(out['cov_pris_param'].shape)}")
    out["mu_pris_param"] = out["mu_pris_param"].reshape(36)
    return out


def block_features(img_norm: torch.Tensor, bh: int, bw: int) -> torch.Tensor:
    """(B, 1, nh*bh, nw*bw) MSCN image -> (B, nh*nw, 18) features of its non-overlapping blocks."""
    b, _, h, w = img_norm.shape
    nh, nw = h // bh, w // bw
    blocks = img_norm.reshape(b, nh, bh, nw, bw).permute(0, 1, 3, 2, 4).reshape(b, nh * nw, bh, bw)
    feats = []
    alpha, lstd, rstd = aggd_fit(blocks.flatten(-2))
    scale = torch.sqrt(lgamma_ratio(1, 3, alpha))
    feats += [alpha, (lstd * scale + rstd * scale) / 2]
    for shift in _SHIFTS:
        prod = blocks * torch.roll(blocks, shifts=shift, dims=(-2, -1))
        alpha, lstd, rstd = aggd_fit(prod.flatten(-2))
        scale = torch.sqrt(lgamma_ratio(1, 3, alpha))
        beta_l, beta_r = lstd * scale, rstd * scale
        feats += [alpha, (beta_r - beta_l) * lgamma_ratio(2, 1, alpha), beta_l, beta_r]
    return torch.stack(feats, dim=-1)


def _nanmean_nancov(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per batch item of (B, N, D): column-wise nanmean, and np.cov of the rows without NaN."""
    nan = torch.isnan(x)
    mean = torch.where(nan, 0.0, x).sum(1) / (~nan).sum(1)
    keep = (~nan.any(-1)).to(x.dtype).unsqueeze(-1)  # (B, N, 1)
    xk = torch.where(nan, 0.0, x) * keep
    n = keep.sum(1, keepdim=True)  # (B, 1, 1)
    centred = (xk - xk.sum(1, keepdim=True) / n) * keep
    cov = centred.transpose(1, 2) @ centred / (n - 1)
    return mean, cov


def niqe_score(y: torch.Tensor, params: dict[str, torch.Tensor], block: int = BLOCK) -> torch.Tensor:
    """NIQE of (B, 1, H, W) integer-valued float64 luma in [0, 255]; returns (B,)."""
    b, _, h, w = y.shape
    nh, nw = h // block, w // block
    if nh * nw < 2:
        raise ValueError(f"NIQE needs at least two {block}x{block} blocks; the image is {h}x{w}")
    img = y[..., : nh * block, : nw * block]
    window = params["gaussian_window"]
    feats = []
    for scale in (1, 2):
        mu = filter_same(img, window, "replicate")
        sigma = torch.sqrt((filter_same(img * img, window, "replicate") - mu * mu).abs())
        feats.append(block_features((img - mu) / (sigma + 1), block // scale, block // scale))
        if scale == 1:
            img = imresize(img / 255.0, 0.5, antialias=True) * 255.0
    dist = torch.cat(feats, dim=-1)  # (B, blocks, 36)
    mu_d, cov_d = _nanmean_nancov(dist)
    # a flat image has no usable block (every feature NaN): its score is NaN, and it must not
    # break the pseudo-inverse of the other images of the batch
    undefined = ~(torch.isfinite(mu_d).all(-1) & torch.isfinite(cov_d).flatten(1).all(-1))
    mu_d = torch.where(undefined[:, None], 0.0, mu_d)
    cov_d = torch.where(undefined[:, None, None], 0.0, cov_d)
    mu_p = params["mu_pris_param"].to(dist)
    cov_p = params["cov_pris_param"].to(dist)
    inv = torch.linalg.pinv((cov_p + cov_d) / 2)
    diff = (mu_p - mu_d).unsqueeze(1)
    score = torch.sqrt((diff @ inv @ diff.transpose(1, 2)).reshape(b))
    return torch.where(undefined, torch.nan, score)


class NIQE(MeanOfImages):
    """NIQE on the Y channel, BasicSR ``calculate_niqe`` (crop_border 0, 96x96 blocks); lower is better."""

    name = "niqe"
    higher_better = False
    needs_gt = False
    protocol = "basicsr-niqe-y-matlab"

    def __init__(self, weights: str | None = None) -> None:
        super().__init__()
        try:
            path = resolve(WEIGHTS_NAME, weights)
        except MissingWeightsError as exc:
            raise MetricUnavailable(str(exc)) from exc
        params = load_pris_params(path)
        for k, v in params.items():
            self.register_buffer(k, v, persistent=False)

    def score(self, pred: torch.Tensor, gt: torch.Tensor | None = None) -> torch.Tensor:
        check_images(pred, "pred")
        y = rgb_to_y(pred).round()  # BasicSR: `img.round()` "for consistency with MATLAB"
        params = {k: getattr(self, k) for k in ("mu_pris_param", "cov_pris_param", "gaussian_window")}
        return niqe_score(y, params)


@METRICS.register(
    "niqe",
    higher_better=False,
    needs_gt=False,
    protocol=NIQE.protocol,
    standard=True,
    weights=[WEIGHTS_NAME],
    description="NIQE (MATLAB pristine model), BasicSR calculate_niqe: Y channel, crop 0, 96x96 blocks",
    available=availability(WEIGHTS_NAME),
)
def _make_niqe(*, weights: str | None = None) -> NIQE:
    return NIQE(weights=weights)


__all__ = ["NIQE", "niqe_score", "load_pris_params", "block_features", "WEIGHTS_NAME"]
