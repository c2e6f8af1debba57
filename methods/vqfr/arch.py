"""VQFR v2's network (Gu et al., ECCV 2022, TencentARC/VQFR ``VQFRv2``), written for bfrbench.

Encoder -> code prediction (LayerNorm + Linear over 1024 codes, argmax) -> the frozen VQGAN
texture decoder, whose per-level features feed the *main* decoder: at every level a texture-warping
module predicts offsets and masks from the input's features and warps the texture features with a
modulated deformable convolution (DCNv2, ``torchvision.ops.deform_conv2d``, which the official code
also calls on torchvision >= 0.9). The output is ``conv_out(texture_1 + fidelity_ratio * main)``,
so ``fidelity_ratio=0`` (the official default) is the texture decoder's own image.

Module and parameter names follow the official checkpoint (``VQFR_v2.pth``, ``params_ema``) so it
loads with ``strict=True``; tests/fixtures/manifests/vqfr_v2.json lists them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import deform_conv2d


@dataclass(frozen=True)
class VQFRConfig:
    """Constructor arguments of ``VQFRv2`` (defaults: the release, as demo_util / test_vqfr_v2.yml build it)."""

    base_channels: int = 64
    channel_multipliers: tuple[int, ...] = (1, 2, 2, 4, 4, 8)
    num_enc_blocks: int = 2
    use_enc_attention: bool = True
    num_dec_blocks: int = 2
    use_dec_attention: bool = True
    code_dim: int = 256
    inpfeat_dim: int = 32
    cond_channels: int = 32
    deformable_groups: int = 4
    num_code: int = 1024
    #: "Predict" (the release: a linear head picks each code) or "Nearest" (L2-nearest code)
    code_selection: str = "Predict"

    def channels(self, level: int) -> int:
        return self.base_channels * self.channel_multipliers[level]

    @property
    def levels(self) -> int:
        return len(self.channel_multipliers)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    """Pre-activation residual block (GroupNorm, SiLU, 3x3 conv, twice), 1x1 projection when widths differ."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.residual_func = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.residual_func(x)


class AttnBlock(nn.Module):
    """Single-head spatial self-attention with a residual (the VQGAN's, at the lowest resolution)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = _norm(channels)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(channels, channels, 1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = self.norm(x)
        q = self.q(y).reshape(b, c, h * w).transpose(1, 2)  # (b, hw, c)
        k = self.k(y).reshape(b, c, h * w)
        v = self.v(y).reshape(b, c, h * w)
        attn = torch.softmax(torch.bmm(q, k) * (int(c) ** -0.5), dim=2)  # (b, query, key)
        out = torch.bmm(v, attn.transpose(1, 2)).reshape(b, c, h, w)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    """Stride-2 3x3 conv after zero padding on the right and bottom only."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest x2 then a 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _level_stack(cin: int, cout: int, blocks: int, attention: bool, resample: nn.Module | None) -> nn.Sequential:
    """One resolution level: optional resampling, then ``blocks`` residual blocks (each followed by attention)."""
    layers: list[nn.Module] = [resample] if resample is not None else []
    for j in range(blocks):
        layers.append(ResnetBlock(cin if j == 0 else cout, cout))
        if attention:
            layers.append(AttnBlock(cout))
    return nn.Sequential(*layers)


def _mid(channels: int, attention: bool) -> nn.Sequential:
    middle = [AttnBlock(channels)] if attention else []
    return nn.Sequential(ResnetBlock(channels, channels), *middle, ResnetBlock(channels, channels))


def _out_head(channels: int, out: int) -> nn.Sequential:
    return nn.Sequential(_norm(channels), nn.SiLU(), nn.Conv2d(channels, out, 3, padding=1))


