"""The official whole-image pipelines: ``FaceRestoreHelper`` as GFPGAN's and CodeFormer's scripts run it.

RetinaFace ResNet-50 (:mod:`bench.data.retinaface_resnet50`, threshold 0.97, faces with an eye
distance under 5 px dropped), 5-point LMEDS similarity to the 512 template (:func:`bench.data.align.align_face`),
restore, inverse affine times the upscale factor (+0.5*upscale offset), paste-back through the
face-parsing soft mask (ParseNet, :mod:`bench.data.face_parsing`) over the background resized with
Lanczos, or over a background upsampler's output (Real-ESRGAN x2, :mod:`bench.data.background`).
Every step follows facexlib 0.3.0 (``get_face_landmarks_5``, ``align_warp_face``, ``get_inverse_affine``,
``paste_faces_to_input_image(use_parse=True)``); :data:`CODEFORMER` follows CodeFormer's own copy
of that helper instead (see :class:`OfficialOptions`). tests/bench/data/test_official_pipeline.py
compares each stage and the final image with facexlib's and CodeFormer's helpers themselves.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np
import torch

from bench.data.align import align_face, inverse_affine, square_soft_mask
from bench.data.detect import Face, centre_face
from bench.data.whole_image import RestoreCrops, Upsampler


class Detector(Protocol):
    """Detections (N, 15): box, score, 5 landmarks, as :meth:`bench.data.retinaface_resnet50.RetinaFaceR50.detect`."""

    def detect(self, rgb: np.ndarray, conf_threshold: float = ..., nms_threshold: float = ...) -> np.ndarray: ...


class Parser(Protocol):
    """Paste-back soft masks (512x512 float in [0, 1]) for restored RGB faces, as :mod:`bench.data.face_parsing`."""

    def soft_masks(self, faces: list[np.ndarray]) -> list[np.ndarray]: ...


@dataclass(frozen=True)
class OfficialOptions:
    """One official script's ``FaceRestoreHelper`` and how it calls it.

    ``flavour="facexlib"`` (:data:`FACEXLIB`) is facexlib 0.3.0's helper as GFPGAN's
    ``GFPGANer.enhance`` calls it. ``flavour="codeformer"`` (:data:`CODEFORMER`) is CodeFormer's own
    facelib copy (sczhou/CodeFormer b33cc7d) as ``inference_codeformer.py`` calls it: inputs with a
    short side under 512 enlarged to 512 (bilinear) first, detection at a short side of
    ``detect_resize`` (area / bilinear), threshold 0.8, its eye-distance formula, the parsing mask
    limited by the square soft mask, and the background resized bilinearly when no upsampler is given.
    ``detect_resize`` None: the detector sees the image at its own size.
    """

    flavour: str = "facexlib"
    face_size: int = 512
    conf_threshold: float = 0.97
    nms_threshold: float = 0.4
    eye_dist_threshold: float | None = 5.0
    detect_resize: int | None = None
    only_center_face: bool = False
    use_parse: bool = True

    def __post_init__(self) -> None:
        if self.flavour not in ("facexlib", "codeformer"):
            raise ValueError(f"unknown flavour {self.flavour!r} (use 'facexlib' or 'codeformer')")


FACEXLIB = OfficialOptions()
CODEFORMER = OfficialOptions(flavour="codeformer", conf_threshold=0.8, detect_resize=640)


def read_input(rgb: np.ndarray, opts: OfficialOptions = FACEXLIB) -> np.ndarray:
    """The image the helper works on: CodeFormer's enlarges a short side under 512 to 512 (bilinear)."""
    if opts.flavour == "codeformer" and min(rgb.shape[:2]) < 512:
        f = 512.0 / min(rgb.shape[:2])
        return cv2.resize(rgb, (0, 0), fx=f, fy=f, interpolation=cv2.INTER_LINEAR)
    return rgb


def _detector_view(rgb: np.ndarray, opts: OfficialOptions) -> tuple[np.ndarray, float]:
    """(image the detector sees, its scale): facexlib multiplies detections by it, CodeFormer divides by it."""
    h, w = rgb.shape[:2]
    if opts.detect_resize is None:
        return rgb, 1
    if opts.flavour == "codeformer":
        scale = opts.detect_resize / min(h, w)
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        return cv2.resize(rgb, (int(w * scale), int(h * scale)), interpolation=interp), scale
    scale = min(h, w) / opts.detect_resize
    return cv2.resize(rgb, (int(w / scale), int(h / scale)), interpolation=cv2.INTER_LANCZOS4), scale


def detect_landmarks(rgb: np.ndarray, detector: Detector, opts: OfficialOptions = FACEXLIB) -> list[Face]:
    """Faces kept as the helper's ``get_face_landmarks_5``: resize, threshold, eye distance, centre face."""
    h, w = rgb.shape[:2]
    img, scale = _detector_view(rgb, opts)
    dets = detector.detect(img, opts.conf_threshold, opts.nms_threshold)
    dets = dets * scale if opts.flavour == "facexlib" else dets / scale
    faces = []
    for d in dets:
        if opts.flavour == "facexlib":
            eye_dist = np.linalg.norm([d[5] - d[7], d[6] - d[8]])
        else:  # CodeFormer's facelib indexes one place further (its own formula, kept as is)
            eye_dist = np.linalg.norm([d[6] - d[8], d[7] - d[9]])
        if opts.eye_dist_threshold is not None and eye_dist < opts.eye_dist_threshold:
            continue
        faces.append(Face(box=d[0:4], score=float(d[4]), landmarks5=np.array(d[5:15]).reshape(5, 2)))
    if faces and opts.only_center_face:
        faces = [centre_face(faces, h, w)]
    return faces


