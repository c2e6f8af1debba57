"""ArcFace ResNet-18 ("ResNetArcFace", IRBlock, layers [2, 2, 2, 2], no SE) of arcface-pytorch / BasicSR / GFPGAN.

The identity network of the BFR papers' "Deg." / IDS metric (VQFR ``calculate_cos_dist.py`` uses
arcface-pytorch's ``resnet_face18``; GFPGAN / BasicSR ship the same network as ``ResNetArcFace``
with ``arcface_resnet18.pth``). Input: (B, 1, 128, 128) grey in [-1, 1]; output: (B, 512).
Module names match the checkpoints (``conv1, bn1, prelu, layer1-4, bn4, fc5, bn5``) so they
load with ``strict=True``; a DataParallel ``module.`` prefix is removed by :func:`load_arcface`.
"""
from __future__ import annotations

import os

import torch
from torch import nn


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class SEBlock(nn.Module):
    """Squeeze-and-excitation (only with ``use_se=True``; the released ResNet-18 has none)."""

    def __init__(self, channel: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(channel, channel // reduction), nn.PReLU(), nn.Linear(channel // reduction, channel), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        return x * self.fc(x.mean(dim=(2, 3))).view(b, c, 1, 1)


class IRBlock(nn.Module):
    """Improved residual block: BN-conv-BN-PReLU-conv-BN (+ shortcut), then the same PReLU again."""

    def __init__(self, cin: int, cout: int, stride: int = 1, downsample: nn.Module | None = None,
                 use_se: bool = False) -> None:
        super().__init__()
        self.bn0 = nn.BatchNorm2d(cin)
        self.conv1 = _conv3x3(cin, cin)
        self.bn1 = nn.BatchNorm2d(cin)
        self.prelu = nn.PReLU()
        self.conv2 = _conv3x3(cin, cout, stride)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = downsample
        self.se = SEBlock(cout) if use_se else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.prelu(self.bn1(self.conv1(self.bn0(x))))
        out = self.bn2(self.conv2(out))
        if self.se is not None:
            out = self.se(out)
        residual = x if self.downsample is None else self.downsample(x)
        return self.prelu(out + residual)


class ResNetArcFace(nn.Module):
    """ArcFace ResNet with IRBlocks; ``ResNetArcFace()`` is the released ResNet-18 (25,640,807 parameters)."""

    def __init__(self, layers: tuple[int, ...] = (2, 2, 2, 2), use_se: bool = False) -> None:
        super().__init__()
        self.use_se = use_se
        self._inplanes = 64
        self.conv1 = nn.Conv2d(1, 64, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.prelu = nn.PReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.bn4 = nn.BatchNorm2d(512)
        self.dropout = nn.Dropout()
        self.fc5 = nn.Linear(512 * 8 * 8, 512)
        self.bn5 = nn.BatchNorm1d(512)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self._inplanes, planes, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )
        layers = [IRBlock(self._inplanes, planes, stride, downsample, use_se=self.use_se)]
        self._inplanes = planes
        layers += [IRBlock(planes, planes, use_se=self.use_se) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.prelu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(self.bn4(x))
        return self.bn5(self.fc5(torch.flatten(x, 1)))


def strip_module_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the ``module.`` prefix DataParallel checkpoints carry (all keys or none)."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def load_arcface(path: str | os.PathLike[str]) -> ResNetArcFace:
    """ResNetArcFace with a checkpoint loaded strictly (bare state dict, ``module.`` prefix or not)."""
    from bench.weights import load_state_dict

    state = load_state_dict(path)
    if isinstance(state.get("state_dict"), dict):  # some re-saves wrap it
        state = state["state_dict"]
    net = ResNetArcFace()
    try:
        net.load_state_dict(strip_module_prefix(state), strict=True)
    except RuntimeError as exc:
        raise ValueError(
            f"{path}: not an ArcFace ResNet-18 (ResNetArcFace IRBlock [2,2,2,2], use_se=False) checkpoint: {exc}"
        ) from exc
    return net.eval().requires_grad_(False)
