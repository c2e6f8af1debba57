"""AdaFace IR-50 (Kim et al., CVPR 2022), with the tensor names of the official checkpoints.

The official release (mk-minchul/AdaFace ``net.py``) builds an "improved ResNet" backbone:
a 3x3 stem with PReLU, four stages of pre-activation basic blocks (3, 4, 14, 3 blocks; 64,
128, 256, 512 channels; the first block of each stage strides 2), then BN -> dropout ->
flatten -> Linear(512*7*7, 512) -> BN1d without affine. ``forward`` returns the L2-normalised
512-d embedding and its norm. Input: 112x112 aligned faces, **BGR**, ``(x/255 - 0.5) / 0.5``.

Checkpoints (``adaface_ir50_ms1mv2.ckpt``, ``adaface_ir50_webface4m.ckpt``) are PyTorch Lightning
files: ``state_dict`` holds the backbone under ``model.`` plus the training head (``head.kernel``),
which inference drops. :func:`load_adaface` loads them strictly with ``weights_only=True``.
"""
from __future__ import annotations

import argparse
import os
from typing import Any

import torch
from torch import nn

#: (in channels, out channels, blocks) per stage of IR-50
IR50_STAGES: tuple[tuple[int, int, int], ...] = ((64, 64, 3), (64, 128, 4), (128, 256, 14), (256, 512, 3))
EMBEDDING = 512


class BasicBlockIR(nn.Module):
    """Pre-activation residual block: BN, conv3x3, BN, PReLU, conv3x3 (stride here), BN, plus a shortcut."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        if cin == cout:
            self.shortcut_layer: nn.Module = nn.MaxPool2d(1, stride)  # subsampling only, no weights
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.PReLU(cout),
            nn.Conv2d(cout, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class AdaFaceIR50(nn.Module):
    """The IR-50 backbone; ``forward`` gives (unit embedding (B, 512), norm (B, 1))."""

    def __init__(self, stages: tuple[tuple[int, int, int], ...] = IR50_STAGES) -> None:
        super().__init__()
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64))
        blocks = []
        for cin, cout, n in stages:
            blocks.append(BasicBlockIR(cin, cout, 2))
            blocks += [BasicBlockIR(cout, cout, 1) for _ in range(n - 1)]
        self.body = nn.Sequential(*blocks)
        last = stages[-1][1]
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(last),
            nn.Dropout(0.4),
            nn.Flatten(),
            nn.Linear(last * 7 * 7, EMBEDDING),
            nn.BatchNorm1d(EMBEDDING, affine=False),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.output_layer(self.body(self.input_layer(x)))
        norm = torch.norm(emb, 2, 1, True)
        return emb / norm, norm


def backbone_state(ckpt: Any) -> dict[str, torch.Tensor]:
    """The backbone tensors of a checkpoint: Lightning ``state_dict`` with ``model.`` keys, or a bare state dict."""
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError("not an AdaFace checkpoint: expected a dict with a 'state_dict' mapping")
    prefixed = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    return prefixed if prefixed else {k: v for k, v in state.items() if not k.startswith("head.")}


def read_checkpoint(path: str | os.PathLike[str]) -> Any:
    """``torch.load(weights_only=True)``; Lightning's saved argparse hyper-parameters are allowed, nothing else."""
    with torch.serialization.safe_globals([argparse.Namespace]):
        return torch.load(os.fspath(path), map_location="cpu", weights_only=True)


def load_adaface(path: str | os.PathLike[str]) -> AdaFaceIR50:
    """Build IR-50 and load ``path`` strictly (every backbone tensor, names and shapes); eval mode."""
    from bench.weights.resolve import state_dict_mismatch

    try:
        ckpt = read_checkpoint(path)
    except Exception as exc:  # pickle refusing a global, truncated file ...
        raise ValueError(
            f"{path}: cannot read as an AdaFace checkpoint with weights_only=True ({type(exc).__name__}: {exc}); "
            "use the official adaface_ir50_ms1mv2.ckpt, or save its ['state_dict'] alone with torch.save"
        ) from exc
    state = backbone_state(ckpt)
    net = AdaFaceIR50()
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: not an AdaFace IR-50 checkpoint: {state_dict_mismatch(net, state)}") from exc
    return net.eval()


__all__ = ["AdaFaceIR50", "BasicBlockIR", "IR50_STAGES", "backbone_state", "load_adaface", "read_checkpoint"]
