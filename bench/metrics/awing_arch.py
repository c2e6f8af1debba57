"""AWing FAN (4 stacked hourglasses with CoordConv and boundary channels), 98 WFLW landmarks.

The landmark network of the BFR papers' LMD (VQFR ``metric_paper/calculate_landmark_distance.py``,
facexlib ``init_alignment_model('awing_fan')``). Module names match ``alignment_WFLW_4HG.pth``
(``state_dict`` entry) for a strict load. :func:`heatmap_points` is facexlib's
``calculate_points``, quirks included (see its docstring).
"""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class AddCoords(nn.Module):
    """Append coordinate channels (+ radius, + boundary-masked coordinates) as facexlib's AddCoordsTh.

    As in the original, the "x" channel varies along the height axis and "y" along the width.
    """

    def __init__(self, x_dim: int, y_dim: int, with_r: bool, with_boundary: bool) -> None:
        super().__init__()
        self.x_dim, self.y_dim = x_dim, y_dim
        self.with_r, self.with_boundary = with_r, with_boundary

    def forward(self, x: torch.Tensor, heatmap: torch.Tensor | None = None) -> torch.Tensor:
        b = x.shape[0]
        xs = torch.arange(self.x_dim, dtype=torch.float32, device=x.device) / (self.x_dim - 1) * 2 - 1
        ys = torch.arange(self.y_dim, dtype=torch.float32, device=x.device) / (self.y_dim - 1) * 2 - 1
        xx = xs.view(1, 1, self.x_dim, 1).expand(b, 1, self.x_dim, self.y_dim)
        yy = ys.view(1, 1, 1, self.y_dim).expand(b, 1, self.x_dim, self.y_dim)
        parts = [x, xx, yy]
        if self.with_r:
            rr = torch.sqrt(xx**2 + yy**2)
            parts.append(rr / torch.max(rr))
        if self.with_boundary and heatmap is not None:
            boundary = torch.clamp(heatmap[:, -1:, :, :], 0.0, 1.0)
            zero = torch.zeros_like(xx)
            parts += [torch.where(boundary > 0.05, xx, zero), torch.where(boundary > 0.05, yy, zero)]
        return torch.cat(parts, dim=1)


class CoordConv(nn.Module):
    """AddCoords followed by a convolution (``addcoords`` + ``conv`` as in the checkpoint)."""

    def __init__(self, x_dim: int, y_dim: int, with_r: bool, with_boundary: bool, in_channels: int,
                 first_one: bool = False, **conv_kwargs) -> None:
        super().__init__()
        self.addcoords = AddCoords(x_dim, y_dim, with_r, with_boundary)
        in_channels += 2 + int(with_r) + (2 if with_boundary and not first_one else 0)
        self.conv = nn.Conv2d(in_channels=in_channels, **conv_kwargs)

    def forward(self, x: torch.Tensor, heatmap: torch.Tensor | None = None) -> torch.Tensor:
        return self.conv(self.addcoords(x, heatmap))


def _conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=1, padding=1, bias=False)


