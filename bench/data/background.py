"""Background upsampling for whole photos: Real-ESRGAN x2 as the official face scripts run it.

:meth:`BackgroundUpsampler.enhance` reproduces ``RealESRGANer.enhance(bgr, outscale)[0]``
(xinntao/Real-ESRGAN ``realesrgan/utils.py``, PyPI ``realesrgan==0.3.0``) for 8-bit colour images,
taking and returning RGB: /255, reflect ``pre_pad`` at the bottom and right, reflect padding to a
multiple of 2 (x2 network), the network whole or in ``tile``-sized tiles each read with ``tile_pad``
context, the padding cropped off, clamp to [0, 1], ``round(x * 255)``, then a Lanczos-4 resize to
``outscale`` times the input when that differs from the network scale.

The official scripts build it as ``RealESRGANer(scale=2, tile=--bg_tile (400), pre_pad=0, half=on
CUDA)`` with ``tile_pad=40`` (CodeFormer's inference_codeformer.py) or ``tile_pad=10`` (GFPGAN's
inference_gfpgan.py); pass the one of the pipeline being reproduced.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from bench.data.nets.loading import NetWeights, load_weights
from bench.data.nets.rrdbnet import RRDBNet

#: tile_pad of the official scripts
TILE_PAD_CODEFORMER, TILE_PAD_GFPGAN = 40, 10


@dataclass(frozen=True)
class UpsamplerKind:
    """A background upsampler bfrbench can run: its catalogue asset and RRDBNet configuration."""

    weights: str
    net: dict[str, Any] = field(default_factory=dict)

    @property
    def scale(self) -> int:
        return int(self.net["scale"])


UPSAMPLERS: dict[str, UpsamplerKind] = {
    "realesrgan-x2": UpsamplerKind("realesrgan-x2", {"num_feat": 64, "num_block": 23, "num_grow_ch": 32, "scale": 2}),
}


class BackgroundUpsampler:
    """An x``scale`` super-resolution network with Real-ESRGAN's padding, tiling and output conventions."""

    def __init__(self, net: torch.nn.Module, scale: int, device: str | torch.device = "cpu", tile: int = 400,
                 tile_pad: int = 10, pre_pad: int = 0, half: bool = False, weights: NetWeights | None = None) -> None:
        if tile < 0 or tile_pad < 0 or pre_pad < 0:
            raise ValueError(f"tile, tile_pad and pre_pad must be >= 0, got {tile}, {tile_pad}, {pre_pad}")
        self.scale, self.tile, self.tile_pad, self.pre_pad, self.half = int(scale), int(tile), int(tile_pad), int(pre_pad), half
        self.device, self.weights = torch.device(device), weights
        #: RealESRGANer pads to a multiple of 2 for x2 networks and of 4 for x1 ones
        self.mod = {2: 2, 1: 4}.get(self.scale, 1)
        if self.tile and (self.tile % self.mod or self.tile_pad % self.mod):
            raise ValueError(f"tile ({tile}) and tile_pad ({tile_pad}) must be multiples of {self.mod} for an "
                             f"x{self.scale} network (its pixel-unshuffle needs tiles of such sizes)")
        net = net.eval().requires_grad_(False).to(self.device)
        self.net = net.half() if half else net

    def _padded(self, rgb: np.ndarray) -> tuple[torch.Tensor, int, int]:
        """The input as (1, 3, H', W') in [0, 1] with pre_pad and mod padding; returns the mod padding too."""
        x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().div(255.0)[None].to(self.device)
        if self.half:
            x = x.half()
        if self.pre_pad:
            x = F.pad(x, (0, self.pre_pad, 0, self.pre_pad), mode="reflect")
        pad_h, pad_w = (-x.shape[2]) % self.mod, (-x.shape[3]) % self.mod
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        return x, pad_h, pad_w

    def _tiled(self, x: torch.Tensor) -> torch.Tensor:
        """The network over ``tile``-sized tiles, each read with ``tile_pad`` context, the context cut off."""
        _, c, h, w = x.shape
        s, t, p = self.scale, self.tile, self.tile_pad
        out = x.new_zeros((1, c, h * s, w * s))
        for ty in range(math.ceil(h / t)):
            for tx in range(math.ceil(w / t)):
                y0, x0 = ty * t, tx * t
                y1, x1 = min(y0 + t, h), min(x0 + t, w)
                py0, px0 = max(y0 - p, 0), max(x0 - p, 0)
                piece = self.net(x[:, :, py0:min(y1 + p, h), px0:min(x1 + p, w)])
                oy, ox = (y0 - py0) * s, (x0 - px0) * s
                out[:, :, y0 * s:y1 * s, x0 * s:x1 * s] = piece[:, :, oy:oy + (y1 - y0) * s, ox:ox + (x1 - x0) * s]
        return out

    @torch.no_grad()
    def enhance(self, rgb: np.ndarray, outscale: float | None = None) -> np.ndarray:
        """``rgb`` (H, W, 3) uint8 upsampled to ``outscale`` times its size (the network's scale if None)."""
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {rgb.dtype} {rgb.shape}")
        h, w = rgb.shape[:2]
        if min(h, w) <= self.pre_pad or min(h, w) < 2:
            raise ValueError(f"a {w}x{h} image is too small for the upsampler's reflect padding (pre_pad "
                             f"{self.pre_pad}): both sides must exceed it and be at least 2 pixels")
        x, pad_h, pad_w = self._padded(rgb)
        y = self._tiled(x) if self.tile > 0 else self.net(x)
        s = self.scale
        y = y[:, :, : y.shape[2] - pad_h * s, : y.shape[3] - pad_w * s]
        if self.pre_pad:
            y = y[:, :, : y.shape[2] - self.pre_pad * s, : y.shape[3] - self.pre_pad * s]
        out = y[0].float().cpu().clamp_(0, 1).numpy().transpose(1, 2, 0)
        out = (out * 255.0).round().astype(np.uint8)
        if outscale is not None and outscale != float(s):
            out = cv2.resize(out, (int(w * outscale), int(h * outscale)), interpolation=cv2.INTER_LANCZOS4)
        return out


def load_background_upsampler(name: str = "realesrgan-x2", device: str | torch.device = "cpu",
                              weights: str | os.PathLike[str] | None = None, random_weights: bool = False,
                              tile: int = 400, tile_pad: int = 10, half: bool = False, pre_pad: int = 0,
                              seed: int = 0) -> BackgroundUpsampler:
    """Real-ESRGAN x2plus with its released weights (``params_ema``, as RealESRGANer prefers), strict."""
    if name not in UPSAMPLERS:
        raise ValueError(f"unknown background upsampler {name!r}; choose one of {sorted(UPSAMPLERS)}")
    kind = UPSAMPLERS[name]
    net = RRDBNet(**kind.net)
    info = load_weights(net, kind.weights, weights, random_weights, seed=seed, key=("params_ema", "params"))
    return BackgroundUpsampler(net, kind.scale, device=device, tile=tile, tile_pad=tile_pad, pre_pad=pre_pad,
                               half=half, weights=info)


__all__ = ["BackgroundUpsampler", "load_background_upsampler", "UPSAMPLERS", "TILE_PAD_CODEFORMER", "TILE_PAD_GFPGAN"]
