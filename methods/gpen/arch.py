"""GPEN's FullGenerator: a conv encoder whose per-scale features feed a StyleGAN2 generator as its "noise".

Written to reproduce yangxy/GPEN ``face_model/gpen_model.py`` (``FullGenerator``, commit 2c73670) with
the same tensor names, so the released ``GPEN-BFR-512.pth`` (a bare state dict, blur kernels included)
loads with ``strict=True``. It is the rosinality StyleGAN2 with equalised learning rate: weights are
stored unscaled and multiplied by ``1/sqrt(fan_in)`` at run time. GPEN's two twists: the noise slots
receive the encoder's feature maps (so the network is deterministic), and noise is concatenated to the
features (``isconcat``), doubling each activation's channel count. The blur / up-sampling FIR filter
(``upfirdn2d``) and the fused bias + leaky ReLU are written in plain torch (no CUDA extension).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

BLUR = (1, 3, 3, 1)
SQRT2 = math.sqrt(2.0)


def fir_kernel(taps: tuple[int, ...] = BLUR, gain: float = 1.0) -> torch.Tensor:
    """The separable 2-D FIR kernel of ``taps``, normalised to sum ``gain``."""
    k = torch.tensor(taps, dtype=torch.float32)
    k = k[None, :] * k[:, None]
    return k / k.sum() * gain


def fir_filter(x: torch.Tensor, kernel: torch.Tensor, pad: tuple[int, int], up: int = 1, down: int = 1) -> torch.Tensor:
    """Upsample by zero insertion, pad, convolve each channel with ``kernel``, then subsample (``upfirdn2d``)."""
    b, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros(b, c, h, up, w, up)
        z[:, :, :, 0, :, 0] = x
        x = z.view(b, c, h * up, w * up)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    k = torch.flip(kernel, [0, 1]).to(x.dtype)[None, None].expand(c, 1, *kernel.shape)
    x = F.conv2d(x, k, groups=c)
    return x[:, :, ::down, ::down] if down > 1 else x


def bias_leaky_relu(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """StyleGAN2's fused activation: ``sqrt(2) * leaky_relu(x + bias, 0.2)``, bias per channel (dim 1)."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return F.leaky_relu(x + bias.view(shape), 0.2) * SQRT2


class Blur(nn.Module):
    """FIR low-pass with fixed padding (the kernel is a buffer, so checkpoints carry it)."""

    def __init__(self, pad: tuple[int, int], gain: float = 1.0) -> None:
        super().__init__()
        self.pad = pad
        self.register_buffer("kernel", fir_kernel(BLUR, gain))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fir_filter(x, self.kernel, self.pad)


class Upsample(nn.Module):
    """x2 FIR up-sampling of the RGB skip path."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("kernel", fir_kernel(BLUR, 4.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fir_filter(x, self.kernel, (2, 1), up=2)


class FusedLeakyReLU(nn.Module):
    """Bias + scaled leaky ReLU with a learned per-channel bias."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bias_leaky_relu(x, self.bias)


class EqualConv2d(nn.Module):
    """Convolution with run-time weight scaling ``1/sqrt(fan_in)``."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, padding: int = 0, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.scale, self.stride, self.padding = 1 / math.sqrt(cin * k * k), stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, self.stride, self.padding)


class EqualLinear(nn.Module):
    """Linear layer with run-time scaling ``lr_mul/sqrt(in)``, optionally followed by the fused activation."""

    def __init__(self, din: int, dout: int, bias_init: float = 0.0, lr_mul: float = 1.0, activate: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(dout, din) / lr_mul)
        self.bias = nn.Parameter(torch.full((dout,), float(bias_init)))
        self.scale, self.lr_mul, self.activate = lr_mul / math.sqrt(din), lr_mul, activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activate:
            return bias_leaky_relu(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class PixelNorm(nn.Module):
    """Normalise each latent to unit mean square."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution; ``upsample`` is a stride-2 transposed conv followed by a blur."""

    def __init__(self, cin: int, cout: int, k: int, style_dim: int, demodulate: bool = True, upsample: bool = False) -> None:
        super().__init__()
        self.cin, self.cout, self.k, self.demodulate, self.upsample = cin, cout, k, demodulate, upsample
        if upsample:
            self.blur = Blur((1, 1), gain=4.0)  # pads of a 3x3 kernel after the x2 transposed conv
        self.scale = 1 / math.sqrt(cin * k * k)
        self.weight = nn.Parameter(torch.randn(1, cout, cin, k, k))
        self.modulation = EqualLinear(style_dim, cin, bias_init=1.0)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        weight = self.scale * self.weight * self.modulation(style).view(b, 1, c, 1, 1)
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8).view(b, self.cout, 1, 1, 1)
        x = x.reshape(1, b * c, h, w)
        if self.upsample:  # per-sample transposed conv: weights laid out (b * in, out, k, k)
            weight = weight.transpose(1, 2).reshape(b * c, self.cout, self.k, self.k)
            out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=b)
            return self.blur(out.view(b, self.cout, *out.shape[2:]))
        out = F.conv2d(x, weight.reshape(b * self.cout, c, self.k, self.k), padding=self.k // 2, groups=b)
        return out.view(b, self.cout, *out.shape[2:])


class NoiseInjection(nn.Module):
    """Appends ``weight * noise`` as extra channels (GPEN's ``isconcat``); the noise is an encoder feature."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return torch.cat((x, self.weight * noise), dim=1)


class StyledConv(nn.Module):
    """Modulated 3x3 conv, concatenated noise, fused bias + activation over both halves."""

    def __init__(self, cin: int, cout: int, style_dim: int, upsample: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(cin, cout, 3, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(cout * 2)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, style), noise))


class ToRGB(nn.Module):
    """Un-demodulated 1x1 conv to RGB plus the FIR-upsampled RGB of the level below."""

    def __init__(self, cin: int, style_dim: int, upsample: bool = True) -> None:
        super().__init__()
        if upsample:
            self.upsample = Upsample()
        self.conv = ModulatedConv2d(cin, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, style) + self.bias
        return out if skip is None else out + self.upsample(skip)


class ConstantInput(nn.Module):
    """The learned 4x4 start of the generator."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, 4, 4))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.repeat(batch, 1, 1, 1)


def gpen_channels(channel_multiplier: float, narrow: float) -> dict[int, int]:
    """Channels per resolution, as GPEN defines them."""
    base = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16, 2048: 8}
    return {r: int(c * (channel_multiplier if r >= 64 else 1) * narrow) for r, c in base.items()}


