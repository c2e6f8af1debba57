"""PMRF's velocity network: the hourglass diffusion transformer (HDiT, k-diffusion's ``image_transformer_v2``).

Written for bfrbench from PMRF's ``arch/hourglass/image_transformer_v2.py`` (ohayonguy/PMRF b6f16a4), with the
same tensor names so the released ``model.*`` weights load strictly. Tokens are (B, H, W, C); every block is a
pre-norm residual with an adaptive RMS norm driven by the time embedding; attention is cosine-similarity with a
learnt per-head scale and axial rotary positions, neighbourhood (NATTEN rule, pure torch) at the high-resolution
levels and global at the bottom. Inference only: no dropout, checkpointing or flash-attention paths.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from methods.pmrf.neighborhood import neighborhood_attention


@dataclass(frozen=True)
class HDiTLevel:
    """One hourglass level: ``depth`` layers of ``width`` channels; ``kernel_size`` 0 means global attention."""

    depth: int
    width: int
    d_head: int = 64
    kernel_size: int = 7


@dataclass(frozen=True)
class HDiTConfig:
    """The whole network (PMRF's ``hdit_ImageNet256Sp4``: widths 256/512/1024, depths 2/2/8, patch 4)."""

    levels: tuple[HDiTLevel, ...]
    mapping_depth: int = 2
    mapping_width: int = 768
    in_channels: int = 3
    out_channels: int = 3
    patch_size: int = 4


PMRF_HDIT = HDiTConfig(levels=(HDiTLevel(2, 256), HDiTLevel(2, 512), HDiTLevel(8, 1024, kernel_size=0)))


def _float_type(*tensors: torch.Tensor) -> torch.dtype:
    dtype = torch.float32
    for t in tensors:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def rms_norm(x: torch.Tensor, scale: torch.Tensor, eps: float) -> torch.Tensor:
    """x / rms(x) * scale, the statistics in at least fp32."""
    dtype = _float_type(x, scale)
    factor = scale.to(dtype) * torch.rsqrt(x.to(dtype).pow(2).mean(-1, keepdim=True) + eps)
    return x * factor.to(x.dtype)


def cosine_qk(q: torch.Tensor, k: torch.Tensor, scale: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """q and k scaled to norm sqrt(scale) each, so q.k is scale times their cosine similarity."""
    dtype = _float_type(q, k, scale)
    root = scale.to(dtype).sqrt()
    sq = root * torch.rsqrt(q.to(dtype).pow(2).sum(-1, keepdim=True) + eps)
    sk = root * torch.rsqrt(k.to(dtype).pow(2).sum(-1, keepdim=True) + eps)
    return q * sq.to(q.dtype), k * sk.to(k.dtype)


def rotate(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Rotary embedding on the first ``2 * theta.shape[-1]`` features (halves paired), the rest unchanged."""
    d = theta.shape[-1]
    dtype = _float_type(x, theta)
    x1, x2 = x[..., :d].to(dtype), x[..., d:2 * d].to(dtype)
    cos, sin = theta.to(dtype).cos(), theta.to(dtype).sin()
    return torch.cat(((x1 * cos - x2 * sin).to(x.dtype), (x2 * cos + x1 * sin).to(x.dtype), x[..., 2 * d:]), dim=-1)


def axial_positions(h: int, w: int, device: torch.device | None = None) -> torch.Tensor:
    """(H, W, 2) pixel-centre coordinates in [-1, 1] (the longer side spans it; aspect kept)."""
    y0, y1, x0, x1 = -1.0, 1.0, -1.0, 1.0
    if w > h:
        y0, y1 = -h / w, h / w
    elif h > w:
        x0, x1 = -w / h, w / h

    def centres(a: float, b: float, n: int) -> torch.Tensor:
        edges = torch.linspace(a, b, n + 1, device=device)
        return (edges[:-1] + edges[1:]) / 2

    grid = torch.meshgrid(centres(y0, y1, h), centres(x0, x1, w), indexing="ij")
    return torch.stack(grid, dim=-1)


def halve_positions(pos: torch.Tensor) -> torch.Tensor:
    """(H, W, 2) -> (H/2, W/2, 2): the mean of each 2x2 block (the merged token's position)."""
    h, w, e = pos.shape
    return pos.reshape(h // 2, 2, w // 2, 2, e).mean(dim=(1, 3))


class RMSNorm(nn.Module):
    """RMS norm with a learnt per-channel scale."""

    def __init__(self, features: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.scale, self.eps)


class AdaRMSNorm(nn.Module):
    """RMS norm whose scale is 1 + a linear map of the conditioning vector."""

    def __init__(self, features: int, cond_features: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.linear = nn.Linear(cond_features, features, bias=False)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.linear(cond)[:, None, None, :] + 1, self.eps)


class GEGLU(nn.Linear):
    """Linear to 2 * out features, then value * gelu(gate)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features * 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = (x @ self.weight.mT).chunk(2, dim=-1)
        return value * F.gelu(gate)


class AxialRoPE(nn.Module):
    """Per-head rotary angles from (y, x) positions: log-spaced frequencies from pi to 10 pi, heads interleaved."""

    def __init__(self, dim: int, n_heads: int) -> None:
        super().__init__()
        freqs = torch.linspace(math.log(math.pi), math.log(10.0 * math.pi), n_heads * dim // 4 + 1)[:-1].exp()
        self.register_buffer("freqs", freqs.view(dim // 4, n_heads).T.contiguous())

    def forward(self, pos: torch.Tensor) -> torch.Tensor:
        """(..., 2) positions -> (..., heads, dim // 2) angles (the y half, then the x half)."""
        f = self.freqs.to(pos.dtype)
        return torch.cat((pos[..., None, 0:1] * f, pos[..., None, 1:2] * f), dim=-1)


class SelfAttention(nn.Module):
    """Cosine-similarity attention with rotary positions: neighbourhood (``kernel_size`` > 0) or global."""

    def __init__(self, d_model: int, d_head: int, cond_features: int, kernel_size: int) -> None:
        super().__init__()
        self.d_head, self.n_heads, self.kernel_size = d_head, d_model // d_head, kernel_size
        self.norm = AdaRMSNorm(d_model, cond_features)
        self.qkv_proj = nn.Linear(d_model, d_model * 3, bias=False)
        self.scale = nn.Parameter(torch.full([self.n_heads], 10.0))
        self.pos_emb = AxialRoPE(d_head // 2, self.n_heads)
        self.out_proj = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        qkv = self.qkv_proj(self.norm(x, cond))
        # (B, H, W, 3 * heads * e) -> 3 x (B, heads, H, W, e)
        q, k, v = qkv.view(b, h, w, 3, self.n_heads, self.d_head).permute(3, 0, 4, 1, 2, 5).unbind(0)
        theta = self.pos_emb(pos.to(qkv.dtype)).movedim(-2, -4)  # (heads, H, W, e/4)
        if self.kernel_size:
            q, k = cosine_qk(q, k, self.scale[:, None, None, None])
            q, k = rotate(q, theta), rotate(k, theta)
            y = neighborhood_attention(q, k, v, self.kernel_size, scale=1.0)
        else:
            q, k = cosine_qk(q, k, self.scale[:, None, None, None])
            q, k = rotate(q, theta).flatten(2, 3), rotate(k, theta).flatten(2, 3)
            y = F.scaled_dot_product_attention(q, k, v.flatten(2, 3), scale=1.0).view(b, self.n_heads, h, w, -1)
        y = y.permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)
        return self.out_proj(y) + x


class FeedForward(nn.Module):
    """Adaptive RMS norm, GEGLU up, linear down, residual."""

    def __init__(self, d_model: int, d_ff: int, cond_features: int) -> None:
        super().__init__()
        self.norm = AdaRMSNorm(d_model, cond_features)
        self.up_proj = GEGLU(d_model, d_ff)
        self.down_proj = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.up_proj(self.norm(x, cond))) + x


class TransformerLayer(nn.Module):
    """Attention then feed-forward (d_ff = 3 x width, as PMRF's config)."""

    def __init__(self, level: HDiTLevel, cond_features: int) -> None:
        super().__init__()
        self.self_attn = SelfAttention(level.width, level.d_head, cond_features, level.kernel_size)
        self.ff = FeedForward(level.width, level.width * 3, cond_features)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.ff(self.self_attn(x, pos, cond), cond)


class Level(nn.ModuleList):
    """A stack of transformer layers at one resolution."""

    def forward(self, x: torch.Tensor, pos: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, pos, cond)
        return x


class MappingBlock(nn.Module):
    """The mapping network's residual GEGLU block."""

    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.norm = RMSNorm(d_model)
        self.up_proj = GEGLU(d_model, d_ff)
        self.down_proj = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.up_proj(self.norm(x))) + x


class MappingNetwork(nn.Module):
    """Time (+ augmentation) embedding -> the conditioning vector every adaptive norm reads."""

    def __init__(self, depth: int, width: int) -> None:
        super().__init__()
        self.in_norm = RMSNorm(width)
        self.blocks = nn.ModuleList([MappingBlock(width, width * 3) for _ in range(depth)])
        self.out_norm = RMSNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.in_norm(x)
        for block in self.blocks:
            x = block(x)
        return self.out_norm(x)


class FourierFeatures(nn.Module):
    """cos/sin of 2 pi x W for a fixed random W (a buffer in the checkpoint)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.register_buffer("weight", torch.zeros(out_features // 2, in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = 2 * math.pi * x @ self.weight.T
        return torch.cat([f.cos(), f.sin()], dim=-1)


class TokenMerge(nn.Module):
    """(B, H, W, C) -> (B, H/p, W/p, out): each p x p patch (rows, then columns, then channels) through a linear."""

    def __init__(self, in_features: int, out_features: int, patch: int = 2) -> None:
        super().__init__()
        self.p = patch
        self.proj = nn.Linear(in_features * patch * patch, out_features, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        p = self.p
        x = x.reshape(b, h // p, p, w // p, p, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h // p, w // p, p * p * c)
        return self.proj(x)


class TokenSplit(nn.Module):
    """The inverse of :class:`TokenMerge`; with ``skip``, lerp from the skip towards it by a learnt factor."""

    def __init__(self, in_features: int, out_features: int, patch: int = 2, skip: bool = True) -> None:
        super().__init__()
        self.p = patch
        self.proj = nn.Linear(in_features, out_features * patch * patch, bias=False)
        if skip:
            self.fac = nn.Parameter(torch.ones(1) * 0.5)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        x = self.proj(x)
        b, h, w, _ = x.shape
        p = self.p
        x = x.reshape(b, h, w, p, p, -1).permute(0, 1, 3, 2, 4, 5).reshape(b, h * p, w * p, -1)
        return x if skip is None else torch.lerp(skip, x, self.fac.to(x.dtype))


class HDiT(nn.Module):
    """The hourglass transformer: v(x_t, t) for (B, C, H, W) images and (B,) times."""

    def __init__(self, cfg: HDiTConfig = PMRF_HDIT) -> None:
        super().__init__()
        first, mw = cfg.levels[0].width, cfg.mapping_width
        self.patch_in = TokenMerge(cfg.in_channels, first, cfg.patch_size)
        self.time_emb = FourierFeatures(1, mw)
        self.time_in_proj = nn.Linear(mw, mw, bias=False)
        self.aug_emb = FourierFeatures(9, mw)
        self.aug_in_proj = nn.Linear(mw, mw, bias=False)
        self.mapping = MappingNetwork(cfg.mapping_depth, mw)
        self.down_levels, self.up_levels = nn.ModuleList(), nn.ModuleList()
        for level in cfg.levels[:-1]:
            self.down_levels.append(Level([TransformerLayer(level, mw) for _ in range(level.depth)]))
            self.up_levels.append(Level([TransformerLayer(level, mw) for _ in range(level.depth)]))
        self.mid_level = Level([TransformerLayer(cfg.levels[-1], mw) for _ in range(cfg.levels[-1].depth)])
        pairs = list(zip(cfg.levels[:-1], cfg.levels[1:]))
        self.merges = nn.ModuleList([TokenMerge(a.width, b.width) for a, b in pairs])
        self.splits = nn.ModuleList([TokenSplit(b.width, a.width) for a, b in pairs])
        self.out_norm = RMSNorm(first)
        self.patch_out = TokenSplit(first, cfg.out_channels, cfg.patch_size, skip=False)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x = self.patch_in(x.movedim(-3, -1))
        pos = axial_positions(x.shape[-3], x.shape[-2], x.device)
        time = self.time_in_proj(self.time_emb(t[..., None]))
        aug = self.aug_in_proj(self.aug_emb(x.new_zeros([x.shape[0], 9])))
        cond = self.mapping(time + aug)
        skips = []
        for level, merge in zip(self.down_levels, self.merges):
            x = level(x, pos, cond)
            skips.append((x, pos))
            x, pos = merge(x), halve_positions(pos)
        x = self.mid_level(x, pos, cond)
        for level, split, (skip, pos) in reversed(list(zip(self.up_levels, self.splits, skips))):
            x = level(split(x, skip), pos, cond)
        return self.patch_out(self.out_norm(x)).movedim(-1, -3)
