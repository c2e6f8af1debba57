"""OpenCV / libpng uint8 image operations redone in integer torch arithmetic, so they run on the device.

- :func:`png_grey`: the grey of ``cv2.imread(png, IMREAD_GRAYSCALE)`` for an RGB PNG, i.e. libpng's
  ``png_set_rgb_to_gray(0.299, 0.587)``: fixed-point coefficients 9797 / 19234 / 3737 (of 32768),
  truncated, and grey pixels (R == G == B) kept as they are. Equal to OpenCV 4.x's decoder on every
  pixel (tests/bench/metrics/test_device_paths.py).
- :func:`resize_linear_u8`: ``cv2.resize(..., INTER_LINEAR)`` on uint8 images: 11-bit fixed-point
  coefficients, horizontal pass in int, vertical pass as OpenCV's SIMD kernel rounds it
  (``((r0 >> 4) * b0 >> 16) + ((r1 >> 4) * b1 >> 16) + 2 >> 2``). Equal to OpenCV on every pixel
  when shrinking to a width that is a multiple of 16 (the benchmark's 512 -> 128 and 512 -> 256);
  otherwise within one level (OpenCV rounds a row's last columns, and enlargements, in scalar code).
"""
from __future__ import annotations

import torch


def png_grey(u8: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB integers 0..255 -> (B, H, W) int32 grey as libpng's rgb_to_gray computes it."""
    x = u8.to(torch.int32)
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    grey = (9797 * r + 19234 * g + 3737 * b) >> 15
    return torch.where((r == g) & (g == b), r, grey)


def _taps(src: int, dst: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """OpenCV's INTER_LINEAR source indices and 11-bit weights for one axis."""
    fx = (torch.arange(dst, dtype=torch.float64, device=device) + 0.5) * (src / dst) - 0.5
    sx = torch.floor(fx)
    fx = fx - sx
    sx = sx.long()
    edge = (sx < 0) | (sx >= src - 1)
    fx = torch.where(edge, torch.zeros_like(fx), fx)
    sx = sx.clamp(0, src - 1)
    w0 = torch.round((1 - fx.float()) * 2048).to(torch.int32)
    w1 = torch.round(fx.float() * 2048).to(torch.int32)
    return sx, (sx + 1).clamp(max=src - 1), w0, w1


def resize_linear_u8(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, H, W) integers 0..255 -> (B, height, width) int32, as ``cv2.resize(INTER_LINEAR)`` on uint8."""
    x = x.to(torch.int32)
    _, h, w = x.shape
    if (h, w) == (height, width):
        return x
    x0, x1, a0, a1 = _taps(w, width, x.device)
    rows = x[:, :, x0] * a0 + x[:, :, x1] * a1  # (B, H, width), scale 2048
    y0, y1, b0, b1 = _taps(h, height, x.device)
    r0, r1 = rows[:, y0, :], rows[:, y1, :]
    out = (((r0 >> 4) * b0.view(1, -1, 1)) >> 16) + (((r1 >> 4) * b1.view(1, -1, 1)) >> 16)
    return ((out + 2) >> 2).clamp(0, 255)


def to_u8_levels(img: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) floats in [0, 1] -> int32 0..255, rounded as the saved PNG would hold them."""
    return img.detach().float().mul(255.0).round_().clamp_(0, 255).to(torch.int32)
