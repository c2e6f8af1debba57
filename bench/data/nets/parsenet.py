"""ParseNet (PSFRGAN's parsing network as facexlib 0.3.0 ships it): 19-class face parsing logits.

Encoder of stride-2 residual blocks down to ``min_feat_size``, a residual body, a nearest-upsampling
decoder, then a 3x3 head; reflection padding everywhere, BatchNorm + LeakyReLU(0.2) in the blocks.
Only the parsing head is evaluated (facexlib's paste-back uses ``out[0]``); the image head is kept
as a parameter holder so the released checkpoint loads strictly.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class _Norm(nn.Module):
    """BatchNorm under facexlib's ``norm.norm`` name, or nothing (no parameters) for ``kind='none'``."""

    def __init__(self, channels: int, kind: str) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels) if kind == "bn" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.norm is None else self.norm(x)


class ConvLayer(nn.Module):
    """[2x nearest up] -> reflection pad -> conv (stride 2 when down) -> [BN] -> [LeakyReLU 0.2]."""

    def __init__(self, cin: int, cout: int, scale: str = "none", norm: str = "none", act: bool = False) -> None:
        super().__init__()
        self.up = scale == "up"
        self.conv2d = nn.Conv2d(cin, cout, 3, 2 if scale == "down" else 1, bias=norm != "bn")
        self.norm = _Norm(cout, norm)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.norm(self.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect")))
        return F.leaky_relu(x, 0.2) if self.act else x


class ResidualBlock(nn.Module):
    """Two ConvLayers (the first activated) plus a shortcut: identity, or a plain ConvLayer when shapes change."""

    def __init__(self, cin: int, cout: int, scale: str = "none") -> None:
        super().__init__()
        self.shortcut_func = None if scale == "none" and cin == cout else ConvLayer(cin, cout, scale)
        first, second = {"down": ("none", "down"), "up": ("up", "none"), "none": ("none", "none")}[scale]
        self.conv1 = ConvLayer(cin, cout, first, norm="bn", act=True)
        self.conv2 = ConvLayer(cout, cout, second, norm="bn")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.shortcut_func is None else self.shortcut_func(x)
        return skip + self.conv2(self.conv1(x))


class ParseNet(nn.Module):
    """facexlib's ParseNet; ``ParseNet()`` is the released 512 -> 512, 19-class configuration."""

    def __init__(self, in_size: int = 512, out_size: int = 512, min_feat_size: int = 32, base_ch: int = 64,
                 parsing_ch: int = 19, res_depth: int = 10, ch_range: tuple[int, int] = (32, 256)) -> None:
        super().__init__()
        lo, hi = ch_range

        def clip(c: int) -> int:
            return max(lo, min(c, hi))

        min_feat_size = min(in_size, min_feat_size)
        down, up = (int(math.log2(s // min_feat_size)) for s in (in_size, out_size))
        enc: list[nn.Module] = [ConvLayer(3, base_ch)]
        ch = base_ch
        for _ in range(down):
            enc.append(ResidualBlock(clip(ch), clip(ch * 2), "down"))
            ch *= 2
        self.encoder = nn.Sequential(*enc)
        self.body = nn.Sequential(*(ResidualBlock(clip(ch), clip(ch)) for _ in range(res_depth)))
        dec = []
        for _ in range(up):
            dec.append(ResidualBlock(clip(ch), clip(ch // 2), "up"))
            ch //= 2
        self.decoder = nn.Sequential(*dec)
        self.out_img_conv = ConvLayer(clip(ch), 3)
        self.out_mask_conv = ConvLayer(clip(ch), parsing_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Parsing logits (N, parsing_ch, H, W) of images normalised to [-1, 1]."""
        feat = self.encoder(x)
        return self.out_mask_conv(self.decoder(feat + self.body(feat)))
