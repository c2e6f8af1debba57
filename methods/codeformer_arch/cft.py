"""Controllable Feature Transformation (CodeFormer's CFT): fidelity-weighted encoder-to-decoder skips.

``out = dec + w * (dec * scale + shift)`` with scale and shift predicted from the encoder and
decoder features; w = 0 leaves the decoder untouched (pure codebook output), larger w follows
the input more closely.
"""
from __future__ import annotations

import torch
from torch import nn

from methods.codeformer_arch.vqgan import ResBlock


def _affine_branch(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1),
        nn.LeakyReLU(0.2, True),
        nn.Conv2d(out_ch, out_ch, kernel_size=3, padding=1),
    )


class FuseSFTBlock(nn.Module):
    """One CFT block (``fuse_convs_dict.<size>`` in checkpoints)."""

    def __init__(self, in_ch: int, out_ch: int, groups: int = 32, eps: float = 1e-6, exact: bool = True) -> None:
        super().__init__()
        self.encode_enc = ResBlock(2 * in_ch, out_ch, groups, eps, exact)
        self.scale = _affine_branch(in_ch, out_ch)
        self.shift = _affine_branch(in_ch, out_ch)

    def forward(self, enc_feat: torch.Tensor, dec_feat: torch.Tensor, w: float = 1.0) -> torch.Tensor:
        h = self.encode_enc(torch.cat([enc_feat, dec_feat], dim=1))
        return dec_feat + w * (dec_feat * self.scale(h) + self.shift(h))