class Encoder(nn.Module):
    """Image -> (code_dim, H/32, W/32) latent for the release's six levels."""

    def __init__(self, cfg: VQFRConfig) -> None:
        super().__init__()
        n = cfg.levels
        self.conv_in = nn.Conv2d(3, cfg.channels(0), 3, padding=1)
        self.blocks = nn.ModuleList(
            _level_stack(cfg.channels(max(i - 1, 0)), cfg.channels(i), cfg.num_enc_blocks,
                         cfg.use_enc_attention and i == n - 1, Downsample(cfg.channels(i - 1)) if i else None)
            for i in range(n)
        )
        self.mid_blocks = _mid(cfg.channels(n - 1), cfg.use_enc_attention)
        self.conv_out = _out_head(cfg.channels(n - 1), cfg.code_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for stack in self.blocks:
            x = stack(x)
        return self.conv_out(self.mid_blocks(x))


class Decoder(nn.Module):
    """Codes -> image; also returns each level's features (``{2**level: features}``) for the main branch."""

    def __init__(self, cfg: VQFRConfig) -> None:
        super().__init__()
        n = cfg.levels
        self.conv_in = nn.Conv2d(cfg.code_dim, cfg.channels(n - 1), 3, padding=1)
        self.blocks = nn.ModuleList(
            _level_stack(cfg.channels(min(i + 1, n - 1)), cfg.channels(i), cfg.num_dec_blocks,
                         cfg.use_dec_attention and i == n - 1, Upsample(cfg.channels(i + 1)) if i < n - 1 else None)
            for i in reversed(range(n))
        )
        self.mid_blocks = _mid(cfg.channels(n - 1), cfg.use_dec_attention)  # after ``blocks``: the checkpoint order
        self.conv_out = _out_head(cfg.channels(0), 3)
        self.levels = n

    def features(self, codes: torch.Tensor) -> dict[int, torch.Tensor]:
        x = self.mid_blocks(self.conv_in(codes))
        feats = {}
        for stack, level in zip(self.blocks, reversed(range(self.levels))):
            x = stack(x)
            feats[2**level] = x
        return feats


class DeformConv(nn.Module):
    """DCNv2 whose offsets and masks come from a separate conditioning feature (official ``DCNv2Pack``)."""

    def __init__(self, channels: int, groups: int, kernel: int = 3) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels, channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.conv_offset = nn.Conv2d(channels, groups * 3 * kernel * kernel, kernel, padding=kernel // 2)
        self.padding = kernel // 2

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        o1, o2, mask = torch.chunk(self.conv_offset(cond).float(), 3, dim=1)
        w, b = self.weight.float(), self.bias.float()  # in float32 always, as torchvision's autocast rule does
        out = deform_conv2d(x.float(), torch.cat((o1, o2), dim=1), w, b, stride=1, padding=self.padding,
                            dilation=1, mask=torch.sigmoid(mask))
        return out.to(x.dtype)


class TextureWarping(nn.Module):
    """Offsets from (input features, texture features) [+ the coarser level's offsets]; warps the texture."""

    def __init__(self, channels: int, cond_channels: int, downscale: int, groups: int, prev_offset: int = 0) -> None:
        super().__init__()
        self.downscale = downscale
        self.offset_conv1 = nn.Sequential(
            nn.Conv2d(channels + cond_channels, channels, 1), _norm(channels), nn.SiLU(),
            nn.Conv2d(channels, channels, 7, padding=3, groups=channels), _norm(channels), nn.SiLU(),
            nn.Conv2d(channels, channels, 1),
        )
        self.offset_conv2 = nn.Sequential(nn.Conv2d(channels + prev_offset, channels, 3, padding=1),
                                          _norm(channels), nn.SiLU())
        self.dcn = DeformConv(channels, groups)

    def forward(self, texture: torch.Tensor, inpfeat: torch.Tensor,
                prev_offset: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = inpfeat.shape[-2:]
        cond = F.interpolate(inpfeat, size=(h // self.downscale, w // self.downscale), mode="bilinear",
                             align_corners=False)
        offset = self.offset_conv1(torch.cat([cond, texture], dim=1))
        offset = self.offset_conv2(offset if prev_offset is None else torch.cat([offset, prev_offset], dim=1))
        return self.dcn(texture, offset), offset


class MainDecoder(nn.Module):
    """The fidelity branch: coarse-to-fine warped texture features fused with residual blocks."""

    def __init__(self, cfg: VQFRConfig) -> None:
        super().__init__()
        n = cfg.levels
        self.levels = n
        self.decoder_dict = nn.ModuleDict()
        self.pre_upsample_dict = nn.ModuleDict()
        self.align_func_dict = nn.ModuleDict()
        for i in reversed(range(n)):
            key, ch = f"Level_{2**i}", cfg.channels(i)
            prev = cfg.channels(min(i + 1, n - 1))
            if i != n - 1:
                self.pre_upsample_dict[key] = nn.Sequential(nn.UpsamplingNearest2d(scale_factor=2),
                                                            nn.Conv2d(prev, ch, 3, padding=1))
            self.align_func_dict[key] = TextureWarping(ch, cfg.cond_channels, 2**i, cfg.deformable_groups,
                                                       0 if i == n - 1 else prev)
            if i != n - 1:
                self.decoder_dict[key] = ResnetBlock(2 * ch, ch)

    def forward(self, feats: dict[int, torch.Tensor], inpfeat: torch.Tensor) -> torch.Tensor:
        top = 2 ** (self.levels - 1)
        x, offset = self.align_func_dict[f"Level_{top}"](feats[top], inpfeat)
        for i in reversed(range(self.levels - 1)):
            key = f"Level_{2**i}"
            x = self.pre_upsample_dict[key](x)
            up = F.interpolate(offset, scale_factor=2, mode="bilinear", align_corners=False) * 2
            warped, offset = self.align_func_dict[key](feats[2**i], inpfeat, up)
            x = self.decoder_dict[key](torch.cat([x, warped], dim=1))
        return x


class Codebook(nn.Module):
    """The VQGAN's code table (official ``L2VectorQuantizer``; only its ``embedding`` is a tensor)."""

    def __init__(self, num_code: int, code_dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_code, code_dim)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> the L2-nearest codes, same shape (the official distance, then its straight-through sum)."""
        b, c, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, c)
        e = self.embedding.weight
        dist = (flat**2).sum(1, keepdim=True) + (e**2).sum(1) - 2 * torch.einsum("bc,dc->bd", flat, e)
        zq = self.embedding(dist.argmin(1)).view(b, h, w, c)
        zp = z.permute(0, 2, 3, 1)
        return (zp + (zq - zp)).permute(0, 3, 1, 2).contiguous()

    def lookup(self, index: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """(B, H*W) code indices -> (B, C, H, W) features, a view of channels-last memory as the official
        ``rearrange`` gives: the decoder's convolutions then take the same (channels-last) kernels, bit for bit."""
        return self.embedding(index).view(index.shape[0], h, w, -1).permute(0, 3, 1, 2)


class VQFRv2(nn.Module):
    """VQFR v2: ``forward(x, fidelity_ratio)`` maps [-1, 1] faces to [-1, 1] restorations."""

    def __init__(self, cfg: VQFRConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or VQFRConfig()
        if cfg.code_selection not in ("Predict", "Nearest"):
            raise ValueError(f"code_selection must be 'Predict' or 'Nearest', got {cfg.code_selection!r}")
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        if cfg.code_selection == "Predict":
            self.feat2index = nn.Sequential(nn.LayerNorm(cfg.code_dim), nn.Linear(cfg.code_dim, cfg.num_code))
        else:
            self.feat2index = None
        self.decoder = Decoder(cfg)
        self.main_branch = MainDecoder(cfg)
        self.inpfeat_extraction = nn.Conv2d(3, cfg.inpfeat_dim, 3, padding=1)
        self.quantizer = Codebook(cfg.num_code, cfg.code_dim)

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """The looked-up code features (B, code_dim, H/32, W/32) of a [-1, 1] image."""
        z = self.encoder(x)
        if self.feat2index is None:
            return self.quantizer.nearest(z)
        b, c, h, w = z.shape
        logits = self.feat2index(z.flatten(2).transpose(1, 2))
        return self.quantizer.lookup(logits.argmax(-1), h, w)

    def forward(self, x: torch.Tensor, fidelity_ratio: float = 0.0) -> torch.Tensor:
        feats = self.decoder.features(self.codes(x))
        texture = feats[1]
        if fidelity_ratio != 0:  # at 0 the main branch is multiplied by zero: skipped (the same image)
            texture = texture + fidelity_ratio * self.main_branch(feats, self.inpfeat_extraction(x))
        return self.decoder.conv_out(texture)
