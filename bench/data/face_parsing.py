"""Face-parsing soft masks for pasting restored faces back, as facexlib's FaceRestoreHelper makes them.

``FaceRestoreHelper.paste_faces_to_input_image`` with ``use_parse=True`` (CodeFormer's and GFPGAN's
whole-photo scripts) resizes the restored face to 512 (bilinear), normalises it to [-1, 1], runs
the parser, takes the per-pixel argmax, maps the 19 classes to 255 (face, brows, eyes, ears,
nose, mouth, lips, eyeglasses, earrings) or 0 (background, neck, cloth, hair, hat), blurs twice
with a 101x101 Gaussian of sigma 11, zeroes a 10-pixel border and divides by 255.
:meth:`FaceParser.soft_masks` returns that mask (512x512) before facexlib resizes it to the face
size and warps it into the photo. The networks run batched; the mask maths are facexlib's, in
float64 as there, returned as float32.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from bench.data.nets.bisenet import BiSeNet
from bench.data.nets.loading import NetWeights, load_weights
from bench.data.nets.parsenet import ParseNet

#: the parser's input size (facexlib resizes every face to it)
PARSE_SIZE = 512
#: facexlib's MASK_COLORMAP: which of the 19 classes are pasted (255) and which keep the background (0)
MASK_COLORMAP = (0, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 0, 255, 0, 0, 0)
BLUR_KSIZE, BLUR_SIGMA, BLUR_PASSES = 101, 11, 2
#: rows / columns zeroed at each side of the blurred mask
BORDER = 10


@dataclass(frozen=True)
class ParserKind:
    """A face parser bfrbench can run: its catalogue asset and its network."""

    weights: str
    build: Callable[[], torch.nn.Module]


PARSERS: dict[str, ParserKind] = {
    "parsenet": ParserKind("parsing-parsenet", ParseNet),  # CodeFormer's and GFPGAN's default
    "bisenet": ParserKind("parsing-bisenet", BiSeNet),
}


def mask_from_labels(labels: np.ndarray) -> np.ndarray:
    """facexlib's soft mask (float32, [0, 1]) from a parsing label map (H, W) of class indices."""
    mask = np.asarray(MASK_COLORMAP, dtype=np.float64)[labels]
    for _ in range(BLUR_PASSES):
        mask = cv2.GaussianBlur(mask, (BLUR_KSIZE, BLUR_KSIZE), BLUR_SIGMA)
    mask[:BORDER, :] = 0
    mask[-BORDER:, :] = 0
    mask[:, :BORDER] = 0
    mask[:, -BORDER:] = 0
    return (mask / 255.0).astype(np.float32)


class FaceParser:
    """A face-parsing network on a device, turning restored faces into paste-back soft masks."""

    def __init__(self, net: torch.nn.Module, name: str, device: str | torch.device = "cpu",
                 weights: NetWeights | None = None, batch_size: int = 4) -> None:
        self.name, self.weights, self.batch_size = name, weights, max(1, int(batch_size))
        self.device = torch.device(device)
        self.net = net.eval().requires_grad_(False).to(self.device)

    def _inputs(self, faces: Sequence[np.ndarray]) -> torch.Tensor:
        """The faces as facexlib feeds them: 512x512 (bilinear resize), RGB, (x / 255 - 0.5) / 0.5."""
        batch = []
        for i, face in enumerate(faces):
            if face.dtype != np.uint8 or face.ndim != 3 or face.shape[2] != 3:
                raise ValueError(f"face {i}: expected an RGB uint8 (H, W, 3) image, got {face.dtype} {face.shape}")
            if face.shape[:2] != (PARSE_SIZE, PARSE_SIZE):
                face = cv2.resize(face, (PARSE_SIZE, PARSE_SIZE), interpolation=cv2.INTER_LINEAR)
            batch.append(face)
        # NCHW-contiguous, as facexlib's one-face tensor is laid out for the convolutions: a channels-last
        # batch takes other kernels, whose rounding differs (2.7e-4 on full-size ParseNet logits)
        x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).contiguous().float() / 255.0
        return (x - 0.5) / 0.5

    @torch.no_grad()
    def logits(self, faces: Sequence[np.ndarray]) -> torch.Tensor:
        """Parsing logits (N, 19, 512, 512) on the CPU, computed ``batch_size`` faces at a time."""
        if not faces:
            return torch.empty(0, 19, PARSE_SIZE, PARSE_SIZE)
        outs = []
        for start in range(0, len(faces), self.batch_size):
            x = self._inputs(faces[start:start + self.batch_size]).to(self.device)
            outs.append(self.net(x).float().cpu())
        return torch.cat(outs)

    def labels(self, faces: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The argmax class map (512, 512) of each face."""
        return list(self.logits(faces).argmax(dim=1).numpy())

    def soft_masks(self, faces: Sequence[np.ndarray]) -> list[np.ndarray]:
        """facexlib's paste-back mask (512x512 float32 in [0, 1]) for each restored RGB uint8 face."""
        return [mask_from_labels(lab) for lab in self.labels(faces)]


def load_face_parser(name: str = "parsenet", device: str | torch.device = "cpu",
                     weights: str | os.PathLike[str] | None = None, random_weights: bool = False,
                     seed: int = 0, batch_size: int = 4) -> FaceParser:
    """The ``parsenet`` or ``bisenet`` parser with its released weights (or ``weights``, or seeded stand-ins)."""
    if name not in PARSERS:
        raise ValueError(f"unknown face parser {name!r}; choose one of {sorted(PARSERS)}")
    kind = PARSERS[name]
    net = kind.build()
    info = load_weights(net, kind.weights, weights, random_weights, seed=seed)
    return FaceParser(net, name, device=device, weights=info, batch_size=batch_size)


__all__ = ["FaceParser", "load_face_parser", "mask_from_labels", "PARSERS", "MASK_COLORMAP", "PARSE_SIZE"]