class Generator(nn.Module):
    """GPEN's StyleGAN2 generator (mapping MLP, constant input, styled convs with concatenated noise)."""

    def __init__(self, size: int, style_dim: int, n_mlp: int, channel_multiplier: float, narrow: float,
                 lr_mlp: float = 0.01) -> None:
        super().__init__()
        ch = gpen_channels(channel_multiplier, narrow)
        self.style = nn.Sequential(PixelNorm(), *[EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activate=True)
                                                  for _ in range(n_mlp)])
        self.input = ConstantInput(ch[4])
        self.conv1 = StyledConv(ch[4], ch[4], style_dim)
        self.to_rgb1 = ToRGB(ch[4] * 2, style_dim, upsample=False)
        self.log_size = int(math.log2(size))
        self.convs, self.to_rgbs = nn.ModuleList(), nn.ModuleList()
        cin = ch[4]
        for i in range(3, self.log_size + 1):
            cout = ch[2**i]
            self.convs.append(StyledConv(cin * 2, cout, style_dim, upsample=True))
            self.convs.append(StyledConv(cout * 2, cout, style_dim))
            self.to_rgbs.append(ToRGB(cout * 2, style_dim))
            cin = cout

    def forward(self, z: torch.Tensor, noise: list[torch.Tensor]) -> torch.Tensor:
        """RGB in about [-1, 1] from the code ``z`` (through the mapping MLP) and one feature map per styled conv."""
        w = self.style(z)  # one style for every layer (no mixing, truncation 1)
        out = self.conv1(self.input(w.shape[0]), w, noise[0])
        skip = self.to_rgb1(out, w)
        for k, to_rgb in enumerate(self.to_rgbs):
            out = self.convs[2 * k](out, w, noise[1 + 2 * k])
            out = self.convs[2 * k + 1](out, w, noise[2 + 2 * k])
            skip = to_rgb(out, w, skip)
        return skip


def _conv_layer(cin: int, cout: int, k: int, downsample: bool = False) -> nn.Sequential:
    """Encoder stage: [blur,] equalised conv (stride 2 when down-sampling), fused bias + activation."""
    if downsample:
        return nn.Sequential(Blur((2, 2)), EqualConv2d(cin, cout, k, stride=2, bias=False), FusedLeakyReLU(cout))
    return nn.Sequential(EqualConv2d(cin, cout, k, padding=k // 2, bias=False), FusedLeakyReLU(cout))


class GPEN(nn.Module):
    """GPEN FullGenerator: encoder ``ecd0..ecdN`` (size -> 4), code ``final_linear``, GAN-prior ``generator``."""

    def __init__(self, size: int = 512, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: float = 2,
                 narrow: float = 1) -> None:
        super().__init__()
        ch = gpen_channels(channel_multiplier, narrow)
        self.log_size = int(math.log2(size))
        self.generator = Generator(size, style_dim, n_mlp, channel_multiplier, narrow)
        self.ecd0 = nn.Sequential(_conv_layer(3, ch[size], 1))
        cin = ch[size]
        for k, i in enumerate(range(self.log_size, 2, -1), start=1):
            setattr(self, f"ecd{k}", nn.Sequential(_conv_layer(cin, ch[2 ** (i - 1)], 3, downsample=True)))
            cin = ch[2 ** (i - 1)]
        self.final_linear = nn.Sequential(EqualLinear(ch[4] * 16, style_dim, activate=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, size, size) in [-1, 1] -> restored RGB, unclamped."""
        feats = []
        for k in range(self.log_size - 1):
            x = getattr(self, f"ecd{k}")(x)
            feats.append(x)
        z = self.final_linear(x.flatten(1))
        # coarse to fine, each scale twice (the two styled convs per level), the first 4x4 copy dropped
        noise = [f for f in reversed(feats) for _ in range(2)][1:]
        return self.generator(z, noise)
