"""Whole photos restored face by face: detect, align to the 512 template, restore, paste back.

The present (fast) pipeline: RetinaFace MobileNet-0.25 (:mod:`bench.data.detect`) and the
feathered square mask of :func:`bench.data.align.paste_faces`, with facexlib's upscale factor
(the background resized with Lanczos, faces pasted through the scaled inverse affine). An RGBA
input keeps its alpha, resized bilinearly as Real-ESRGAN's non-network alpha upsampler does.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from bench.data.align import align_face, paste_faces

#: restores a list of aligned RGB uint8 crops (S, S, 3), returning as many
RestoreCrops = Callable[[list[np.ndarray]], list[np.ndarray]]


@dataclass
class WholeResult:
    """The restored whole image (RGB, or RGBA when the input had alpha) and how many faces it had."""

    image: np.ndarray
    faces: int


def upscaled(img: np.ndarray, upscale: int, interpolation: int) -> np.ndarray:
    """``img`` resized ``upscale`` times (a copy at 1)."""
    if upscale == 1:
        return img.copy()
    h, w = img.shape[:2]
    return cv2.resize(img, (w * upscale, h * upscale), interpolation=interpolation)


def restore_whole(rgb: np.ndarray, restore_crops: RestoreCrops, size: int = 512, upscale: int = 1,
                  alpha: np.ndarray | None = None) -> WholeResult:
    """Every detected face of ``rgb`` restored and pasted back into the image ``upscale`` times larger."""
    from bench.data.detect import detect_faces

    if int(upscale) != upscale or upscale < 1:
        raise ValueError(f"upscale must be a whole number >= 1, got {upscale}")
    upscale = int(upscale)
    faces = detect_faces(rgb)
    if faces:
        crops, affines = zip(*(align_face(rgb, f.landmarks5, size=size) for f in faces))
        restored = restore_crops(list(crops))
        out = paste_faces(rgb, restored, list(affines), upscale=upscale)
    else:
        out = upscaled(rgb, upscale, cv2.INTER_LANCZOS4)
    if alpha is not None:
        out = np.concatenate([out, upscaled(alpha, upscale, cv2.INTER_LINEAR)[:, :, None]], axis=2)
    return WholeResult(image=out, faces=len(faces))


__all__ = ["restore_whole", "WholeResult", "RestoreCrops", "upscaled"]
