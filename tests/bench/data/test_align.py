"""Alignment to the FFHQ template and paste-back: round trips on synthetic faces with known landmarks."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from bench.data.align import (
    BORDER_RGB,
    FFHQ_TEMPLATE_512,
    align_face,
    estimate_affine,
    face_template,
    inverse_affine,
    paste_back,
    paste_faces,
    similarity_lstsq,
    transform_points,
)

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]


def _similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return np.array([[scale * math.cos(a), -scale * math.sin(a), tx], [scale * math.sin(a), scale * math.cos(a), ty]])


def _synthetic_photo(face_to_image: np.ndarray, shape=(700, 900)) -> tuple[np.ndarray, np.ndarray]:
    """A textured photo with five coloured dots at the template landmarks mapped by face_to_image."""
    rng = np.random.default_rng(0)
    img = (rng.random((*shape, 3)) * 60 + 60).astype(np.uint8)
    img = cv2.GaussianBlur(img, (0, 0), 3)
    pts = transform_points(FFHQ_TEMPLATE_512, face_to_image)
    for (x, y), c in zip(pts, COLOURS):
        cv2.circle(img, (int(round(x)), int(round(y))), 4, c, -1, lineType=cv2.LINE_AA)
    return img, pts


def _centroid(img: np.ndarray, colour) -> np.ndarray:
    d = np.abs(img.astype(int) - np.array(colour)).sum(-1)
    ys, xs = np.nonzero(d < 60)
    assert len(xs) > 10, "dot not found"
    return np.array([xs.mean(), ys.mean()])


def test_template_is_facexlibs() -> None:
    # facexlib/CodeFormer FaceRestoreHelper, template_3points=False, face_size 512
    assert FFHQ_TEMPLATE_512[0].tolist() == [192.98138, 239.94708]
    assert FFHQ_TEMPLATE_512[4].tolist() == [313.08905, 371.15118]
    assert np.allclose(face_template(256), FFHQ_TEMPLATE_512 / 2)


@pytest.mark.parametrize("method", ["lmeds", "lstsq"])
@pytest.mark.parametrize("angle,scale", [(0.0, 1.0), (23.0, 0.6), (-35.0, 1.4)])
def test_align_maps_landmarks_to_template(method: str, angle: float, scale: float) -> None:
    face_to_image = _similarity(angle, scale, 180.0, 90.0)
    img, pts = _synthetic_photo(face_to_image)
    aligned, affine = align_face(img, pts, 512, method=method)
    assert aligned.shape == (512, 512, 3) and aligned.dtype == np.uint8
    assert np.allclose(transform_points(pts, affine), FFHQ_TEMPLATE_512, atol=1e-4)
    # the matrix is the inverse of the known similarity
    expected = cv2.invertAffineTransform(face_to_image)
    assert np.allclose(affine, expected, atol=1e-6)
    # the dots land on the template in the pixels too
    for (tx, ty), c in zip(FFHQ_TEMPLATE_512, COLOURS):
        assert np.abs(_centroid(aligned, c) - (tx, ty)).max() < 1.0


def test_lstsq_fits_noisy_landmarks_and_rejects_degenerate() -> None:
    rng = np.random.default_rng(3)
    m = _similarity(10, 0.8, 50, 60)
    src = transform_points(FFHQ_TEMPLATE_512, cv2.invertAffineTransform(m))
    noisy = src + rng.normal(0, 0.5, src.shape)
    fit = similarity_lstsq(noisy, FFHQ_TEMPLATE_512)
    assert np.allclose(fit[:, :2], m[:, :2], atol=0.01)
    assert np.allclose(fit[:, :2], estimate_affine(noisy, method="lmeds")[:, :2], atol=0.02)
    with pytest.raises(ValueError, match="degenerate"):
        similarity_lstsq(np.ones((5, 2)), FFHQ_TEMPLATE_512)
    with pytest.raises(ValueError, match="unknown alignment method"):
        estimate_affine(src, method="nope")


def test_constant_border_is_facexlibs_grey() -> None:
    # the crop's top-left corner lies outside the photo
    img, pts = _synthetic_photo(_similarity(0, 0.3, -80, -80), shape=(200, 200))
    aligned, _ = align_face(img, pts)
    assert tuple(aligned[0, 0]) == BORDER_RGB and tuple(aligned[-1, -1]) != BORDER_RGB
    reflected, _ = align_face(img, pts, border="reflect101")
    assert tuple(reflected[0, 0]) != BORDER_RGB


def test_paste_back_round_trip() -> None:
    face_to_image = _similarity(15.0, 0.5, 300.0, 150.0)
    img, pts = _synthetic_photo(face_to_image, shape=(600, 800))
    aligned, affine = align_face(img, pts)
    # a "restoration" that changes nothing: pasting it back must give back the photo
    out = paste_back(img, aligned, affine)
    assert out.shape == img.shape and out.dtype == np.uint8
    inside = cv2.warpAffine(np.ones((512, 512), np.float32), inverse_affine(affine), (800, 600)) > 0.999
    inside = cv2.erode(inside.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    diff = np.abs(out.astype(int) - img.astype(int))
    assert diff[inside].mean() < 2.0
    far = cv2.dilate(inside.astype(np.uint8), np.ones((41, 41), np.uint8)) == 0
    assert diff[far].max() == 0  # untouched away from the face
    # a visibly different face replaces the centre, blended (not a hard seam)
    white = np.full_like(aligned, 255)
    out2 = paste_back(img, white, affine)
    centre = tuple(np.round(transform_points([[256, 256]], inverse_affine(affine))[0]).astype(int))
    assert (out2[centre[1], centre[0]] == 255).all()
    assert (out2[far] == img[far]).all()


def test_paste_faces_upscale_and_count_check() -> None:
    img, pts = _synthetic_photo(_similarity(0, 0.4, 100, 100), shape=(400, 400))
    aligned, affine = align_face(img, pts)
    out = paste_faces(img, [aligned], [affine], upscale=2)
    assert out.shape == (800, 800, 3)
    up = cv2.resize(img, (800, 800), interpolation=cv2.INTER_LINEAR)
    c = transform_points([[256, 256]], inverse_affine(affine, 2))[0].astype(int)
    patch = (slice(c[1] - 20, c[1] + 20), slice(c[0] - 20, c[0] + 20))
    assert np.abs(out[patch].astype(int) - up[patch].astype(int)).mean() < 3
    with pytest.raises(ValueError, match="1 faces but 2 affine"):
        paste_faces(img, [aligned], [affine, affine])
