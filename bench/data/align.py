"""Face alignment to the FFHQ 512 template and pasting restored faces back, as facexlib does.

Alignment is the 5-point similarity transform that facexlib's / CodeFormer's
``FaceRestoreHelper`` uses (``cv2.estimateAffinePartial2D`` with LMEDS, template
``FFHQ_TEMPLATE_512``, grey constant border), so whole-image results of the baselines match the
official inference scripts. :func:`paste_back` is the inverse warp with the eroded, feathered
square mask of ``paste_faces_to_input_image``.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

#: 5 landmarks (left eye, right eye, nose tip, left and right mouth corner) of an FFHQ-aligned
#: 512x512 face, as in facexlib / CodeFormer ``FaceRestoreHelper`` (template_3points=False)
FFHQ_TEMPLATE_512 = np.array(
    [
        [192.98138, 239.94708],
        [318.90277, 240.1936],
        [256.63416, 314.01935],
        [201.26117, 371.41043],
        [313.08905, 371.15118],
    ],
    dtype=np.float64,
)
#: the border colour of warped crops: BGR (135, 133, 132) in facexlib, given here as RGB
BORDER_RGB = (132, 133, 135)


def face_template(size: int = 512) -> np.ndarray:
    """The FFHQ 5-point template scaled to a ``size`` x ``size`` crop."""
    return FFHQ_TEMPLATE_512 * (size / 512.0)


def similarity_lstsq(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares 2x3 similarity (rotation, uniform scale, translation) mapping src to dst."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    sm, dm = src.mean(0), dst.mean(0)
    s, d = src - sm, dst - dm
    denom = float((s**2).sum())
    if denom <= 0:
        raise ValueError("degenerate landmarks (all points coincide)")
    a = float((s * d).sum()) / denom  # s*cos
    b = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / denom  # s*sin
    m = np.array([[a, -b, 0.0], [b, a, 0.0]])
    m[:, 2] = dm - m[:, :2] @ sm
    return m


def estimate_affine(landmarks5: np.ndarray, size: int = 512, method: str = "lmeds") -> np.ndarray:
    """2x3 matrix taking image coordinates to the aligned crop.

    ``method="lmeds"`` is facexlib/CodeFormer's ``cv2.estimateAffinePartial2D(..., method=cv2.LMEDS)``;
    ``"lstsq"`` is the closed-form least-squares similarity (identical for exact landmarks).
    """
    pts = np.asarray(landmarks5, np.float64).reshape(5, 2)
    dst = face_template(size)
    if method == "lstsq":
        return similarity_lstsq(pts, dst)
    if method != "lmeds":
        raise ValueError(f"unknown alignment method {method!r} (use 'lmeds' or 'lstsq')")
    m, _ = cv2.estimateAffinePartial2D(pts, dst, method=cv2.LMEDS)
    if m is None:
        raise ValueError("could not estimate the alignment transform from these landmarks")
    return m


def align_face(
    rgb: np.ndarray,
    landmarks5: np.ndarray,
    size: int = 512,
    method: str = "lmeds",
    border: str = "constant",
    interpolation: int = cv2.INTER_LINEAR,
) -> tuple[np.ndarray, np.ndarray]:
    """Warp the face to the ``size`` x ``size`` FFHQ crop; returns (aligned RGB, 2x3 affine).

    Defaults are facexlib's (LMEDS fit, bilinear, grey constant border).
    """
    affine = estimate_affine(landmarks5, size, method)
    modes = {"constant": cv2.BORDER_CONSTANT, "reflect101": cv2.BORDER_REFLECT101, "reflect": cv2.BORDER_REFLECT}
    if border not in modes:
        raise ValueError(f"unknown border {border!r}; use one of {sorted(modes)}")
    aligned = cv2.warpAffine(
        rgb, affine, (size, size), flags=interpolation, borderMode=modes[border], borderValue=BORDER_RGB
    )
    return aligned, affine


def inverse_affine(affine: np.ndarray, upscale: int = 1) -> np.ndarray:
    """Crop-to-image matrix for an output ``upscale`` times larger, with facexlib's half-pixel offset."""
    inv = cv2.invertAffineTransform(np.asarray(affine, np.float64)) * upscale
    if upscale > 1:
        inv[:, 2] += 0.5 * upscale
    return inv


def square_soft_mask(inv: np.ndarray, face_hw: tuple[int, int], out_hw: tuple[int, int],
                     upscale: int) -> tuple[np.ndarray, np.ndarray]:
    """facexlib's square paste mask warped by ``inv``: (eroded hard mask (H, W), feathered soft mask (H, W, 1)).

    The warped square is eroded by 2*upscale to drop black borders, then eroded and Gaussian blurred
    by an edge width of sqrt(face area)/20.
    """
    size = (out_hw[1], out_hw[0])
    inv_mask = cv2.warpAffine(np.ones(face_hw, dtype=np.float32), inv, size)
    erosion = cv2.erode(inv_mask, np.ones((int(2 * upscale), int(2 * upscale)), np.uint8))
    w_edge = int(float(np.sum(erosion)) ** 0.5) // 20
    centre = cv2.erode(erosion, np.ones((w_edge * 2, w_edge * 2), np.uint8))
    return erosion, cv2.GaussianBlur(centre, (w_edge * 2 + 1, w_edge * 2 + 1), 0)[:, :, None]


def paste_faces(
    whole_rgb: np.ndarray,
    restored_faces: Sequence[np.ndarray],
    affines: Sequence[np.ndarray],
    upscale: int = 1,
    background: np.ndarray | None = None,
) -> np.ndarray:
    """Paste restored crops into the (upscaled) whole image with a feathered mask.

    Follows ``FaceRestoreHelper.paste_faces_to_input_image`` (square mask, no parsing; see
    :func:`square_soft_mask`).
    """
    if len(restored_faces) != len(affines):
        raise ValueError(f"{len(restored_faces)} faces but {len(affines)} affine matrices")
    upscale = int(upscale)
    h, w = whole_rgb.shape[:2]
    h_up, w_up = h * upscale, w * upscale
    if background is None:
        out = cv2.resize(whole_rgb, (w_up, h_up), interpolation=cv2.INTER_LANCZOS4)  # as facexlib
    else:
        out = cv2.resize(background, (w_up, h_up), interpolation=cv2.INTER_LANCZOS4)
    out = out.astype(np.float32)
    for face, affine in zip(restored_faces, affines):
        inv = inverse_affine(affine, upscale)
        inv_face = cv2.warpAffine(face, inv, (w_up, h_up))
        erosion, soft = square_soft_mask(inv, face.shape[:2], (h_up, w_up), upscale)
        out = soft * (erosion[:, :, None] * inv_face) + (1 - soft) * out
    return out.astype(np.uint8)  # truncation, as facexlib


def paste_back(
    whole_rgb: np.ndarray, restored_face: np.ndarray, affine: np.ndarray, upscale: int = 1
) -> np.ndarray:
    """Paste one restored crop back into the whole image (see :func:`paste_faces`)."""
    return paste_faces(whole_rgb, [restored_face], [affine], upscale=upscale)


def transform_points(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to (N, 2) points."""
    pts = np.asarray(points, np.float64)
    return pts @ np.asarray(affine, np.float64)[:, :2].T + np.asarray(affine, np.float64)[:, 2]


__all__ = [
    "FFHQ_TEMPLATE_512", "BORDER_RGB", "face_template", "estimate_affine", "similarity_lstsq",
    "align_face", "inverse_affine", "square_soft_mask", "paste_faces", "paste_back", "transform_points",
]
