"""Landmark metrics against official code and real faces (needs PyPI).

* AWing FAN and ``calculate_points``: parity with facexlib's ``alignment/awing_arch.py`` (facexlib
  wheel), same random weights.
* ``lmd-5pt`` (RetinaFace) and ``lmd-5pt-dlib`` on FFHQ-aligned crops of the face_recognition test
  photos: zero for the same image, about the shift for a translated copy.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.core.registry import METRICS
from bench.metrics.awing_arch import FAN, heatmap_points
from bench.metrics.landmarks import LandmarkDistance
from bench.weights import fetch
from tests._helpers.learned_helpers import pypi_sdist_member, random_faces, save_random
from tests._helpers.official_refs import load_official_module

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def facexlib_awing():
    return load_official_module("facexlib==0.3.0", "facexlib/alignment/awing_arch.py")


@pytest.fixture
def np_float(monkeypatch):
    """facexlib 0.3.0's calculate_points uses ``np.float`` (removed in numpy 1.24): restore the alias."""
    monkeypatch.setattr(np, "float", float, raising=False)


def test_calculate_points_matches_facexlib(facexlib_awing, rng, np_float):
    for trial in range(20):
        heat = rng.random((1, 98, 64, 64)).astype(np.float32)
        if trial % 3 == 1:  # a peak in the bottom row: facexlib's all-points fallback
            heat[0, 5, 63, 17] = 2.0
        if trial % 3 == 2:  # a peak in the top row: the other fallback
            heat[0, 9, 0, 30] = 2.0
        np.testing.assert_array_equal(heatmap_points(heat), facexlib_awing.calculate_points(heat))


def test_fan_and_landmarks_match_facexlib(facexlib_awing, tmp_path, np_float):
    ref = facexlib_awing.FAN(num_modules=4, num_landmarks=98, device="cpu").eval()
    state = save_random(FAN(), tmp_path / "alignment_WFLW_4HG.pth", seed=4, wrap="state_dict")
    ref.load_state_dict(state, strict=True)  # our names and shapes are facexlib's
    metric = LandmarkDistance(weights=str(tmp_path / "alignment_WFLW_4HG.pth"))
    x = random_faces(1, 512, seed=9)
    with torch.no_grad():
        inp = torch.rand(1, 3, 256, 256)
        ours_h, ref_h = metric.net(inp), ref(inp)[0]
        for a, b in zip(ours_h, ref_h):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
        bgr = (x[0] * 255).round().byte().permute(1, 2, 0).numpy()[:, :, ::-1].copy()
        ref_pts = ref.get_landmarks(bgr)  # facexlib / VQFR: BGR uint8 image in, (98, 2) out
    np.testing.assert_allclose(metric.landmarks(x)[0], ref_pts, atol=1e-6)


@pytest.fixture(scope="module")
def aligned_faces():
    """FFHQ-aligned 512 crops of obama.jpg and biden.jpg, made with the offline RetinaFace detector."""
    from bench.core.imageio import read_image
    from bench.data.align import align_face
    from bench.data.detect import detect_faces, largest_face, weights_path

    weights_path(download=True)
    files = pypi_sdist_member("face_recognition==1.3.0", "face_recognition-1.3.0/tests/test_images/*.jpg")
    out = {}
    for p in files:
        if p.stem in ("obama", "biden"):
            rgb = read_image(p).rgb
            crop, _ = align_face(rgb, largest_face(detect_faces(rgb)).landmarks5)
            out[p.stem] = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255
    return out


def _shift(img: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    return torch.roll(img, shifts=(dy, dx), dims=(2, 3))


@pytest.mark.parametrize("name", ["lmd-5pt", "lmd-5pt-dlib"])
def test_five_point_distance_tracks_a_shift(name, aligned_faces):
    if name == "lmd-5pt-dlib":
        pytest.importorskip("dlib")
        fetch("dlib_shape_predictor_5", quiet=True)
    metric = METRICS.create(name)
    assert not metric.standard
    face = aligned_faces["obama"]
    assert float(metric.update(face, face)[0]) == pytest.approx(0.0, abs=1e-9)
    shifted = float(metric.update(_shift(face, 6, 8), face)[0])  # 10 px
    assert 7.0 < shifted < 13.0
    other = float(metric.update(aligned_faces["biden"], face)[0])  # aligned: landmarks near the template
    assert 0 < other < 40
    assert float(metric.state()["no_face"]) == 0
