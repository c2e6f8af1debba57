"""GFPGANv1Clean: a U-Net that predicts StyleGAN2 latents and SFT conditions, plus the clean StyleGAN2 decoder.

Written to reproduce TencentARC/GFPGAN ``gfpganv1_clean_arch.py`` / ``stylegan2_clean_arch.py`` (the
architecture of GFPGANv1.3 and v1.4) with the same parameter names, so the official ``params_ema``
state dict loads with ``strict=True``. Two deliberate interface differences:

* the decoder always takes its noise maps explicitly (``noise=None`` means the checkpoint's stored
  ``noises.noiseK`` buffers); random per-call noise is the caller's choice (see ``make_noise``);
* only the restored image is returned (the official ``return_rgb`` side outputs are training-only,
  but their ``toRGB`` convolutions are kept so checkpoints load strictly).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class NormStyleCode(nn.Module):
    """Pixel-norm of style codes (first layer of the mapping MLP)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


class ModulatedConv2d(nn.Module):
    """StyleGAN2 modulated convolution (per-sample weights, optional demodulation), no bias."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        num_style_feat: int,
        demodulate: bool = True,
        upsample: bool = False,
        eps: float = 1e-8,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.demodulate, self.upsample, self.eps = demodulate, upsample, eps
        self.modulation = nn.Linear(num_style_feat, in_channels, bias=True)
        self.weight = nn.Parameter(
            torch.randn(1, out_channels, in_channels, kernel_size, kernel_size) / math.sqrt(in_channels * kernel_size**2)
        )

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        weight = self.weight * self.modulation(style).view(b, 1, c, 1, 1)
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + self.eps)
            weight = weight * demod.view(b, self.out_channels, 1, 1, 1)
        weight = weight.view(b * self.out_channels, c, self.kernel_size, self.kernel_size)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        h, w = x.shape[2:]
        # one grouped convolution runs every sample with its own modulated weights
        out = F.conv2d(x.reshape(1, b * c, h, w), weight, padding=self.kernel_size // 2, groups=b)
        return out.view(b, self.out_channels, *out.shape[2:])


class StyleConv(nn.Module):
    """Modulated 3x3 conv, noise injection (learned strength ``weight``), bias, leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, num_style_feat: int, upsample: bool = False) -> None:
        super().__init__()
        self.modulated_conv = ModulatedConv2d(in_channels, out_channels, 3, num_style_feat, True, upsample)
        self.weight = nn.Parameter(torch.zeros(1))
        self.bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        out = self.modulated_conv(x, style) * 2**0.5
        out = out + self.weight * noise
        out = out + self.bias
        return F.leaky_relu(out, 0.2)


