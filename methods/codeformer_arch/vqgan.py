"""VQGAN building blocks of CodeFormer: residual and attention blocks, encoder and generator.

Layer order and tensor names follow the released checkpoints (``encoder.blocks.N...``,
``generator.blocks.N...``): GroupNorm(32, eps=1e-6), swish, asymmetric (0, 1, 0, 1) zero padding
before each stride-2 downsampling conv, nearest x2 upsampling, single-head spatial attention at
the latent resolution.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from methods.codeformer_arch.config import NetConfig


def group_norm(channels: int, groups: int = 32, eps: float = 1e-6) -> nn.GroupNorm:
    """The VQGAN normalisation layer (affine GroupNorm, eps 1e-6)."""
    return nn.GroupNorm(num_groups=groups, num_channels=channels, eps=eps, affine=True)


def swish(x: torch.Tensor, exact: bool = True) -> torch.Tensor:
    """x * sigmoid(x): as the reference writes it (``exact``), or the fused SiLU kernel."""
    return x * torch.sigmoid(x) if exact else F.silu(x)


class Downsample(nn.Module):
    """Stride-2 3x3 conv after zero padding right and bottom by one pixel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0))


class Upsample(nn.Module):
    """Nearest-neighbour x2 followed by a 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class ResBlock(nn.Module):
    """norm-swish-conv twice, plus a 1x1 projection of the skip when channels change."""

    def __init__(
        self, in_channels: int, out_channels: int | None = None, groups: int = 32, eps: float = 1e-6, exact: bool = True
    ) -> None:
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        self.exact = exact
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm1 = group_norm(in_channels, groups, eps)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.norm2 = group_norm(out_channels, groups, eps)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1)
        if in_channels != out_channels:
            self.conv_out = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=1, padding=0)

    def forward(self, x_in: torch.Tensor) -> torch.Tensor:
        x = self.conv1(swish(self.norm1(x_in), self.exact))
        x = self.conv2(swish(self.norm2(x), self.exact))
        if self.in_channels != self.out_channels:
            x_in = self.conv_out(x_in)
        return x + x_in


class AttnBlock(nn.Module):
    """Single-head self-attention over all spatial positions, 1x1-conv q/k/v/proj, residual."""

    def __init__(self, channels: int, groups: int = 32, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm = group_norm(channels, groups, eps)
        self.q = nn.Conv2d(channels, channels, kernel_size=1)
        self.k = nn.Conv2d(channels, channels, kernel_size=1)
        self.v = nn.Conv2d(channels, channels, kernel_size=1)
        self.proj_out = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        b, c, hh, ww = x.shape
        q = self.q(h).reshape(b, c, hh * ww)
        k = self.k(h).reshape(b, c, hh * ww)
        v = self.v(h).reshape(b, c, hh * ww)
        # attn[b, i, j] = softmax_j(q_i . k_j / sqrt(c)); out_i = sum_j attn[i, j] v_j
        attn = torch.softmax(torch.bmm(q.transpose(1, 2), k) * (int(c) ** -0.5), dim=2)
        h = torch.bmm(v, attn.transpose(1, 2)).reshape(b, c, hh, ww)
        return x + self.proj_out(h)


class Encoder(nn.Module):
    """Image -> latent (emb_dim channels at 1/2^(levels-1) resolution); ``fuse_index`` marks skip taps."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        g, eps, ex = cfg.norm_groups, cfg.norm_eps, cfg.exact_ops
        blocks: list[nn.Module] = [nn.Conv2d(cfg.in_channels, cfg.nf, kernel_size=3, stride=1, padding=1)]
        #: feature side -> index of the block after which the encoder feature is tapped for CFT
        #: (the last residual block of that level, before its attention block)
        self.fuse_index: dict[int, int] = {}
        in_mult = (1,) + tuple(cfg.ch_mult)
        ch = cfg.nf
        for level, res in enumerate(cfg.resolutions):
            ch = cfg.nf * in_mult[level]
            out_ch = cfg.nf * cfg.ch_mult[level]
            for _ in range(cfg.res_blocks):
                blocks.append(ResBlock(ch, out_ch, g, eps, ex))
                self.fuse_index[res] = len(blocks) - 1
                ch = out_ch
                if res in cfg.attn_resolutions:
                    blocks.append(AttnBlock(ch, g, eps))
            if level != len(cfg.ch_mult) - 1:
                blocks.append(Downsample(ch))
        blocks += [ResBlock(ch, ch, g, eps, ex), AttnBlock(ch, g, eps), ResBlock(ch, ch, g, eps, ex)]
        blocks += [group_norm(ch, g, eps), nn.Conv2d(ch, cfg.emb_dim, kernel_size=3, stride=1, padding=1)]
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class Generator(nn.Module):
    """Latent -> image (the VQGAN decoder); ``fuse_index`` marks where CFT blocks act."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        g, eps, ex = cfg.norm_groups, cfg.norm_eps, cfg.exact_ops
        ch = cfg.nf * cfg.ch_mult[-1]
        blocks: list[nn.Module] = [nn.Conv2d(cfg.emb_dim, ch, kernel_size=3, stride=1, padding=1)]
        blocks += [ResBlock(ch, ch, g, eps, ex), AttnBlock(ch, g, eps), ResBlock(ch, ch, g, eps, ex)]
        #: feature side -> index of the block after which the CFT block fuses the encoder feature:
        #: the first residual block of a level, or the last one (before attention) at the latent size
        self.fuse_index: dict[int, int] = {}
        levels = list(range(len(cfg.ch_mult)))[::-1]
        for level in levels:
            res = cfg.resolutions[level]
            out_ch = cfg.nf * cfg.ch_mult[level]
            for j in range(cfg.res_blocks):
                blocks.append(ResBlock(ch, out_ch, g, eps, ex))
                if j == 0 or res == cfg.latent_res:
                    self.fuse_index[res] = len(blocks) - 1
                ch = out_ch
                if res in cfg.attn_resolutions:
                    blocks.append(AttnBlock(ch, g, eps))
            if level != 0:
                blocks.append(Upsample(ch))
        blocks += [group_norm(ch, g, eps), nn.Conv2d(ch, cfg.in_channels, kernel_size=3, stride=1, padding=1)]
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x
