"""PMRF's posterior-mean predictor: SwinIR (``swinir_L``: 8 RSTBs of 6 Swin blocks, width 180) for 512 faces.

Written for bfrbench from PMRF's ``arch/swinir/swinir.py`` (ohayonguy/PMRF b6f16a4, DifFace's variant): the image
is pixel-unshuffled by 8 (512 -> 64 x 64 x 192), runs through the residual Swin groups with 8 x 8 windows, and
comes back through three nearest x2 upsamplings and convolutions. Tensor names follow the official module so the
released ``mmse_model.*`` weights load strictly (the relative-position index and shift masks are buffers there).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

RGB_MEAN = (0.4488, 0.4371, 0.4040)


@dataclass(frozen=True)
class SwinIRConfig:
    """PMRF's ``swinir_L``; ``img_size`` is the feature map the shift masks are stored for (512 / 8)."""

    embed_dim: int = 180
    depths: tuple[int, ...] = (6,) * 8
    num_heads: tuple[int, ...] = (6,) * 8
    window_size: int = 8
    mlp_ratio: float = 2.0
    scale: int = 8
    img_size: int = 64
    num_feat: int = 64


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * nW, ws, ws, C), windows in row-major order."""
    b, h, w, c = x.shape
    return x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws, ws, c)


def window_reverse(windows: torch.Tensor, ws: int, h: int, w: int) -> torch.Tensor:
    """The inverse of :func:`window_partition`."""
    b = windows.shape[0] // ((h // ws) * (w // ws))
    return windows.view(b, h // ws, w // ws, ws, ws, -1).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, -1)


@lru_cache(maxsize=8)
def _relative_position_index(ws: int) -> torch.Tensor:
    coords = torch.stack(torch.meshgrid(torch.arange(ws, device="cpu"), torch.arange(ws, device="cpu"),
                                        indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (ws - 1)
    return rel[..., 0] * (2 * ws - 1) + rel[..., 1]


def relative_position_index(ws: int) -> torch.Tensor:
    """(ws^2, ws^2) index into the (2 ws - 1)^2 bias table for every query/key pair of a window (built on the CPU)."""
    return _relative_position_index(ws).clone()


def shift_mask(h: int, w: int, ws: int, shift: int) -> torch.Tensor:
    """(nW, ws^2, ws^2) additive mask (0 or -100) that keeps shifted windows from mixing wrapped-around regions.

    Built on the CPU (cached), whatever the default device."""
    return _shift_mask(h, w, ws, shift).clone()


@lru_cache(maxsize=8)
def _shift_mask(h: int, w: int, ws: int, shift: int) -> torch.Tensor:
    region = torch.zeros(1, h, w, 1, device="cpu")
    cuts = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
    n = 0
    for rs in cuts:
        for cs in cuts:
            region[:, rs, cs, :] = n
            n += 1
    r = window_partition(region, ws).view(-1, ws * ws)
    diff = r[:, None, :] - r[:, :, None]
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


class WindowAttention(nn.Module):
    """Multi-head attention inside windows, with a learnt relative-position bias."""

    def __init__(self, dim: int, ws: int, heads: int) -> None:
        super().__init__()
        self.ws, self.heads = ws, heads
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * ws - 1) ** 2, heads))
        self.register_buffer("relative_position_index", relative_position_index(ws))
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        bw, n, c = x.shape
        q, k, v = self.qkv(x).reshape(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1)
        attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = (attn.view(bw // nw, nw, self.heads, n, n) + mask.unsqueeze(1).unsqueeze(0)).view(-1, self.heads, n, n)
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(bw, n, c))


class Mlp(nn.Module):
    """Linear, GELU, linear."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwinBlock(nn.Module):
    """(Shifted-)window attention and MLP, pre-norm residuals; odd blocks shift by half a window."""

    def __init__(self, dim: int, resolution: int, heads: int, ws: int, shift: int, mlp_ratio: float) -> None:
        super().__init__()
        if resolution <= ws:
            ws, shift = resolution, 0
        self.ws, self.shift, self.resolution = ws, shift, resolution
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, ws, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.register_buffer("attn_mask", shift_mask(resolution, resolution, ws, shift) if shift else None)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        h, w = size
        b, _, c = x.shape
        y = self.norm1(x).view(b, h, w, c)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        mask = self.attn_mask
        if self.shift and (h, w) != (self.resolution, self.resolution):
            mask = shift_mask(h, w, self.ws, self.shift).to(x.device)
        y = self.attn(window_partition(y, self.ws).view(-1, self.ws * self.ws, c), mask)
        y = window_reverse(y.view(-1, self.ws, self.ws, c), self.ws, h, w)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + y.reshape(b, h * w, c)
        return x + self.mlp(self.norm2(x))


