"""Natural-scene-statistics fits shared by NIQE and BRISQUE (batched, torch).

Both metrics fit generalised Gaussians by moment matching against a table of the shape
parameter ``gam = 0.2:0.001:10`` (as the LIVE MATLAB code does) and take the table entry
nearest to the measured ratio. The nearest entry is found with ``searchsorted`` on the
monotone table, with the same answer as MATLAB's / numpy's ``argmin`` (first index on ties;
index 0 when the ratio is NaN, as ``np.argmin`` of an all-NaN vector gives).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from scipy.special import gamma as gamma_fn

#: the shape-parameter grid of the LIVE code: 0.2, 0.201, ..., 10.0 (9801 values)
GAM = np.arange(0.2, 10.001, 0.001)


@lru_cache(maxsize=1)
def _tables() -> dict[str, np.ndarray]:
    g = GAM
    r_aggd = gamma_fn(2 / g) ** 2 / (gamma_fn(1 / g) * gamma_fn(3 / g))  # increasing in g
    r_ggd = gamma_fn(1 / g) * gamma_fn(3 / g) / gamma_fn(2 / g) ** 2  # decreasing in g
    return {"aggd": r_aggd, "ggd": r_ggd}


def nearest_index(table: np.ndarray, values: torch.Tensor) -> torch.Tensor:
    """``argmin(|table - v|)`` for each v, for a strictly monotone ``table`` (ties: first index)."""
    increasing = bool(table[-1] > table[0])
    asc = table if increasing else table[::-1].copy()
    t = torch.from_numpy(asc).to(device=values.device, dtype=torch.float64)
    v = values.to(torch.float64)
    n = t.numel()
    hi = torch.searchsorted(t, v.nan_to_num(0.0).contiguous()).clamp_(1, n - 1)
    lo = hi - 1
    d_lo, d_hi = (v - t[lo]).abs(), (t[hi] - v).abs()
    if increasing:  # ascending order == original order: lower index wins ties
        idx = torch.where(d_hi < d_lo, hi, lo)
    else:  # reversed: original index n-1-i; the smaller original index is the higher i
        idx = n - 1 - torch.where(d_lo < d_hi, lo, hi)
    return torch.where(torch.isnan(v), torch.zeros_like(idx), idx)


def gam_values(idx: torch.Tensor) -> torch.Tensor:
    """The shape parameters at table indices ``idx`` (float64)."""
    return torch.from_numpy(GAM).to(idx.device)[idx]


def aggd_fit(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric GGD fit of each row of ``x`` (..., N): (alpha, left_std, right_std).

    As the LIVE code: left/right std from the negative/positive samples, then the shape from
    ``rhat = mean(|x|)^2 / mean(x^2)`` corrected by ``gammahat = left_std / right_std``.
    """
    neg, pos = x < 0, x > 0
    sq = x * x
    left_std = torch.sqrt((sq * neg).sum(-1) / neg.sum(-1))  # NaN when no negative sample
    right_std = torch.sqrt((sq * pos).sum(-1) / pos.sum(-1))
    gammahat = left_std / right_std
    rhat = x.abs().mean(-1) ** 2 / sq.mean(-1)
    rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2
    alpha = gam_values(nearest_index(_tables()["aggd"], rhatnorm))
    return alpha, left_std, right_std


def ggd_fit(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric GGD fit of each row of ``x`` (..., N): (alpha, sigma), LIVE's estimateggdparam."""
    sigma_sq = (x * x).mean(-1)
    e = x.abs().mean(-1)
    rho = sigma_sq / e**2
    alpha = gam_values(nearest_index(_tables()["ggd"], rho))
    return alpha, torch.sqrt(sigma_sq)


def lgamma_ratio(num: float, den: float, alpha: torch.Tensor) -> torch.Tensor:
    """Gamma(num / alpha) / Gamma(den / alpha), computed through lgamma for stability."""
    return torch.exp(torch.lgamma(num / alpha) - torch.lgamma(den / alpha))
