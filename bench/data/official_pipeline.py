"""The official whole-image pipeline: facexlib's ``FaceRestoreHelper`` as GFPGAN's and CodeFormer's scripts run it.

RetinaFace ResNet-50 (:mod:`bench.data.retinaface_resnet50`, threshold 0.97, faces with an eye
distance under 5 px dropped), 5-point LMEDS similarity to the 512 template (:func:`bench.data.align.align_face`),
restore, inverse affine times the upscale factor (+0.5*upscale offset), paste-back through the
face-parsing soft mask (ParseNet, :mod:`bench.data.face_parsing`) over the background resized with
Lanczos, or over a background upsampler's output (Real-ESRGAN x2, :mod:`bench.data.background`).
Every step follows facexlib 0.3.0 (``get_face_landmarks_5``, ``align_warp_face``, ``get_inverse_affine``,
``paste_faces_to_input_image(use_parse=True)``); tests/bench/data/test_official_pipeline.py compares
each stage and the final image with facexlib itself.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from bench.data.align import align_face, inverse_affine, paste_faces
from bench.data.detect import Face
from bench.data.whole_image import RestoreCrops, Upsampler


class Detector(Protocol):
    def detect(self, rgb: np.ndarray, conf_threshold: float = ..., nms_threshold: float = ...) -> np.ndarray: ...


class Parser(Protocol):
    def soft_masks(self, faces: list[np.ndarray]) -> list[np.ndarray]: ...


@dataclass(frozen=True)
class OfficialOptions:
    """The official scripts' settings: GFPGAN's and CodeFormer's ``FaceRestoreHelper`` calls.

    ``detect_resize`` is facexlib's ``resize`` (the short side the detector sees; None: the
    image's own size, as GFPGAN; CodeFormer passes 640 to its own facelib copy).
    """

    face_size: int = 512
    conf_threshold: float = 0.97
    nms_threshold: float = 0.4
    eye_dist_threshold: float | None = 5.0
    detect_resize: int | None = None
    only_center_face: bool = False
    use_parse: bool = True


def detect_landmarks(rgb: np.ndarray, detector: Detector, opts: OfficialOptions = OfficialOptions()) -> list[Face]:
    """Faces kept as facexlib's ``get_face_landmarks_5``: optional resize, threshold, eye distance, centre face."""
    h, w = rgb.shape[:2]
    scale: float = 1
    img = rgb
    if opts.detect_resize is not None:
        scale = min(h, w) / opts.detect_resize
        img = cv2.resize(rgb, (int(w / scale), int(h / scale)), interpolation=cv2.INTER_LANCZOS4)
    dets = detector.detect(img, opts.conf_threshold, opts.nms_threshold) * scale
    faces = []
    for d in dets:
        eye_dist = np.linalg.norm([d[5] - d[7], d[6] - d[8]])
        if opts.eye_dist_threshold is not None and eye_dist < opts.eye_dist_threshold:
            continue
        faces.append(Face(box=d[0:4], score=float(d[4]), landmarks5=np.array(d[5:15]).reshape(5, 2)))
    if faces and opts.only_center_face:
        centre = np.array([w / 2, h / 2])
        dist = [np.linalg.norm(np.array([(f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2]) - centre) for f in faces]
        faces = [faces[dist.index(min(dist))]]
    return faces


def paste_parsed(whole_rgb: np.ndarray, restored: Sequence[np.ndarray], affines: Sequence[np.ndarray],
                 masks: Sequence[np.ndarray], upscale: int = 1, background: np.ndarray | None = None) -> np.ndarray:
    """Paste restored crops through their parsing soft masks into the ``upscale`` times larger image.

    As facexlib's ``paste_faces_to_input_image(use_parse=True)``: the mask resized to the face,
    warped back with ``flags=3``, blended in float64 over the Lanczos-resized background, truncated to uint8.
    """
    h, w = whole_rgb.shape[:2]
    size = (int(w * upscale), int(h * upscale))
    out: np.ndarray = cv2.resize(whole_rgb if background is None else background, size, interpolation=cv2.INTER_LANCZOS4)
    for face, affine, mask in zip(restored, affines, masks, strict=True):
        inv = inverse_affine(affine, upscale)
        inv_face = cv2.warpAffine(face, inv, size)
        m = cv2.resize(np.asarray(mask, np.float64), face.shape[:2])
        m = cv2.warpAffine(m, inv, size, flags=3)[:, :, None]
        out = m * inv_face + (1 - m) * out
    return out.astype(np.uint8)


@dataclass
class OfficialPipeline:
    """Detector, parser and optional background upsampler with the official settings; ``run`` one image."""

    detector: Detector
    parser: Parser | None
    background: Upsampler | None = None
    options: OfficialOptions = OfficialOptions()
    name: str = "official"

    def run(self, rgb: np.ndarray, restore_crops: RestoreCrops, size: int, upscale: int) -> tuple[np.ndarray, int]:
        """(restored image ``upscale`` times larger, face count) for an RGB uint8 image."""
        if size != self.options.face_size:
            raise ValueError(f"the method restores {size}px crops; the official pipeline aligns to {self.options.face_size}")
        faces = detect_landmarks(rgb, self.detector, self.options)
        bg = self.background.enhance(rgb, outscale=upscale) if self.background is not None else None
        if not faces:
            return cv2.resize(rgb if bg is None else bg, (rgb.shape[1] * upscale, rgb.shape[0] * upscale),
                              interpolation=cv2.INTER_LANCZOS4), 0
        crops, affines = zip(*(align_face(rgb, f.landmarks5, size=self.options.face_size) for f in faces))
        restored = [np.ascontiguousarray(r) for r in restore_crops(list(crops))]
        if self.options.use_parse and self.parser is not None:
            out = paste_parsed(rgb, restored, affines, self.parser.soft_masks(restored), upscale, bg)
        else:
            out = paste_faces(rgb, restored, list(affines), upscale=upscale, background=bg)
        return out, len(faces)


def load_official_pipeline(device: Any = "cpu", bg_upsampler: str | None = None,
                           options: OfficialOptions = OfficialOptions(), random_weights: bool = False) -> OfficialPipeline:
    """The pipeline with the managed weights (RetinaFace ResNet-50, ParseNet, optional Real-ESRGAN)."""
    from bench.data.face_parsing import load_face_parser
    from bench.data.retinaface_resnet50 import RetinaFaceR50, load_retinaface_r50

    detector = RetinaFaceR50().eval().to(device) if random_weights else load_retinaface_r50(device=device)
    parser = load_face_parser("parsenet", device=device, random_weights=random_weights) if options.use_parse else None
    background = None
    if bg_upsampler:
        from bench.data.background import load_background_upsampler

        background = load_background_upsampler(bg_upsampler, device=device, random_weights=random_weights)
    return OfficialPipeline(detector, parser, background, options)


__all__ = ["OfficialOptions", "OfficialPipeline", "detect_landmarks", "paste_parsed", "load_official_pipeline"]
