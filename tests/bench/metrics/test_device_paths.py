"""Device-side metric preprocessing equals the reference paths: libpng grey, cv2 uint8 resize, AWing decoding.

Tolerances: grey is equal on every pixel; resizes that shrink to a width that is a multiple of 16
(the benchmark's 128 and 256) are equal on every pixel, others within one grey level (OpenCV rounds
the last columns of a row, and enlargements, in scalar code); heatmap decoding gives the same points exactly; ids and lmd through
the device path equal the reference path to float rounding (1e-9) on the same network.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from bench.metrics._cv2_torch import png_grey, resize_linear_u8
from bench.metrics.awing_arch import heatmap_points, heatmap_points_torch
from bench.metrics.identity import IdentityAngle, grey128
from bench.metrics.landmarks import LandmarkDistance
from tests._helpers.learned_helpers import random_faces


def _rgb(seed: int, h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    img[: h // 4] = img[: h // 4, :, :1]  # a band of grey pixels (R == G == B): libpng keeps them as they are
    return img


def test_png_grey_equals_opencv_decoding_a_png():
    rgb = _rgb(0, 96, 80)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 0])
    assert ok
    ref = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    ours = png_grey(torch.from_numpy(rgb).permute(2, 0, 1)[None])[0].numpy()
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("src,dst,tol", [((512, 512), (128, 128), 0), ((512, 512), (256, 256), 0),
                                         ((300, 280), (128, 128), 0), ((517, 493), (128, 128), 0), ((517, 493), (128, 130), 1),
                                         ((100, 90), (128, 128), 1)])
def test_resize_linear_u8_matches_cv2(src, dst, tol):
    grey = _rgb(1, *src)[..., 0].copy()
    ref = cv2.resize(grey, (dst[1], dst[0]), interpolation=cv2.INTER_LINEAR).astype(int)
    ours = resize_linear_u8(torch.from_numpy(grey)[None], *dst)[0].numpy()
    assert np.abs(ours - ref).max() <= tol


@pytest.mark.parametrize("size", [512, 200])
def test_grey128_device_equals_the_png_reference(size):
    img = torch.from_numpy(np.stack([_rgb(s, size, size) for s in (2, 3)])).permute(0, 3, 1, 2).float() / 255
    torch.testing.assert_close(grey128(img, "png", impl="device"), grey128(img, "png", impl="reference"),
                               rtol=0, atol=0)


def test_heatmap_decoding_in_torch_gives_the_same_points():
    rng = np.random.default_rng(4)
    heat = rng.random((3, 98, 64, 64)).astype(np.float32)
    heat[1, 5, 63, 7] = 2.0  # image 1: a point in the bottom row (the flat-index 4095 quirk)
    heat[2, 9, 0, 0] = 2.0  # image 2: a point at flat index 0 (top row quirk, idx - 1 wraps)
    heat[0, 3, 40, 63] = 2.0  # image 0: a point at the right edge (the horizontal neighbour wraps a row)
    ref = np.concatenate([heatmap_points(heat[i:i + 1]) for i in range(3)])
    ours = heatmap_points_torch(torch.from_numpy(heat)).numpy()
    np.testing.assert_array_equal(ours, ref)


@pytest.fixture
def fan_ckpt(random_fan_ckpt):
    return random_fan_ckpt


def test_lmd_device_path_equals_reference(fan_ckpt):
    pred, gt = random_faces(2, seed=3), random_faces(2, seed=4)
    device = LandmarkDistance(weights=str(fan_ckpt), impl="device")
    reference = LandmarkDistance(weights=str(fan_ckpt), impl="reference")
    torch.testing.assert_close(device.score(pred, gt), reference.score(pred, gt), rtol=0, atol=1e-9)


def test_ids_device_path_equals_reference(random_arcface_ckpt):
    path, _ = random_arcface_ckpt
    pred, gt = random_faces(2, size=256, seed=5), random_faces(2, size=256, seed=6)  # shrunk to 128: exact
    a = IdentityAngle(weights=str(path), drop_below=0).update(pred, gt)
    b = IdentityAngle(weights=str(path), drop_below=0, impl="reference").update(pred, gt)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-9)


def test_lmd_auto_runs_the_faster_path_where_it_is_and_says_which(fan_ckpt):
    """impl='auto' (the default): facexlib's OpenCV/numpy path on a CPU, the torch path on a GPU; info() records it."""
    metric = LandmarkDistance(weights=str(fan_ckpt))
    assert metric.impl == "auto" and metric.impl_on("cpu") == "reference" and metric.impl_on("cuda") == "device"
    assert metric.info()["impl"] == "reference"
    assert LandmarkDistance(weights=str(fan_ckpt), impl="device").info()["impl"] == "device"


def test_unknown_impl_is_refused():
    with pytest.raises(ValueError, match="impl"):
        grey128(torch.zeros(1, 3, 8, 8), impl="gpu")
