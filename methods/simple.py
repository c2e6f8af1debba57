"""Non-learned methods: ``lq`` (the input, resized: the do-nothing baseline) and ``classical``.

``classical`` is an edge-preserving denoiser (a guided filter, He et al. 2010) followed by an
unsharp mask: a real, cheap restorer that ranks against ``lq`` from day one, batched in torch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.core.registry import METHODS
from methods.base import RestorationMethod, WeightsInfo


def resize_bilinear(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize matching cv2.INTER_LINEAR (half-pixel centres, no antialias)."""
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)


def box_filter(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over a (2r+1)^2 window with reflect padding, per channel."""
    k = 2 * r + 1
    return F.avg_pool2d(F.pad(x, (r, r, r, r), mode="reflect"), k, stride=1)


def guided_filter(guide: torch.Tensor, src: torch.Tensor, r: int, eps: float) -> torch.Tensor:
    """Self/cross guided filter, per channel (edge-preserving smoothing)."""
    mean_i = box_filter(guide, r)
    mean_p = box_filter(src, r)
    cov_ip = box_filter(guide * src, r) - mean_i * mean_p
    var_i = box_filter(guide * guide, r) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_filter(a, r) * guide + box_filter(b, r)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(round(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k1 = torch.exp(-(t**2) / (2 * sigma**2))
    k1 = k1 / k1.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k1.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k1.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


@METHODS.register
class LQMethod(RestorationMethod):
    """The degraded input itself, resized to 512: every method must beat this."""

    name = "lq"
    family = "baseline"
    description = "the degraded input resized to 512 (do-nothing baseline)"

    def __init__(self, weights: str | None = None) -> None:
        super().__init__()
        self.weights_info = [WeightsInfo(name="none", note="no learned weights")]

    def restore(self, lq: torch.Tensor) -> torch.Tensor:
        return resize_bilinear(lq, self.output_size)


@METHODS.register
class ClassicalMethod(RestorationMethod):
    """Guided-filter denoising plus unsharp masking, with no learned weights."""

    name = "classical"
    family = "baseline"
    description = "guided-filter denoise + unsharp mask (non-learned)"

    def __init__(
        self, weights: str | None = None, radius: int = 3, eps: float = 4e-3, sharpen: float = 0.8, sigma: float = 1.5
    ) -> None:
        super().__init__(radius=radius, eps=eps, sharpen=sharpen, sigma=sigma)
        self.radius, self.eps, self.sharpen, self.sigma = radius, eps, sharpen, sigma
        self.weights_info = [WeightsInfo(name="none", note="no learned weights")]

    def restore(self, lq: torch.Tensor) -> torch.Tensor:
        x = resize_bilinear(lq.float(), self.output_size)
        smooth = guided_filter(x, x, self.radius, self.eps)
        detail = smooth - gaussian_blur(smooth, self.sigma)
        return (smooth + self.sharpen * detail).clamp(0, 1)

