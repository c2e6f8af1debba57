"""BasicSR 1.4.2's own PSNR / SSIM arithmetic (numpy and OpenCV, image by image): the ``reference`` path.

The papers' scripts read PNGs with ``cv2.imread`` (BGR uint8) and call ``calculate_psnr`` /
``calculate_ssim``: float64 levels, SSIM channel by channel in B, G, R order with ``cv2.filter2D``
and the 11x11 outer-product window, the channel values averaged by ``np.mean``; on the Y channel,
``to_y_channel``'s float32 / float64 steps. Each step is repeated here, so the values are the stock
tool's to the last bit (``tests/bench/metrics/test_psnr_ssim_stock.py`` runs BasicSR itself). On a
CPU it is never the slower path: SSIM takes 93-99 ms per 512 face against 509-511 ms for float64 torch
convolutions under glibc's default heap, and 81 against 79 ms with the CPU engine's kept heap
(``scripts/time_psnr_ssim.py``, docs/cpu-measurements.md).
"""
from __future__ import annotations

import numpy as np
import torch

_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
#: BasicSR ``bgr2ycbcr(y_only=True)`` weights, in B, G, R order
_Y_BGR = [24.966, 128.553, 65.481]


def _window() -> np.ndarray:
    import cv2

    k = cv2.getGaussianKernel(11, 1.5)
    return np.outer(k, k.transpose())


def bgr_images(x: torch.Tensor) -> list[np.ndarray]:
    """(B, 3, H, W) RGB in [0, 1] (multiples of 1/255) -> B uint8 HxWx3 BGR arrays, as ``cv2.imread`` gives."""
    levels = (x.detach().to(torch.float64) * 255.0).round_().clamp_(0.0, 255.0).to(torch.uint8)
    return [np.ascontiguousarray(img.flip(0).permute(1, 2, 0).cpu().numpy()) for img in levels]


def _float_levels(img: np.ndarray, y_channel: bool) -> np.ndarray:
    """BasicSR's input of both metrics: float64 HxWxC, from the BGR uint8 image or its ``to_y_channel``."""
    if y_channel:
        f = img.astype(np.float32) / 255.0
        y = np.dot(f, _Y_BGR) + 16.0  # float64, as bgr2ycbcr computes it
        y = (y / 255.0).astype(np.float32)  # _convert_output_type_range(float32)
        img = y[..., None] * 255.0  # to_y_channel: `img * 255.` in float32
    return img.astype(np.float64)


def psnr_image(img: np.ndarray, img2: np.ndarray, y_channel: bool = False) -> float:
    """BasicSR ``calculate_psnr(img, img2, 0, test_y_channel=y_channel)`` on two uint8 BGR images."""
    a, b = _float_levels(img, y_channel), _float_levels(img2, y_channel)
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0 * 255.0 / mse))


def _ssim_plane(a: np.ndarray, b: np.ndarray, window: np.ndarray) -> float:
    import cv2

    def filt(x: np.ndarray) -> np.ndarray:
        return cv2.filter2D(x, -1, window)[5:-5, 5:-5]  # 'valid' for the 11x11 window

    mu1, mu2 = filt(a), filt(b)
    mu1_sq, mu2_sq, mu1_mu2 = mu1**2, mu2**2, mu1 * mu2
    s1, s2, s12 = filt(a**2) - mu1_sq, filt(b**2) - mu2_sq, filt(a * b) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + _C1) * (2 * s12 + _C2)) / ((mu1_sq + mu2_sq + _C1) * (s1 + s2 + _C2))
    return ssim_map.mean()


def ssim_image(img: np.ndarray, img2: np.ndarray, y_channel: bool = False) -> float:
    """BasicSR ``calculate_ssim(img, img2, 0, test_y_channel=y_channel)`` on two uint8 BGR images."""
    a, b = _float_levels(img, y_channel), _float_levels(img2, y_channel)
    window = _window()
    return float(np.array([_ssim_plane(a[..., i], b[..., i], window) for i in range(a.shape[2])]).mean())


def per_image(fn, pred: torch.Tensor, gt: torch.Tensor, y_channel: bool) -> torch.Tensor:
    """``fn`` (``psnr_image`` or ``ssim_image``) on each pair of a batch: (B,) float64 on ``pred``'s device."""
    vals = [fn(a, b, y_channel) for a, b in zip(bgr_images(pred), bgr_images(gt))]
    return torch.tensor(vals, dtype=torch.float64, device=pred.device)


__all__ = ["bgr_images", "psnr_image", "ssim_image", "per_image"]