class ConvBlock(nn.Module):
    """Hierarchical, parallel & multi-scale residual block (out = cat of 1/2, 1/4, 1/4 channels)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = _conv3x3(cin, cout // 2)
        self.bn2 = nn.BatchNorm2d(cout // 2)
        self.conv2 = _conv3x3(cout // 2, cout // 4)
        self.bn3 = nn.BatchNorm2d(cout // 4)
        self.conv3 = _conv3x3(cout // 4, cout // 4)
        self.downsample = None
        if cin != cout:
            self.downsample = nn.Sequential(
                nn.BatchNorm2d(cin), nn.ReLU(True), nn.Conv2d(cin, cout, kernel_size=1, stride=1, bias=False)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = self.conv1(F.relu(self.bn1(x)))
        out2 = self.conv2(F.relu(self.bn2(out1)))
        out3 = self.conv3(F.relu(self.bn3(out2)))
        residual = x if self.downsample is None else self.downsample(x)
        return torch.cat((out1, out2, out3), 1) + residual


class HourGlass(nn.Module):
    """Depth-4 hourglass of ConvBlocks behind a CoordConv (boundary channels after the first stack)."""

    def __init__(self, depth: int, first_one: bool) -> None:
        super().__init__()
        self.depth = depth
        self.coordconv = CoordConv(64, 64, True, True, 256, first_one, out_channels=256, kernel_size=1, stride=1,
                                   padding=0)
        self._build(depth)

    def _build(self, level: int) -> None:
        self.add_module(f"b1_{level}", ConvBlock(256, 256))
        self.add_module(f"b2_{level}", ConvBlock(256, 256))
        if level > 1:
            self._build(level - 1)
        else:
            self.add_module(f"b2_plus_{level}", ConvBlock(256, 256))
        self.add_module(f"b3_{level}", ConvBlock(256, 256))

    def _forward(self, level: int, x: torch.Tensor) -> torch.Tensor:
        up1 = self._modules[f"b1_{level}"](x)
        low = self._modules[f"b2_{level}"](F.avg_pool2d(x, 2, stride=2))
        low = self._forward(level - 1, low) if level > 1 else self._modules[f"b2_plus_{level}"](low)
        low = self._modules[f"b3_{level}"](low)
        return up1 + F.interpolate(low, scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor, heatmap: torch.Tensor | None) -> torch.Tensor:
        return self._forward(self.depth, self.coordconv(x, heatmap))


class FAN(nn.Module):
    """AWing FAN; ``forward`` takes (B, 3, 256, 256) RGB in [0, 1] and returns every stack's heatmaps.

    Each heatmap tensor is (B, num_landmarks + 1, 64, 64); the last channel is the boundary map.
    """

    def __init__(self, num_modules: int = 4, num_landmarks: int = 98, end_relu: bool = False) -> None:
        super().__init__()
        self.num_modules, self.end_relu = num_modules, end_relu
        self.conv1 = CoordConv(256, 256, True, False, 3, out_channels=64, kernel_size=7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = ConvBlock(64, 128)
        self.conv3 = ConvBlock(128, 128)
        self.conv4 = ConvBlock(128, 256)
        for i in range(num_modules):
            self.add_module(f"m{i}", HourGlass(4, first_one=i == 0))
            self.add_module(f"top_m_{i}", ConvBlock(256, 256))
            self.add_module(f"conv_last{i}", nn.Conv2d(256, 256, kernel_size=1))
            self.add_module(f"bn_end{i}", nn.BatchNorm2d(256))
            self.add_module(f"l{i}", nn.Conv2d(256, num_landmarks + 1, kernel_size=1))
            if i < num_modules - 1:
                self.add_module(f"bl{i}", nn.Conv2d(256, 256, kernel_size=1))
                self.add_module(f"al{i}", nn.Conv2d(num_landmarks + 1, 256, kernel_size=1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.conv4(self.conv3(F.avg_pool2d(self.conv2(x), 2, stride=2)))
        previous, heat, outputs = x, None, []
        for i in range(self.num_modules):
            ll = self._modules[f"top_m_{i}"](self._modules[f"m{i}"](previous, heat))
            ll = F.relu(self._modules[f"bn_end{i}"](self._modules[f"conv_last{i}"](ll)))
            heat = self._modules[f"l{i}"](ll)
            if self.end_relu:
                heat = F.relu(heat)
            outputs.append(heat)
            if i < self.num_modules - 1:
                previous = previous + self._modules[f"bl{i}"](ll) + self._modules[f"al{i}"](heat)
        return outputs


def heatmap_points(heatmaps: np.ndarray) -> np.ndarray:
    """facexlib ``calculate_points``: argmax + quarter-pixel shift toward the larger neighbour, + 0.5.

    Reproduced as published, including its quirks: the vertical neighbours fall back to flat
    indices 4095 / 0 for *every* point once *any* point touches the bottom / top row (the caller
    passes one image, as the metric script does), and the horizontal neighbours are the flat
    indices +-1 (wrapping across rows). Returns (B, N, 2) as (x, y) in heatmap pixels.
    """
    b, n, h, w = heatmaps.shape
    hw = h * w
    flat = heatmaps.reshape(b * n, hw)
    idx = np.argmax(flat, axis=1)
    preds = np.stack((idx % w, idx // w), axis=1).astype(np.float64)
    rows = np.arange(b * n)
    x_up = flat[rows, np.minimum(idx + 1, hw - 1)]  # the original indexes idx + 1 (an IndexError at the end)
    x_down = flat[rows, idx - 1]
    y_up = flat[rows, 4095] if np.any(idx + w >= 4096) else flat[rows, idx + w]
    y_down = flat[rows, 0] if np.any(idx - w <= 0) else flat[rows, idx - w]
    preds += 0.25 * np.sign(np.stack((x_up - x_down, y_up - y_down), axis=1))
    return (preds + 0.5).reshape(b, n, 2)


def heatmap_points_torch(heatmaps: torch.Tensor) -> torch.Tensor:
    """:func:`heatmap_points` in torch on the heatmaps' device, per image, float64: the same points exactly.

    The published quirks are kept image by image (the metric script passes one image at a time):
    the flat-index fallbacks 4095 / 0 apply to every point of an image once any of its points
    touches the bottom / top row; horizontal neighbours wrap across rows; ``idx - 1`` at 0 wraps to
    the last element as numpy's negative index does.
    """
    b, n, h, w = heatmaps.shape
    hw = h * w
    flat = heatmaps.reshape(b, n, hw)
    idx = flat.argmax(dim=2)  # (B, N); the first maximum, as numpy
    preds = torch.stack((idx % w, idx // w), dim=2).to(torch.float64)

    def at(i: torch.Tensor) -> torch.Tensor:
        return flat.gather(2, i.unsqueeze(2)).squeeze(2)

    x_up = at(torch.clamp(idx + 1, max=hw - 1))
    x_down = at(torch.remainder(idx - 1, hw))
    bottom = (idx + w >= 4096).any(dim=1, keepdim=True)
    top = (idx - w <= 0).any(dim=1, keepdim=True)
    y_up = torch.where(bottom, flat[:, :, 4095 % hw], at(torch.clamp(idx + w, max=hw - 1)))
    y_down = torch.where(top, flat[:, :, 0], at(torch.clamp(idx - w, min=0)))
    shift = torch.stack((torch.sign(x_up - x_down), torch.sign(y_up - y_down)), dim=2).to(torch.float64)
    return preds + 0.25 * shift + 0.5


def load_fan(path: str | os.PathLike[str]) -> FAN:
    """FAN (4 stacks, 98 points) with ``alignment_WFLW_4HG.pth`` loaded strictly (``state_dict`` entry)."""
    from bench.weights import load_state_dict

    obj = load_state_dict(path)
    state = obj["state_dict"] if isinstance(obj.get("state_dict"), dict) else obj
    state = {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}
    net = FAN()
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: not an AWing FAN (4HG, 98 WFLW points) checkpoint: {exc}") from exc
    return net.eval().requires_grad_(False)