class BasicLayer(nn.Module):
    """A run of Swin blocks, alternating plain and shifted windows."""

    def __init__(self, dim: int, resolution: int, depth: int, heads: int, ws: int, mlp_ratio: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([SwinBlock(dim, resolution, heads, ws, 0 if i % 2 == 0 else ws // 2, mlp_ratio)
                                     for i in range(depth)])

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x, size)
        return x


class RSTB(nn.Module):
    """Residual Swin group: blocks, back to an image for a 3x3 conv, residual around it all."""

    def __init__(self, dim: int, resolution: int, depth: int, heads: int, ws: int, mlp_ratio: float) -> None:
        super().__init__()
        self.residual_group = BasicLayer(dim, resolution, depth, heads, ws, mlp_ratio)
        self.conv = nn.Conv2d(dim, dim, 3, 1, 1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        y = self.residual_group(x, size)
        b, _, c = y.shape
        y = self.conv(y.transpose(1, 2).reshape(b, c, *size))
        return y.flatten(2).transpose(1, 2) + x


class PatchEmbed(nn.Module):
    """(B, C, H, W) -> (B, H*W, C), then a layer norm."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.flatten(2).transpose(1, 2))


class SwinIR(nn.Module):
    """(B, 3, H, W) in [0, 1] -> the same size (unshuffle by ``scale``, Swin body, nearest+conv back up)."""

    def __init__(self, cfg: SwinIRConfig = SwinIRConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        d, s = cfg.embed_dim, cfg.scale
        self.conv_first = nn.Sequential(nn.PixelUnshuffle(s), nn.Conv2d(3 * s * s, d, 3, 1, 1))
        self.patch_embed = PatchEmbed(d)
        self.layers = nn.ModuleList([RSTB(d, cfg.img_size, depth, heads, cfg.window_size, cfg.mlp_ratio)
                                     for depth, heads in zip(cfg.depths, cfg.num_heads)])
        self.norm = nn.LayerNorm(d)
        self.conv_after_body = nn.Conv2d(d, d, 3, 1, 1)
        f = cfg.num_feat
        self.conv_before_upsample = nn.Sequential(nn.Conv2d(d, f, 3, 1, 1), nn.LeakyReLU(inplace=True))
        self.ups = [f"conv_up{i + 1}" for i in range(s.bit_length() - 1)]
        for name in self.ups:
            setattr(self, name, nn.Conv2d(f, f, 3, 1, 1))
        self.conv_hr = nn.Conv2d(f, f, 3, 1, 1)
        self.conv_last = nn.Conv2d(f, 3, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        ws = self.cfg.window_size
        x = F.pad(x, (0, (ws - w % ws) % ws, 0, (ws - h % ws) % ws), "reflect")
        mean = torch.tensor(RGB_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x = self.conv_first(x - mean)
        size = (x.shape[2], x.shape[3])
        y = self.patch_embed(x)
        for layer in self.layers:
            y = layer(y, size)
        y = self.norm(y)
        b, _, c = y.shape
        x = self.conv_after_body(y.transpose(1, 2).reshape(b, c, *size)) + x
        x = self.conv_before_upsample(x)
        for name in self.ups:
            x = F.leaky_relu(getattr(self, name)(F.interpolate(x, scale_factor=2, mode="nearest")), 0.2)
        # the official crop to (H * scale, W * scale) never cuts here: unshuffled by ``scale`` first, the output
        # has the padded input's size
        return self.conv_last(F.leaky_relu(self.conv_hr(x), 0.2)) + mean
