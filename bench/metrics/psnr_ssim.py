"""PSNR and SSIM with BasicSR's conventions (crop border 0), on RGB or on the Y channel.

BasicSR's ``calculate_psnr`` / ``calculate_ssim`` (the scripts behind the papers' tables) work
on uint8 levels in float64: PSNR = 10 log10(255^2 / MSE) over all pixels and channels; SSIM is
Wang et al.'s with an 11x11 Gaussian window (sigma 1.5), 'valid' filtering, computed per channel
and averaged. Two paths (``impl``): ``device`` runs the formulas batched in float64 torch on the
metric's device; ``reference`` is BasicSR's own numpy / OpenCV arithmetic image by image
(:mod:`bench.metrics.psnr_ssim_reference`), equal to it to the last bit. ``auto`` (the default)
takes ``reference`` on a CPU, where it is never the slower, and ``device`` elsewhere.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.core.registry import METRICS
from bench.metrics import psnr_ssim_reference as reference
from bench.metrics._colour import check_images, rgb_to_y, to_levels
from bench.metrics.base import Impl, MeanOfImages, check_impl

_C1 = (0.01 * 255.0) ** 2
_C2 = (0.03 * 255.0) ** 2


def _prepare(x: torch.Tensor, y_channel: bool) -> torch.Tensor:
    """Float64 images in [0, 255]: RGB uint8 levels, or BasicSR's Y channel."""
    return rgb_to_y(x) if y_channel else to_levels(x)


def check_pair(pred: torch.Tensor, gt: torch.Tensor, min_side: int = 0) -> None:
    """Both inputs images of one shape, each side at least ``min_side`` pixels (SSIM's window: 11)."""
    check_images(pred, "pred")
    check_images(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt shapes differ: {tuple(pred.shape)} vs {tuple(gt.shape)}")
    if min(pred.shape[-2:]) < min_side:
        raise ValueError(f"SSIM needs images of at least {min_side}x{min_side} pixels, got {tuple(pred.shape[-2:])}")


def psnr(pred: torch.Tensor, gt: torch.Tensor, y_channel: bool = False) -> torch.Tensor:
    """Per-image PSNR (B,) in dB, as BasicSR's ``calculate_psnr`` (inf for identical images)."""
    check_pair(pred, gt)
    a, b = _prepare(pred, y_channel), _prepare(gt, y_channel)
    mse = (a - b).square().mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(255.0 * 255.0 / mse)  # mse == 0 gives inf, as BasicSR returns


def gaussian_window_1d(size: int = 11, sigma: float = 1.5, device: torch.device | None = None) -> torch.Tensor:
    """cv2.getGaussianKernel(size, sigma) in float64 (normalised to sum 1)."""
    r = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma * sigma))
    return g / g.sum()


