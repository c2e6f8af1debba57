"""Whole photos restored face by face: detect, align to the 512 template, restore, paste back.

Two pipelines share this entry point. ``official`` (:mod:`bench.data.official_pipeline`) is
facexlib's ``FaceRestoreHelper`` as CodeFormer's and GFPGAN's scripts run it (RetinaFace ResNet-50,
face-parsing paste-back, optional background upsampler). ``fast`` (:class:`FastPipeline`, the
default of :func:`restore_whole`) uses RetinaFace MobileNet-0.25 (:mod:`bench.data.detect`, ONNX
from PyPI) and the feathered square mask of :func:`bench.data.align.paste_faces`. Both apply
facexlib's upscale factor (background resized with Lanczos, faces pasted through the scaled
inverse affine). An RGBA input keeps its alpha, resized bilinearly as Real-ESRGAN's non-network
alpha upsampler does.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from bench.data.align import align_face, paste_faces

#: restores a list of aligned RGB uint8 crops (S, S, 3), returning as many
RestoreCrops = Callable[[list[np.ndarray]], list[np.ndarray]]


class WholePipeline(Protocol):
    """Detect, align, restore and paste back one RGB image; returns (image ``upscale`` times larger, faces)."""

    name: str

    def run(self, rgb: np.ndarray, restore_crops: RestoreCrops, size: int, upscale: int) -> tuple[np.ndarray, int]: ...


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


class Upsampler(Protocol):
    """A background upsampler (:mod:`bench.data.background`): RGB uint8 in, RGB uint8 ``outscale`` times larger out."""

    def enhance(self, rgb: np.ndarray, outscale: float) -> np.ndarray: ...


@dataclass
class FastPipeline:
    """MobileNet-0.25 detection (ONNX) and the feathered square paste: faster than the official pipeline."""

    background: Upsampler | None = None
    only_center_face: bool = False
    name: str = "fast"

    def run(self, rgb: np.ndarray, restore_crops: RestoreCrops, size: int, upscale: int) -> tuple[np.ndarray, int]:
        from bench.data.detect import centre_face, detect_faces

        faces = detect_faces(rgb)
        if faces and self.only_center_face:
            faces = [centre_face(faces, *rgb.shape[:2])]
        bg = self.background.enhance(rgb, outscale=upscale) if self.background is not None else None
        if not faces:
            if bg is None:
                return upscaled(rgb, upscale, cv2.INTER_LANCZOS4), 0
            return cv2.resize(bg, (rgb.shape[1] * upscale, rgb.shape[0] * upscale), interpolation=cv2.INTER_LANCZOS4), 0
        crops, affines = zip(*(align_face(rgb, f.landmarks5, size=size) for f in faces))
        restored = restore_crops(list(crops))
        return paste_faces(rgb, restored, list(affines), upscale=upscale, background=bg), len(faces)


def restore_whole(rgb: np.ndarray, restore_crops: RestoreCrops, size: int = 512, upscale: int = 1,
                  alpha: np.ndarray | None = None, pipeline: WholePipeline | None = None) -> WholeResult:
    """Every detected face of ``rgb`` restored and pasted back into the image ``upscale`` times larger."""
    if int(upscale) != upscale or upscale < 1:
        raise ValueError(f"upscale must be a whole number >= 1, got {upscale}")
    upscale = int(upscale)
    out, faces = (pipeline or FastPipeline()).run(rgb, restore_crops, size, upscale)
    if alpha is not None:
        a = alpha if alpha.shape[:2] == out.shape[:2] else cv2.resize(alpha, out.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        out = np.concatenate([out, a[:, :, None]], axis=2)  # the output's size: a pipeline may enlarge small inputs
    return WholeResult(image=out, faces=faces)


__all__ = ["restore_whole", "WholeResult", "RestoreCrops", "WholePipeline", "FastPipeline", "Upsampler", "upscaled"]
