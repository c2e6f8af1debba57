"""Colour conversions that reproduce the numbers of BasicSR's metric scripts exactly.

BasicSR reads uint8 PNGs and, for ``test_y_channel``, converts with MATLAB's ``rgb2ycbcr``
(ITU-R BT.601, studio range) through a float32 round trip (``to_y_channel``). Repeating that
float32 rounding here keeps our Y-channel PSNR/SSIM/NIQE equal to theirs to the last digit.
"""
from __future__ import annotations

import torch

#: BT.601 luma weights (MATLAB rgb2ycbcr, inputs in [0, 1], output in [16, 235])
_Y_WEIGHTS = (65.481, 128.553, 24.966)


def check_images(x: torch.Tensor, what: str = "pred") -> None:
    """Raise a clear error for a batch that is not (B, 3, H, W)."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{what} must be a batch of RGB images (B, 3, H, W), got shape {tuple(x.shape)}")


def to_levels(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] images (multiples of 1/255) to float64 uint8 levels in [0, 255], as read from a PNG."""
    return (x.to(torch.float64) * 255.0).round_().clamp_(0.0, 255.0)


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """Y of YCbCr as BasicSR's ``to_y_channel``: (B, 3, H, W) in [0, 1] to (B, 1, H, W) float64 in [0, 255].

    BasicSR computes ``float32(img / 255)`` -> float64 dot product + 16 -> ``/ 255`` -> float32 ->
    ``* 255`` in float32; each step is repeated here (inputs are the uint8 levels / 255).
    """
    levels = to_levels(x)
    x32 = (levels.to(torch.float32) / 255.0).to(torch.float64)  # float32(img / 255.)
    w = torch.tensor(_Y_WEIGHTS, dtype=torch.float64, device=x.device).view(1, 3, 1, 1)
    y = (x32 * w).sum(dim=1, keepdim=True) + 16.0
    y32 = (y / 255.0).to(torch.float32)  # _convert_output_type_range for float32
    return (y32 * 255.0).to(torch.float64)  # `img * 255.` in float32, then astype(float64)


#: MATLAB rgb2gray: the first row of inv of the NTSC YIQ matrix (not the rounded 0.299/0.587/0.114)
_GRAY_WEIGHTS = (0.298936021293775, 0.587043074451121, 0.114020904255103)


def rgb_to_gray_matlab(x: torch.Tensor) -> torch.Tensor:
    """MATLAB ``double(rgb2gray(uint8 img))``: (B, 3, H, W) in [0, 1] to (B, 1, H, W) float64 in [0, 255]."""
    w = torch.tensor(_GRAY_WEIGHTS, dtype=torch.float64, device=x.device).view(1, 3, 1, 1)
    return (to_levels(x) * w).sum(dim=1, keepdim=True).round_().clamp_(0.0, 255.0)