class ToRGB(nn.Module):
    """Modulated 1x1 conv to RGB, added to the bilinearly upsampled RGB of the previous level."""

    def __init__(self, in_channels: int, num_style_feat: int, upsample: bool = True) -> None:
        super().__init__()
        self.upsample = upsample
        self.modulated_conv = ModulatedConv2d(in_channels, 3, 1, num_style_feat, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.modulated_conv(x, style) + self.bias
        if skip is not None:
            if self.upsample:
                skip = F.interpolate(skip, scale_factor=2, mode="bilinear", align_corners=False)
            out = out + skip
        return out


class ConstantInput(nn.Module):
    """The learned 4x4 input of the StyleGAN2 generator."""

    def __init__(self, num_channel: int, size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, num_channel, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.weight.expand(batch, -1, -1, -1)


def _channels(multiplier: float, narrow: float) -> dict[int, int]:
    """Channel count per resolution, as StyleGAN2 (clean) defines it."""
    base = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
    return {r: int(c * (multiplier if r >= 64 else 1) * narrow) for r, c in base.items()}


class StyleGAN2GeneratorCSFT(nn.Module):
    """Clean StyleGAN2 generator whose first conv per level is modulated by SFT conditions."""

    def __init__(
        self,
        out_size: int,
        num_style_feat: int = 512,
        num_mlp: int = 8,
        channel_multiplier: float = 2,
        narrow: float = 1,
        sft_half: bool = True,
    ) -> None:
        super().__init__()
        self.num_style_feat, self.sft_half = num_style_feat, sft_half
        layers: list[nn.Module] = [NormStyleCode()]
        for _ in range(num_mlp):
            layers += [nn.Linear(num_style_feat, num_style_feat), nn.LeakyReLU(0.2)]
        # the mapping MLP is unused when the encoder predicts latents, but it is part of the checkpoint
        self.style_mlp = nn.Sequential(*layers)
        ch = _channels(channel_multiplier, narrow)
        self.log_size = int(math.log2(out_size))
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.num_latent = self.log_size * 2 - 2

        self.constant_input = ConstantInput(ch[4], 4)
        self.style_conv1 = StyleConv(ch[4], ch[4], num_style_feat)
        self.to_rgb1 = ToRGB(ch[4], num_style_feat, upsample=False)
        self.style_convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for idx, shape in enumerate(self.noise_shapes()):
            self.noises.register_buffer(f"noise{idx}", torch.randn(1, 1, *shape))
        in_ch = ch[4]
        for i in range(3, self.log_size + 1):
            out_ch = ch[2**i]
            self.style_convs.append(StyleConv(in_ch, out_ch, num_style_feat, upsample=True))
            self.style_convs.append(StyleConv(out_ch, out_ch, num_style_feat))
            self.to_rgbs.append(ToRGB(out_ch, num_style_feat, upsample=True))
            in_ch = out_ch

    def noise_shapes(self) -> list[tuple[int, int]]:
        """(H, W) of the noise map of each style conv, in the order the official code draws them."""
        return [(2 ** ((i + 5) // 2),) * 2 for i in range(self.num_layers)]

    def forward(
        self, latent: torch.Tensor, conditions: list[torch.Tensor], noise: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """latent (B, num_latent, C) W+ codes; conditions [scale, shift] per level; noise maps or None."""
        if noise is None:
            noise = [getattr(self.noises, f"noise{i}") for i in range(self.num_layers)]
        out = self.constant_input(latent.shape[0])
        out = self.style_conv1(out, latent[:, 0], noise[0])
        skip = self.to_rgb1(out, latent[:, 1])
        i = 1
        for conv1, conv2, noise1, noise2, to_rgb in zip(
            self.style_convs[::2], self.style_convs[1::2], noise[1::2], noise[2::2], self.to_rgbs
        ):
            out = conv1(out, latent[:, i], noise1)
            if i < len(conditions):
                scale, shift = conditions[i - 1], conditions[i]
                if self.sft_half:  # SFT on the second half of the channels only
                    same, sft = torch.split(out, out.size(1) // 2, dim=1)
                    out = torch.cat([same, sft * scale + shift], dim=1)
                else:
                    out = out * scale + shift
            out = conv2(out, latent[:, i + 1], noise2)
            skip = to_rgb(out, latent[:, i + 2], skip)
            i += 2
        return skip


class ResBlock(nn.Module):
    """U-Net residual block with bilinear down- (x0.5) or up-sampling (x2)."""

    def __init__(self, in_channels: int, out_channels: int, mode: str = "down") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.scale_factor = 0.5 if mode == "down" else 2.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.leaky_relu(self.conv1(x), 0.2)
        out = F.interpolate(out, scale_factor=self.scale_factor, mode="bilinear", align_corners=False)
        out = F.leaky_relu(self.conv2(out), 0.2)
        x = F.interpolate(x, scale_factor=self.scale_factor, mode="bilinear", align_corners=False)
        return out + self.skip(x)


class GFPGANv1Clean(nn.Module):
    """GFPGAN (clean): U-Net encoder -> W+ latents and SFT scale/shift -> StyleGAN2 decoder.

    Defaults are the v1.3 / v1.4 release configuration (``input_is_latent=True``, ``different_w=True``,
    ``sft_half=True``, channel multiplier 2). Input (B, 3, out_size, out_size) in [-1, 1]; output the
    same size, unclamped.
    """

    def __init__(
        self,
        out_size: int = 512,
        num_style_feat: int = 512,
        channel_multiplier: float = 2,
        num_mlp: int = 8,
        different_w: bool = True,
        narrow: float = 1,
        sft_half: bool = True,
    ) -> None:
        super().__init__()
        self.out_size, self.different_w, self.num_style_feat = out_size, different_w, num_style_feat
        ch = _channels(channel_multiplier, narrow * 0.5)  # the U-Net uses half the decoder's channels
        self.log_size = int(math.log2(out_size))
        if 2**self.log_size != out_size or out_size < 8:
            raise ValueError(f"GFPGAN out_size must be a power of two >= 8, got {out_size}")

        self.conv_body_first = nn.Conv2d(3, ch[out_size], 1)
        in_ch = ch[out_size]
        self.conv_body_down = nn.ModuleList()
        for i in range(self.log_size, 2, -1):
            self.conv_body_down.append(ResBlock(in_ch, ch[2 ** (i - 1)], "down"))
            in_ch = ch[2 ** (i - 1)]
        self.final_conv = nn.Conv2d(in_ch, ch[4], 3, 1, 1)
        in_ch = ch[4]
        self.conv_body_up = nn.ModuleList()
        for i in range(3, self.log_size + 1):
            self.conv_body_up.append(ResBlock(in_ch, ch[2**i], "up"))
            in_ch = ch[2**i]
        # training-time intermediate RGB heads (kept for strict loading; not used at inference)
        self.toRGB = nn.ModuleList(nn.Conv2d(ch[2**i], 3, 1) for i in range(3, self.log_size + 1))
        n_latent = (self.log_size * 2 - 2) if different_w else 1
        self.final_linear = nn.Linear(ch[4] * 4 * 4, n_latent * num_style_feat)
        self.stylegan_decoder = StyleGAN2GeneratorCSFT(
            out_size, num_style_feat, num_mlp, channel_multiplier, narrow, sft_half
        )
        self.condition_scale = nn.ModuleList()
        self.condition_shift = nn.ModuleList()
        for i in range(3, self.log_size + 1):
            c = ch[2**i]
            sft_c = c if sft_half else 2 * c
            for heads in (self.condition_scale, self.condition_shift):
                heads.append(nn.Sequential(nn.Conv2d(c, c, 3, 1, 1), nn.LeakyReLU(0.2), nn.Conv2d(c, sft_c, 3, 1, 1)))

    def noise_shapes(self) -> list[tuple[int, int]]:
        """(H, W) of each decoder noise map, in the official drawing order."""
        return self.stylegan_decoder.noise_shapes()

    def forward(self, x: torch.Tensor, noise: list[torch.Tensor] | None = None) -> torch.Tensor:
        """x (B, 3, S, S) in [-1, 1] -> restored (B, 3, S, S); ``noise=None`` uses the stored noise maps."""
        if x.shape[-2:] != (self.out_size, self.out_size):
            raise ValueError(f"GFPGAN expects {self.out_size}x{self.out_size} inputs, got {tuple(x.shape[-2:])}")
        feat = F.leaky_relu(self.conv_body_first(x), 0.2)
        skips = []
        for down in self.conv_body_down:
            feat = down(feat)
            skips.insert(0, feat)
        feat = F.leaky_relu(self.final_conv(feat), 0.2)
        style = self.final_linear(feat.flatten(1))
        if self.different_w:
            latent = style.view(style.size(0), -1, self.num_style_feat)
        else:
            latent = style.unsqueeze(1).repeat(1, self.stylegan_decoder.num_latent, 1)
        conditions = []
        for skip, up, scale_head, shift_head in zip(skips, self.conv_body_up, self.condition_scale, self.condition_shift):
            feat = up(feat + skip)
            conditions += [scale_head(feat), shift_head(feat)]
        return self.stylegan_decoder(latent, conditions, noise)
