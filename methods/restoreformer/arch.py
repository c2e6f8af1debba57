"""RestoreFormer / RestoreFormer++: a VQ autoencoder whose decoder cross-attends to encoder features.

Written to reproduce wzhouxiff/RestoreFormerPlusPlus ``VQVAEGANMultiHeadTransformer`` with the same
parameter names, so the released ``.ckpt`` weights (``state_dict``, ``vqvae.`` prefix removed) load with
``strict=True``. One class covers both releases:

* RestoreFormer:   ``head_size=8, ex_multi_scale_num=0`` (decoder attention at 16x16 only);
* RestoreFormer++: ``head_size=4, ex_multi_scale_num=1`` (decoder attention at 16x16 and 32x32).

In the decoder's multi-head cross-attention the queries come from the encoder feature (the degraded
face) and the keys/values from the decoder feature (the codebook prior), as in the official code.
Inputs may be any multiple of 32 pixels; attention placement is fixed by ``resolution`` at build time.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


def _swish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


class Upsample(nn.Module):
    """Nearest x2 then a 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Downsample(nn.Module):
    """Stride-2 3x3 conv after padding one pixel right and bottom (taming-transformers style)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 2, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0))


class ResnetBlock(nn.Module):
    """GroupNorm-swish-conv twice, with a 1x1 ``nin_shortcut`` when the width changes."""

    def __init__(self, in_channels: int, out_channels: int | None = None) -> None:
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        self.norm1 = _norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.norm2 = _norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(_swish(self.norm1(x)))
        h = self.conv2(_swish(self.norm2(h)))
        if self.nin_shortcut is not None:
            x = self.nin_shortcut(x)
        return x + h


class MultiHeadAttnBlock(nn.Module):
    """Multi-head (cross-)attention over spatial positions with 1x1-conv projections.

    Self-attention when ``y`` is None; otherwise queries come from ``norm2(y)`` and keys/values from
    ``norm1(x)``. Residual: ``x + proj_out(attention)``.
    """

    def __init__(self, channels: int, head_size: int = 1) -> None:
        super().__init__()
        if channels % head_size:
            raise ValueError(f"{channels} channels cannot be split into {head_size} heads")
        self.head_size, self.att_size = head_size, channels // head_size
        self.norm1 = _norm(channels)
        self.norm2 = _norm(channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h_ = self.norm1(x)
        y = h_ if y is None else self.norm2(y)
        b, c, h, w = x.shape
        heads = (b, self.head_size, self.att_size, h * w)
        q = self.q(y).reshape(heads).transpose(2, 3)  # b, head, hw, att
        k = self.k(h_).reshape(heads)  # b, head, att, hw
        v = self.v(h_).reshape(heads).transpose(2, 3)
        attn = torch.softmax(torch.matmul(q * self.att_size**-0.5, k), dim=3)
        out = torch.matmul(attn, v)  # b, head, hw, att
        out = out.permute(0, 1, 3, 2).reshape(b, c, h, w)
        return x + self.proj_out(out)


class VectorQuantizer(nn.Module):
    """Nearest-codebook-entry quantisation (squared L2, first index on ties), in float32.

    Returns the quantised latent with the straight-through gradient (``z + (z_q - z).detach()``, as
    the official code) and the code indices.
    """

    def __init__(self, n_e: int, e_dim: int) -> None:
        super().__init__()
        self.n_e, self.e_dim = n_e, e_dim
        self.embedding = nn.Embedding(n_e, e_dim)
        self.embedding.weight.data.uniform_(-1.0 / n_e, 1.0 / n_e)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (B, C, H, W) -> (quantised z, indices (B, H, W))."""
        with torch.autocast(z.device.type, enabled=False):
            z = z.float().permute(0, 2, 3, 1).contiguous()
            flat = z.view(-1, self.e_dim)
            emb = self.embedding.weight.float()
            # the official expansion |z|^2 + |e|^2 - 2 z.e, so near-ties resolve as they do there
            d = torch.sum(flat**2, dim=1, keepdim=True) + torch.sum(emb**2, dim=1) - 2 * torch.matmul(flat, emb.t())
            idx = torch.argmin(d, dim=1)
            z_q = emb[idx].view(z.shape)
            z_q = z + (z_q - z).detach()  # straight-through gradient, and the official rounding
            return z_q.permute(0, 3, 1, 2).contiguous(), idx.view(z.shape[:3])


class _Level(nn.Module):
    """One resolution level: residual blocks, their attention blocks and an optional resampler."""

    def __init__(self) -> None:
        super().__init__()
        self.block = nn.ModuleList()
        self.attn = nn.ModuleList()


class _Mid(nn.Module):
    def __init__(self, channels: int, head_size: int) -> None:
        super().__init__()
        self.block_1 = ResnetBlock(channels)
        self.attn_1 = MultiHeadAttnBlock(channels, head_size)
        self.block_2 = ResnetBlock(channels)


