"""LPIPS (Zhang et al. 2018), v0.1, as the ``lpips`` package computes it: ``lpips`` (VGG) and ``lpips-alex``.

The BFR papers (VQFR ``metric_paper/calculate_lpips.py``, CodeFormer, RestoreFormer) use
``lpips.LPIPS(net='vgg')`` on RGB inputs normalised to [-1, 1]. The network here is that
package's own module (:class:`LPIPSNet` wraps ``lpips.LPIPS``); only its weights are loaded by
bfrbench, with ``weights_only=True``, instead of the package's own ``torch.load`` calls and downloads.

The linear layers are the ones the ``lpips`` package ships (``lpips/weights/v0.1/<net>.pth``;
taken from the installed package, or fetched from its PyPI wheel). The backbones are the
torchvision ImageNet checkpoints the package would download at run time; here they come
from the weights manager (``bfrbench fetch vgg16_imagenet_torchvision``).
"""
from __future__ import annotations

import importlib.util
import os
import warnings
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from bench.core.registry import METRICS
from bench.metrics.base import MeanOfImages, MetricUnavailable
from bench.weights import MissingWeightsError

BACKBONE_WEIGHTS = {"vgg": "vgg16_imagenet_torchvision", "alex": "alexnet_imagenet_torchvision"}
LINEAR_WEIGHTS = {"vgg": "lpips_v0.1_vgg_linear", "alex": "lpips_v0.1_alex_linear"}
NETS = tuple(BACKBONE_WEIGHTS)


class LPIPSNet(nn.Module):
    """The ``lpips`` package's network (``lpips.LPIPS``, v0.1), its weights loaded by bfrbench.

    The package is built with a random trunk and no linear layers (``pnet_rand=True``,
    ``pretrained=False``), so it downloads and unpickles nothing; :meth:`load_backbone` and
    :meth:`load_linear` then fill it from tensors that :func:`bench.weights.load_state_dict` read
    with ``weights_only=True``. Inputs (B, 3, H, W) RGB in [-1, 1]; returns (B,).
    """

    def __init__(self, net: str = "vgg", init: bool = True) -> None:
        """``init=False``: built on the meta device and left unfilled (no random init of torchvision's whole
        VGG16, classifier included: seconds); for a caller that loads every weight next (:func:`build_lpips`)."""
        super().__init__()
        if net not in NETS:
            raise ValueError(f"LPIPS backbone must be 'vgg' or 'alex', not {net!r}")
        try:
            import lpips
        except ImportError as exc:
            raise MetricUnavailable.because("lpips", exc) from exc
        self.net_type = net
        with warnings.catch_warnings(), (torch.device("cpu") if init else torch.device("meta")):
            warnings.simplefilter("ignore")  # torchvision's "pretrained is deprecated" from inside the package
            self.model = lpips.LPIPS(net=net, version="0.1", pretrained=False, pnet_rand=True, verbose=False)
        if not init:
            self.model.to_empty(device="cpu")
            self.model.scaling_layer = lpips.ScalingLayer()  # its constant buffers, made again on the CPU
        self.model.eval()

    @property
    def lins(self) -> list[nn.Conv2d]:
        """The five linear layers (1x1 convolutions without bias)."""
        return [lin.model[1] for lin in self.model.lins]

    @property
    def features(self) -> nn.Sequential:
        """The trunk's layers under torchvision's ``features`` indices (``0.weight`` ... as in ``vgg16().features``)."""
        layers = [(name, m) for k in range(1, len(self.model.chns) + 1)
                  for name, m in getattr(self.model.net, f"slice{k}").named_children()]
        return nn.Sequential(OrderedDict(layers))

    def forward(self, in0: torch.Tensor, in1: torch.Tensor) -> torch.Tensor:
        return self.model(in0, in1).view(-1)

    def load_backbone(self, state: dict[str, torch.Tensor]) -> None:
        """Load a torchvision VGG16 / AlexNet state dict (``features.N.*``; the classifier is ignored)."""
        own = self.features.state_dict()
        picked = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.") and k[9:] in own}
        missing = sorted(set(own) - set(picked))
        if missing:
            raise ValueError(f"backbone checkpoint lacks {missing[:4]}... (not a torchvision {self.net_type} state dict?)")
        self.features.load_state_dict(picked, strict=True)

    def load_linear(self, state: dict[str, torch.Tensor]) -> None:
        """Load the lpips package's v0.1 linear layers (``lin{k}.model.1.weight``)."""
        keys = [f"lin{k}.model.1.weight" for k in range(len(self.model.chns))]
        missing = [k for k in keys if k not in state]
        if missing:
            raise ValueError(f"LPIPS linear checkpoint lacks {missing}")
        with torch.no_grad():
            for conv, key in zip(self.lins, keys):
                conv.weight.copy_(state[key])


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

    model = LPIPSNet(net, init=False)  # every weight is loaded below
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
