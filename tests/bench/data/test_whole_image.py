"""Whole photos: the upscale factor, alpha kept, the face count, faces at any count (detector stood in)."""
from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from bench.cli.app import main
from bench.data import detect
from bench.data.align import face_template, inverse_affine, paste_faces
from bench.data.whole_image import restore_whole

GREEN = np.array([0, 255, 0], np.uint8)


def _photo(h: int = 150, w: int = 180) -> np.ndarray:
    rng = np.random.default_rng(0)
    return cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 3)


def _faces(*origins: tuple[float, float], scale: float = 0.12) -> list:
    """Stand-in detections: the 512 template's 5 points scaled and moved into the photo."""
    return [SimpleNamespace(landmarks5=face_template(512) * scale + np.array(o)) for o in origins]


@pytest.fixture
def detected(monkeypatch):
    found: list = []
    monkeypatch.setattr(detect, "detect_faces", lambda rgb: list(found))
    return found


def test_upscale_2_pastes_at_twice_the_size_through_the_scaled_inverse_affine(detected):
    rgb = _photo()
    detected += _faces((20, 10), (100, 60))
    seen = []

    def identity(crops):  # "restores" each crop to itself: the paste must land where it came from
        seen.append(len(crops))
        return crops

    out = restore_whole(rgb, identity, upscale=2)
    assert out.faces == 2 and seen == [2] and out.image.shape == (300, 360, 3)
    lanczos = cv2.resize(rgb, (360, 300), interpolation=cv2.INTER_LANCZOS4)
    for face in detected:  # inside each face the round trip (align, inverse warp x2) is close to the upscaled photo
        nose = (face.landmarks5[2] * 2).round().astype(int)
        patch = (slice(nose[1] - 8, nose[1] + 8), slice(nose[0] - 8, nose[0] + 8))
        assert np.abs(out.image[patch].astype(int) - lanczos[patch].astype(int)).mean() < 6
    assert np.array_equal(out.image[-20:, :20], lanczos[-20:, :20])  # far from the faces: the upscaled photo

    green = restore_whole(rgb, lambda crops: [np.broadcast_to(GREEN, c.shape).copy() for c in crops], upscale=2)
    nose = (detected[1].landmarks5[2] * 2).round().astype(int)
    assert (green.image[nose[1], nose[0]] == GREEN).all()
    # the inverse matrix is facexlib's: inverted, times the factor, plus half the factor
    aff = cv2.estimateAffinePartial2D(detected[0].landmarks5, face_template(512), method=cv2.LMEDS)[0]
    expected = cv2.invertAffineTransform(aff) * 2
    expected[:, 2] += 1.0
    assert np.allclose(inverse_affine(aff, 2), expected)
    assert np.array_equal(green.image, paste_faces(rgb, [np.broadcast_to(GREEN, (512, 512, 3))] * 2,
                                                   [cv2.estimateAffinePartial2D(f.landmarks5, face_template(512),
                                                                                method=cv2.LMEDS)[0]
                                                    for f in detected], upscale=2))


def test_no_face_is_the_upscaled_photo_and_alpha_is_kept(detected):
    rgb = _photo(40, 50)
    alpha = np.tile(np.linspace(0, 255, 50).astype(np.uint8), (40, 1))

    def never(crops):
        raise AssertionError("no face: nothing to restore")

    out = restore_whole(rgb, never, upscale=3, alpha=alpha)
    assert out.faces == 0 and out.image.shape == (120, 150, 4)
    assert np.array_equal(out.image[..., :3], cv2.resize(rgb, (150, 120), interpolation=cv2.INTER_LANCZOS4))
    assert np.array_equal(out.image[..., 3], cv2.resize(alpha, (150, 120), interpolation=cv2.INTER_LINEAR))
    same = restore_whole(rgb, never)
    assert np.array_equal(same.image, rgb)
    with pytest.raises(ValueError, match="whole number"):
        restore_whole(rgb, never, upscale=0)


def test_restore_cli_upscale_keeps_rgba_and_prints_the_face_count(tmp_path, detected, registries, capsys):
    from bench.core.registry import METHODS
    from tests._helpers.runner_helpers import GreenMethod

    METHODS.add("test-green-up", GreenMethod)
    rgb = _photo()
    bgra = np.dstack([rgb[:, :, ::-1], np.full(rgb.shape[:2], 200, np.uint8)])
    src = tmp_path / "inputs" / "whole_imgs"  # CodeFormer's layout
    src.mkdir(parents=True)
    cv2.imwrite(str(src / "photo.png"), bgra)
    cv2.imwrite(str(src / "empty.png"), rgb[:, :, ::-1])
    detected += _faces((30, 20), (110, 70), (5, 90))
    out = tmp_path / "out"
    argv = ["restore", "--method", "test-green-up", "--input", str(src), "--output", str(out), "--device", "cpu"]
    assert main([*argv, "--pipeline", "fast", "--upscale", "2"]) == 0
    printed = capsys.readouterr().out
    assert "photo.png: 3 faces\n" in printed and "(6 faces restored)" in printed
    result = cv2.imread(str(out / "photo.png"), cv2.IMREAD_UNCHANGED)
    assert result.shape == (300, 360, 4) and (result[..., 3] == 200).all()  # RGBA in, RGBA out
    nose = (detected[0].landmarks5[2] * 2).round().astype(int)
    b, g, r = (int(v) for v in result[nose[1], nose[0], :3])  # green (facexlib truncates the blend to uint8)
    assert g >= 250 and b <= 5 and r <= 5
    assert cv2.imread(str(out / "empty.png"), cv2.IMREAD_UNCHANGED).shape == (300, 360, 3)
    assert main([*argv, "--aligned", "--upscale", "2"]) == 2
    assert "--upscale applies to whole images" in capsys.readouterr().err