def _warped_parse_mask(mask: np.ndarray, face_hw: tuple[int, int], inv: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A 512 parsing soft mask resized to the face and warped into the output (flags=3 as the helpers), (H, W, 1)."""
    m = cv2.resize(np.asarray(mask, np.float64), (face_hw[1], face_hw[0]))
    return cv2.warpAffine(m, inv, size, flags=3)[:, :, None]


def paste_official(whole_rgb: np.ndarray, restored: Sequence[np.ndarray], affines: Sequence[np.ndarray],
                   masks: Sequence[np.ndarray] | None, upscale: int = 1, background: np.ndarray | None = None,
                   opts: OfficialOptions = FACEXLIB) -> np.ndarray:
    """Paste restored crops into the ``upscale`` times larger image as the helper's ``paste_faces_to_input_image``.

    facexlib with ``masks``: the parsing soft mask alone, face unmasked; without: the square soft
    mask over the eroded face (:func:`bench.data.align.square_soft_mask`). CodeFormer: always the
    eroded face, under the smaller of the square and parsing masks. Blended in floating point over
    the resized background, truncated to uint8.
    """
    h, w = whole_rgb.shape[:2]
    size = (int(w * upscale), int(h * upscale))
    interp = cv2.INTER_LINEAR if opts.flavour == "codeformer" and background is None else cv2.INTER_LANCZOS4
    out: np.ndarray = cv2.resize(whole_rgb if background is None else background, size, interpolation=interp)
    for i, (face, affine) in enumerate(zip(restored, affines, strict=True)):
        inv = inverse_affine(affine, upscale)
        inv_face = cv2.warpAffine(face, inv, size)
        if masks is not None and opts.flavour == "facexlib":
            soft, pasted = _warped_parse_mask(masks[i], face.shape[:2], inv, size), inv_face
        else:
            erosion, soft = square_soft_mask(inv, face.shape[:2], (size[1], size[0]), upscale)
            pasted = erosion[:, :, None] * inv_face
            if masks is not None:
                soft = np.minimum(_warped_parse_mask(masks[i], face.shape[:2], inv, size), soft)
        out = soft * pasted + (1 - soft) * out
    return out.astype(np.uint8)


def paste_parsed(whole_rgb: np.ndarray, restored: Sequence[np.ndarray], affines: Sequence[np.ndarray],
                 masks: Sequence[np.ndarray], upscale: int = 1, background: np.ndarray | None = None) -> np.ndarray:
    """facexlib's parsing-mask paste-back (:func:`paste_official` with the facexlib flavour)."""
    return paste_official(whole_rgb, restored, affines, masks, upscale, background, FACEXLIB)


@dataclass
class OfficialPipeline:
    """Detector, parser and optional background upsampler with one script's settings; ``run`` one image."""

    detector: Detector
    parser: Parser | None
    background: Upsampler | None = None
    options: OfficialOptions = FACEXLIB
    name: str = "official"

    def run(self, rgb: np.ndarray, restore_crops: RestoreCrops, size: int, upscale: int) -> tuple[np.ndarray, int]:
        """(restored image ``upscale`` times larger, face count) for an RGB uint8 image.

        The CodeFormer flavour enlarges a small input to a 512 short side first, so its output is
        ``upscale`` times that size, as CodeFormer's script writes it.
        """
        opts = self.options
        if size != opts.face_size:
            raise ValueError(f"the method restores {size}px crops; the official pipeline aligns to {opts.face_size}")
        img = read_input(rgb, opts)
        faces = detect_landmarks(img, self.detector, opts)
        bg = self.background.enhance(rgb, outscale=upscale) if self.background is not None else None
        if not faces:
            return paste_official(img, [], [], None, upscale, bg, opts), 0
        crops, affines = zip(*(align_face(img, f.landmarks5, size=opts.face_size) for f in faces))
        restored = [np.ascontiguousarray(r) for r in restore_crops(list(crops))]
        masks = self.parser.soft_masks(restored) if opts.use_parse and self.parser is not None else None
        return paste_official(img, restored, list(affines), masks, upscale, bg, opts), len(faces)


def load_official_pipeline(device: Any = "cpu", bg_upsampler: str | None = None,
                           options: OfficialOptions = FACEXLIB, random_weights: bool = False) -> OfficialPipeline:
    """The pipeline with the managed weights (RetinaFace ResNet-50, ParseNet, optional Real-ESRGAN)."""
    from bench.data.retinaface_resnet50 import RetinaFaceR50, load_retinaface_r50

    detector = RetinaFaceR50().eval().to(device) if random_weights else load_retinaface_r50(device=device)
    from bench.data.face_parsing import load_face_parser

    parser = load_face_parser("parsenet", device=device, random_weights=random_weights) if options.use_parse else None
    background = None
    if bg_upsampler:
        from bench.data import background as bgm

        # the scripts' RealESRGANer: tile 400, tile_pad 10 (GFPGAN) or 40 (CodeFormer), half precision on CUDA
        pad = bgm.TILE_PAD_CODEFORMER if options.flavour == "codeformer" else bgm.TILE_PAD_GFPGAN
        half = torch.device(device).type == "cuda"
        background = bgm.load_background_upsampler(bg_upsampler, device=device, random_weights=random_weights,
                                                   tile=400, tile_pad=pad, half=half)
    return OfficialPipeline(detector, parser, background, options)


__all__ = ["OfficialOptions", "FACEXLIB", "CODEFORMER", "OfficialPipeline", "read_input", "detect_landmarks",
           "paste_official", "paste_parsed", "load_official_pipeline"]
