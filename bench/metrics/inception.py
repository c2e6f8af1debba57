"""The FID InceptionV3 of pytorch-fid / BasicSR (TF ``inception-2015-12-05`` ported to PyTorch).

The network is pytorch-fid's: torchvision's ``Inception3`` (``aux_logits=False``, 1008 classes)
with the package's FID blocks (``FIDInceptionA/C/E_1/E_2``: average pools that do not count the
zero padding, a max pool in the last block), so the official ``pt_inception-2015-12-05-6726825d.pth``
loads with ``strict=True``. Its weights come from the weights manager, read ``weights_only``.
:meth:`FIDInceptionV3.forward` returns the 2048-d pool3 features (block index 3).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

WEIGHTS_NAME = "pt_inception_fid"


#: pytorch-fid's FID blocks in place of torchvision's (``pytorch_fid.inception.fid_inception_v3``)
_FID_BLOCKS = (
    ("Mixed_5b", "FIDInceptionA", (192,), {"pool_features": 32}),
    ("Mixed_5c", "FIDInceptionA", (256,), {"pool_features": 64}),
    ("Mixed_5d", "FIDInceptionA", (288,), {"pool_features": 64}),
    ("Mixed_6b", "FIDInceptionC", (768,), {"channels_7x7": 128}),
    ("Mixed_6c", "FIDInceptionC", (768,), {"channels_7x7": 160}),
    ("Mixed_6d", "FIDInceptionC", (768,), {"channels_7x7": 160}),
    ("Mixed_6e", "FIDInceptionC", (768,), {"channels_7x7": 192}),
    ("Mixed_7b", "FIDInceptionE_1", (1280,), {}),
    ("Mixed_7c", "FIDInceptionE_2", (2048,), {}),
)
_TRUNK = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
          "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
          "Mixed_7a", "Mixed_7b", "Mixed_7c", "fc")


def _pytorch_fid_inception() -> nn.Module:
    """pytorch-fid's FID Inception (torchvision's ``Inception3``, 1008 classes, its FID blocks), unloaded.

    ``fid_inception_v3`` itself would download and ``torch.load`` the checkpoint; this builds the same
    network from the package's classes and leaves the weights to :func:`load_fid_inception`.
    """
    from pytorch_fid import inception as pfi

    net = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    for name, cls, args, kwargs in _FID_BLOCKS:
        setattr(net, name, getattr(pfi, cls)(*args, **kwargs))
    return net


class FIDInceptionV3(nn.Module):
    """pytorch-fid's FID InceptionV3 under the official checkpoint's names; ``forward(x)`` takes
    (B, 3, 299, 299) in [-1, 1] and returns the (B, 2048) pool3 features, as ``InceptionV3([3])`` does."""

    def __init__(self, init: bool = True) -> None:
        """``init=False``: built on the meta device and left unfilled, for a caller that loads every weight next."""
        super().__init__()
        with torch.device("cpu") if init else torch.device("meta"):
            net = _pytorch_fid_inception()
        for name in _TRUNK:  # the classifier is in the checkpoint: kept so it loads strictly, never used
            self.add_module(name, getattr(net, name))
        if not init:
            self.to_empty(device="cpu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)


def basicsr_fid_input(img: torch.Tensor) -> torch.Tensor:
    """[0, 1] RGB -> the FID network input of BasicSR's ``calculate_fid_folder``.

    The dataset normalises with mean = std = 0.5 to [-1, 1]; ``load_patched_inception_v3``
    then resizes bilinearly (align_corners=False, no antialias) to 299 x 299 and does not
    normalise again.
    """
    x = (img - 0.5) / 0.5
    if x.shape[-2:] != (299, 299):
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    return x


def load_fid_inception(path: str | None = None) -> FIDInceptionV3:
    """The FID Inception with the official weights (``path`` or the managed copy), in eval mode."""
    from bench.weights import load_state_dict, resolve

    net = FIDInceptionV3(init=False)  # every weight is loaded below (strict)
    state = load_state_dict(resolve(WEIGHTS_NAME, path))
    net.load_state_dict(state, strict=True)
    return net.eval().requires_grad_(False)
