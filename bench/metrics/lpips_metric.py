"""LPIPS (Zhang et al. 2018), v0.1, as the ``lpips`` package computes it: ``lpips`` (VGG) and ``lpips-alex``.

The BFR papers (VQFR ``metric_paper/calculate_lpips.py``, CodeFormer, RestoreFormer) use
``lpips.LPIPS(net='vgg')`` on RGB inputs normalised to [-1, 1]. The network here is the same
computation written out: ImageNet backbone (torchvision VGG16 / AlexNet ``features``, sliced
where the package slices it), the package's input scaling layer, unit-normalised features
(eps 1e-10), the v0.1 learned linear layers (1x1 convs, no bias), spatial mean, sum over layers.

The linear layers are the ones the ``lpips`` package ships (``lpips/weights/v0.1/<net>.pth``;
taken from the installed package, or fetched from its PyPI wheel). The backbones are the
torchvision ImageNet checkpoints the package would download at run time; here they come
from the weights manager (``bfrbench fetch vgg16_imagenet_torchvision``).
"""
from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from bench.core.registry import METRICS
from bench.metrics.base import MeanOfImages, MetricUnavailable
from bench.weights import MissingWeightsError

#: per backbone: torchvision layer config, slice boundaries (as lpips.pretrained_networks), channels
_VGG16_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
_SLICES = {"vgg": (4, 9, 16, 23, 30), "alex": (2, 5, 8, 10, 12)}
CHANNELS = {"vgg": (64, 128, 256, 512, 512), "alex": (64, 192, 384, 256, 256)}

BACKBONE_WEIGHTS = {"vgg": "vgg16_imagenet_torchvision", "alex": "alexnet_imagenet_torchvision"}
LINEAR_WEIGHTS = {"vgg": "lpips_v0.1_vgg_linear", "alex": "lpips_v0.1_alex_linear"}