def _filter_valid(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian filtering of (N, 1, H, W) with the 1-D window ``g``."""
    k = g.numel()
    x = F.conv2d(x, g.view(1, 1, k, 1))
    return F.conv2d(x, g.view(1, 1, 1, k))


def ssim(pred: torch.Tensor, gt: torch.Tensor, y_channel: bool = False) -> torch.Tensor:
    """Per-image SSIM (B,), as BasicSR's ``calculate_ssim``: channels averaged, 'valid' window."""
    check_pair(pred, gt, min_side=11)
    a, b = _prepare(pred, y_channel), _prepare(gt, y_channel)
    n, c, h, w = a.shape
    a, b = a.reshape(n * c, 1, h, w), b.reshape(n * c, 1, h, w)
    g = gaussian_window_1d(device=a.device)
    mu1, mu2 = _filter_valid(a, g), _filter_valid(b, g)
    e11, e22, e12 = _filter_valid(a * a, g), _filter_valid(b * b, g), _filter_valid(a * b, g)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    s11, s22, s12 = e11 - mu1_sq, e22 - mu2_sq, e12 - mu12
    ssim_map = ((2 * mu12 + _C1) * (2 * s12 + _C2)) / ((mu1_sq + mu2_sq + _C1) * (s11 + s22 + _C2))
    return ssim_map.mean(dim=(1, 2, 3)).view(n, c).mean(dim=1)


_OPTIONS = {"crop_border": "pixels cut from each edge first (BasicSR crop_border; default 0)",
            "test_y_channel": "true: on the Y channel of MATLAB rgb2ycbcr",
            "impl": "auto (reference on a CPU, device elsewhere), device (batched float64 torch on the metric's "
                    "device; SSIM within 2e-13 of BasicSR, PSNR within 1e-15) or reference (BasicSR's numpy / "
                    "OpenCV, image by image on the host: its numbers to the last bit)"}


class _PairMetric(MeanOfImages):
    """A full-reference per-image metric with BasicSR's options ``crop_border`` and ``test_y_channel``."""

    needs_gt = True
    option_help = _OPTIONS
    fastest_impl = {"cpu": "reference"}
    #: the smallest image side it scores
    min_side = 0

    def __init__(self, crop_border: int = 0, test_y_channel: bool = False, impl: Impl = "auto") -> None:
        super().__init__()
        if isinstance(crop_border, bool) or not isinstance(crop_border, int) or crop_border < 0:
            raise ValueError(f"{self.name}: crop_border must be a whole number >= 0, got {crop_border!r}")
        if not isinstance(test_y_channel, bool):
            raise ValueError(f"{self.name}: test_y_channel must be true or false, got {test_y_channel!r}")
        check_impl(self.name, impl)
        self.y_channel = test_y_channel
        self.crop_border = crop_border
        self.impl = impl
        self.protocol = protocol_label(self.y_channel, crop_border)

    def reference_options(self) -> dict[str, str]:
        return {"impl": "reference"}  # BasicSR's own numpy / OpenCV, image by image

    def score(self, pred: torch.Tensor, gt: torch.Tensor | None) -> torch.Tensor:
        assert gt is not None
        c = self.crop_border
        if c:
            if min(pred.shape[-2:]) <= 2 * c:
                raise ValueError(f"{self.name}: crop_border={c} leaves nothing of a {tuple(pred.shape[-2:])} image")
            pred, gt = pred[..., c:-c, c:-c], gt[..., c:-c, c:-c]
        if self.impl_on(pred.device.type) == "reference":
            check_pair(pred, gt, self.min_side)  # the checks (and errors) of the device path's function
            return reference.per_image(self.reference_fn, pred, gt, self.y_channel)
        return self.fn(pred, gt, y_channel=self.y_channel)

    @staticmethod
    def fn(pred: torch.Tensor, gt: torch.Tensor, y_channel: bool = False) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def reference_fn(img: object, img2: object, y_channel: bool = False) -> float:  # pragma: no cover
        raise NotImplementedError

    def info(self) -> dict:
        out = super().info()
        out["options"] = {"crop_border": self.crop_border, "test_y_channel": self.y_channel}
        return out


class _YChannel(_PairMetric):
    """The Y-channel preset of a pair metric: ``psnr-y`` is ``psnr:test_y_channel=true`` under its short name."""

    def __init__(self, crop_border: int = 0, test_y_channel: bool = True, impl: Impl = "auto") -> None:
        super().__init__(crop_border, test_y_channel, impl)


def protocol_label(y_channel: bool, crop_border: int) -> str:
    """``basicsr-rgb-crop0``, ``basicsr-y-crop4`` ...: the channel and the border every number used."""
    return f"basicsr-{'y' if y_channel else 'rgb'}-crop{crop_border}"


@METRICS.register
class PSNR(_PairMetric):
    """PSNR on RGB uint8 levels (BasicSR ``calculate_psnr``, crop_border=0 unless given)."""

    name = "psnr"
    description = 'PSNR (dB) on RGB uint8 levels, BasicSR calculate_psnr, crop border 0'
    protocol = "basicsr-rgb-crop0"
    fn = staticmethod(psnr)
    reference_fn = staticmethod(reference.psnr_image)


@METRICS.register
class PSNRY(_YChannel, PSNR):
    """PSNR on the Y channel (BasicSR ``calculate_psnr``, test_y_channel=True)."""

    name = "psnr-y"
    alias_of = ("psnr", {"test_y_channel": True})
    description = 'PSNR (dB) on the Y channel of MATLAB rgb2ycbcr, BasicSR calculate_psnr(test_y_channel)'
    protocol = "basicsr-y-crop0"


@METRICS.register
class SSIM(_PairMetric):
    """SSIM on RGB, channels averaged (BasicSR ``calculate_ssim``, crop_border=0 unless given)."""

    name = "ssim"
    description = 'SSIM on RGB (per channel, averaged), BasicSR calculate_ssim: 11x11 Gaussian sigma 1.5, valid'
    protocol = "basicsr-rgb-crop0"
    fn = staticmethod(ssim)
    reference_fn = staticmethod(reference.ssim_image)

    min_side = 11  # the window


@METRICS.register
class SSIMY(_YChannel, SSIM):
    """SSIM on the Y channel (BasicSR ``calculate_ssim``, test_y_channel=True)."""

    name = "ssim-y"
    alias_of = ("ssim", {"test_y_channel": True})
    description = 'SSIM on the Y channel of MATLAB rgb2ycbcr, BasicSR calculate_ssim(test_y_channel)'
    protocol = "basicsr-y-crop0"



__all__ = ["psnr", "ssim", "protocol_label", "PSNR", "PSNRY", "SSIM", "SSIMY", "gaussian_window_1d"]
