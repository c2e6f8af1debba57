"""NIQE's last step, batched in float64: a Gaussian fitted to each image's block features and its pristine distance."""
from __future__ import annotations

import torch


def nanmean_nancov(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per batch item of (B, N, D): column-wise ``np.nanmean``, and ``np.cov`` of the rows without NaN."""
    nan = torch.isnan(x)
    mean = torch.where(nan, 0.0, x).sum(1) / (~nan).sum(1)
    keep = (~nan.any(-1)).to(x.dtype).unsqueeze(-1)  # (B, N, 1)
    xk = torch.where(nan, 0.0, x) * keep
    n = keep.sum(1, keepdim=True)  # (B, 1, 1)
    centred = (xk - xk.sum(1, keepdim=True) / n) * keep
    cov = centred.transpose(1, 2) @ centred / (n - 1)
    return mean, cov


def pristine_distance(feats: torch.Tensor, mu_pris: torch.Tensor, cov_pris: torch.Tensor) -> torch.Tensor:
    """NIQE of each image from its (B, blocks, 36) float64 features: NaN where no block is free of NaN."""
    b = feats.shape[0]
    mu_d, cov_d = nanmean_nancov(feats.double())
    # a flat image has no usable block (every feature NaN): its score is NaN, and it must not
    # break the pseudo-inverse of the other images of the batch
    undefined = ~(torch.isfinite(mu_d).all(-1) & torch.isfinite(cov_d).flatten(1).all(-1))
    mu_d = torch.where(undefined[:, None], 0.0, mu_d)
    cov_d = torch.where(undefined[:, None, None], 0.0, cov_d)
    mu_p = mu_pris.to(mu_d).reshape(-1)
    cov_p = cov_pris.to(mu_d)
    inv = torch.linalg.pinv((cov_p + cov_d) / 2)
    diff = (mu_p - mu_d).unsqueeze(1)
    score = torch.sqrt((diff @ inv @ diff.transpose(1, 2)).reshape(b))
    return torch.where(undefined, torch.nan, score)


__all__ = ["nanmean_nancov", "pristine_distance"]