def _vgg16_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = 3
    for v in _VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(cin, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            cin = int(v)
    return nn.Sequential(*layers)  # indices as torchvision's vgg16().features[:30]


def _alexnet_features() -> nn.Sequential:
    return nn.Sequential(  # indices as torchvision's alexnet().features[:12]
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
    )


def _normalize(feat: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return feat / (torch.sqrt(torch.sum(feat**2, dim=1, keepdim=True)) + eps)


class LPIPSNet(nn.Module):
    """LPIPS v0.1 distance; inputs (B, 3, H, W) RGB in [-1, 1]; returns (B,)."""

    def __init__(self, net: str = "vgg") -> None:
        super().__init__()
        if net not in _SLICES:
            raise ValueError(f"LPIPS backbone must be 'vgg' or 'alex', not {net!r}")
        self.net_type = net
        self.features = _vgg16_features() if net == "vgg" else _alexnet_features()
        self.bounds = _SLICES[net]
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in CHANNELS[net])

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Backbone activations at the five LPIPS layers (relu1_2 ... relu5_3 for VGG)."""
        out, start = [], 0
        for end in self.bounds:
            for i in range(start, end):
                x = self.features[i](x)
            out.append(x)
            start = end
        return out

    def forward(self, in0: torch.Tensor, in1: torch.Tensor) -> torch.Tensor:
        f0 = self.taps((in0 - self.shift) / self.scale)
        f1 = self.taps((in1 - self.shift) / self.scale)
        val = 0
        for lin, a, b in zip(self.lins, f0, f1):
            val = val + lin((_normalize(a) - _normalize(b)) ** 2).mean(dim=(2, 3), keepdim=True)
        return val.view(-1)  # type: ignore[union-attr]

    def load_backbone(self, state: dict[str, torch.Tensor]) -> None:
        """Load a torchvision VGG16 / AlexNet state dict (``features.N.*``; the classifier is ignored)."""
        own = self.features.state_dict()
        picked = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.") and k[9:] in own}
        missing = sorted(set(own) - set(picked))
        if missing:
            raise ValueError(f"backbone checkpoint lacks {missing[:4]}... (not a torchvision {self.net_type} state dict?)")
        self.features.load_state_dict(picked, strict=True)

    def load_linear(self, state: dict[str, torch.Tensor]) -> None:
        """Load the lpips package's ``lin{k}.model.1.weight`` tensors."""
        self.lins.load_state_dict({f"{k}.weight": state[f"lin{k}.model.1.weight"] for k in range(len(self.lins))})


def linear_weights_path(net: str, auto_fetch: bool = True) -> Path:
    """The v0.1 linear layers: the installed lpips package's file, else the managed PyPI copy."""
    spec = importlib.util.find_spec("lpips")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            p = Path(root) / "weights" / "v0.1" / f"{net}.pth"
            if p.is_file():
                return p
    from bench.weights import resolve

    return resolve(LINEAR_WEIGHTS[net], auto_fetch=auto_fetch)


def build_lpips(net: str = "vgg", backbone: str | os.PathLike[str] | None = None,
                linear: str | os.PathLike[str] | None = None) -> LPIPSNet:
    """An :class:`LPIPSNet` with its backbone and linear weights loaded, in eval mode."""
    from bench.weights import load_state_dict, resolve

    model = LPIPSNet(net)
    model.load_backbone(load_state_dict(resolve(BACKBONE_WEIGHTS[net], backbone)))
    model.load_linear(load_state_dict(linear if linear is not None else linear_weights_path(net)))
    return model.eval().requires_grad_(False)


@METRICS.register
class LPIPS(MeanOfImages):
    """Per-image LPIPS v0.1 (VGG) of restored vs GT, inputs mapped from [0, 1] to [-1, 1]."""

    name = "lpips"
    weights = (BACKBONE_WEIGHTS["vgg"], LINEAR_WEIGHTS["vgg"])
    description = "LPIPS v0.1, VGG backbone (the papers' choice), RGB in [-1, 1], as lpips.LPIPS(net='vgg')"
    higher_better = False
    needs_gt = True
    protocol = "lpips-0.1-vgg"
    standard = True
    net = "vgg"
    #: what ``bfrbench list`` checks, from data (as :meth:`available`: the linear layers ship with the package)
    listing_check: ClassVar[dict[str, Any]] = {"weights": [BACKBONE_WEIGHTS["vgg"]], "module": "lpips"}

    def __init__(self, weights: str | None = None, linear: str | None = None) -> None:
        super().__init__()
        try:
            self.model = build_lpips(self.net, weights, linear)
        except MissingWeightsError as exc:
            raise MetricUnavailable(
                f"{self.name}: {exc} (the lpips package would download this torchvision backbone at run time)", exc.fix
            ) from exc

    @classmethod
    def available(cls) -> tuple[bool, str]:
        """Its backbone and linear weights present (the linear layers may come from the lpips package).

        ``bfrbench list`` checks the same from data: :attr:`listing_check`."""
        return _available(cls.net)()

    def score(self, pred: torch.Tensor, gt: torch.Tensor | None) -> torch.Tensor:
        assert gt is not None
        return self.model((pred.float() - 0.5) / 0.5, (gt.float() - 0.5) / 0.5)


@METRICS.register
class LPIPSAlex(LPIPS):
    """Per-image LPIPS v0.1 with the AlexNet backbone (the package default; papers report VGG)."""

    name = "lpips-alex"
    weights = (BACKBONE_WEIGHTS["alex"], LINEAR_WEIGHTS["alex"])
    description = "LPIPS v0.1, AlexNet backbone (the lpips package default), RGB in [-1, 1]"
    protocol = "lpips-0.1-alex"
    net = "alex"
    listing_check: ClassVar[dict[str, Any]] = {"weights": [BACKBONE_WEIGHTS["alex"]], "module": "lpips"}


def _available(net: str) -> Callable[[], tuple[bool, str]]:
    def check() -> tuple[bool, str]:
        from bench.weights import resolve

        try:
            resolve(BACKBONE_WEIGHTS[net], verify=False, auto_fetch=False)
            linear_weights_path(net, auto_fetch=False)
        except MissingWeightsError as exc:
            return False, str(exc)
        return True, ""

    return check



__all__ = ["LPIPS", "LPIPSAlex", "LPIPSNet", "build_lpips", "linear_weights_path"]