class MultiHeadEncoder(nn.Module):
    """Downsampling encoder; returns the latent and the features the decoder attends to."""

    def __init__(
        self,
        ch: int,
        ch_mult: tuple[int, ...],
        num_res_blocks: int,
        attn_resolutions: tuple[int, ...],
        in_channels: int,
        resolution: int,
        z_channels: int,
        head_size: int,
    ) -> None:
        super().__init__()
        self.num_res_blocks = num_res_blocks
        self.conv_in = nn.Conv2d(in_channels, ch, 3, 1, 1)
        in_mult = (1,) + tuple(ch_mult)
        curr_res = resolution
        self.down = nn.ModuleList()
        for i, mult in enumerate(ch_mult):
            level = _Level()
            block_in = ch * in_mult[i]
            for _ in range(num_res_blocks):
                level.block.append(ResnetBlock(block_in, ch * mult))
                block_in = ch * mult
                if curr_res in attn_resolutions:
                    level.attn.append(MultiHeadAttnBlock(block_in, head_size))
            if i != len(ch_mult) - 1:
                level.downsample = Downsample(block_in)
                curr_res //= 2
            self.down.append(level)
        self.mid = _Mid(block_in, head_size)
        self.norm_out = _norm(block_in)
        self.conv_out = nn.Conv2d(block_in, z_channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """-> (latent, per-level features for the decoder, mid feature).

        ``feats[i]`` is level i's output before downsampling; for the last level (which does not
        downsample) it is the output of ``mid.block_1``, as the official code wires it.
        """
        h = self.conv_in(x)
        feats: list[torch.Tensor] = []
        for level in self.down:
            for j, block in enumerate(level.block):
                h = block(h)
                if len(level.attn):
                    h = level.attn[j](h)
            if hasattr(level, "downsample"):
                feats.append(h)
                h = level.downsample(h)
        h = self.mid.block_1(h)
        feats.append(h)
        h = self.mid.attn_1(h)
        h = self.mid.block_2(h)
        mid = h
        h = self.conv_out(_swish(self.norm_out(h)))
        return h, feats, mid


class MultiHeadDecoderTransformer(nn.Module):
    """Upsampling decoder whose attention blocks cross-attend to the matching encoder features."""

    def __init__(
        self,
        ch: int,
        out_ch: int,
        ch_mult: tuple[int, ...],
        num_res_blocks: int,
        attn_resolutions: tuple[int, ...],
        resolution: int,
        z_channels: int,
        head_size: int,
    ) -> None:
        super().__init__()
        n = len(ch_mult)
        block_in = ch * ch_mult[-1]
        curr_res = resolution // 2 ** (n - 1)
        self.conv_in = nn.Conv2d(z_channels, block_in, 3, 1, 1)
        self.mid = _Mid(block_in, head_size)
        levels: list[_Level] = []
        for i in reversed(range(n)):
            level = _Level()
            for _ in range(num_res_blocks + 1):
                level.block.append(ResnetBlock(block_in, ch * ch_mult[i]))
                block_in = ch * ch_mult[i]
                if curr_res in attn_resolutions:
                    level.attn.append(MultiHeadAttnBlock(block_in, head_size))
            if i != 0:
                level.upsample = Upsample(block_in)
                curr_res *= 2
            levels.insert(0, level)
        self.up = nn.ModuleList(levels)
        self.norm_out = _norm(block_in)
        self.conv_out = nn.Conv2d(block_in, out_ch, 3, 1, 1)

    def forward(self, z: torch.Tensor, feats: list[torch.Tensor], mid: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)
        h = self.mid.block_1(h)
        h = self.mid.attn_1(h, mid)
        h = self.mid.block_2(h)
        for i in reversed(range(len(self.up))):
            level = self.up[i]
            for j, block in enumerate(level.block):
                h = block(h)
                if len(level.attn):
                    h = level.attn[j](h, feats[i])
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(_swish(self.norm_out(h)))


class VQVAEGANMultiHeadTransformer(nn.Module):
    """RestoreFormer(++) generator. Input (B, 3, H, W) in [-1, 1], H and W multiples of 32."""

    def __init__(
        self,
        n_embed: int = 1024,
        embed_dim: int = 256,
        ch: int = 64,
        out_ch: int = 3,
        ch_mult: tuple[int, ...] = (1, 2, 2, 4, 4, 8),
        num_res_blocks: int = 2,
        attn_resolutions: tuple[int, ...] = (16,),
        in_channels: int = 3,
        resolution: int = 512,
        z_channels: int = 256,
        head_size: int = 4,
        ex_multi_scale_num: int = 1,
    ) -> None:
        super().__init__()
        self.downscale = 2 ** (len(ch_mult) - 1)
        self.encoder = MultiHeadEncoder(
            ch, ch_mult, num_res_blocks, tuple(attn_resolutions), in_channels, resolution, z_channels, head_size
        )
        dec_attn = list(attn_resolutions)
        for _ in range(ex_multi_scale_num):  # each extra scale adds decoder attention at twice the last size
            dec_attn = [dec_attn[0], dec_attn[-1] * 2]
        self.decoder = MultiHeadDecoderTransformer(
            ch, out_ch, ch_mult, num_res_blocks, tuple(dec_attn), resolution, z_channels, head_size
        )
        self.quantize = VectorQuantizer(n_embed, embed_dim)
        self.quant_conv = nn.Conv2d(z_channels, embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, z_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) in [-1, 1] -> restored (B, 3, H, W), unclamped."""
        if x.shape[-1] % self.downscale or x.shape[-2] % self.downscale:
            raise ValueError(f"RestoreFormer input sides must be multiples of {self.downscale}, got {tuple(x.shape[-2:])}")
        z, feats, mid = self.encoder(x)
        quant, _ = self.quantize(self.quant_conv(z))
        return self.decoder(self.post_quant_conv(quant), feats, mid)
