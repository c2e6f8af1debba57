"""VQGAN's PatchGAN discriminator, as CodeFormer and IQP train with it (``VQGANDiscriminator``)."""
from __future__ import annotations

import torch
from torch import nn


class PatchDiscriminator(nn.Module):
    """PatchGAN: strided 4x4 convs with BatchNorm and LeakyReLU(0.2); one logit per patch.

    Parameter names (``main.N.*``) follow CodeFormer's ``VQGANDiscriminator`` so its
    ``net_d`` checkpoints load with ``strict=True``.
    """

    def __init__(self, nc: int = 3, ndf: int = 64, n_layers: int = 4) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError("the discriminator needs n_layers >= 1")
        layers: list[nn.Module] = [nn.Conv2d(nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2**n_layers, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=False), nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> patch logits (B, 1, h, w)."""
        return self.main(x)
