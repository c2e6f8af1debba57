"""Landmark distance: facexlib's heatmap decoding, the AWing FAN wrapper, labels and messages."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from bench.core.registry import METRICS
from bench.metrics import MetricUnavailable
from bench.metrics.awing_arch import heatmap_points, load_fan
from bench.metrics.landmarks import LandmarkDistance, mean_point_distance
from tests._helpers.learned_helpers import random_faces


def _heat(points, neighbours=None):
    """(1, N, 64, 64) heatmaps with a 1.0 peak per point and optional neighbour values."""
    h = np.zeros((1, len(points), 64, 64), np.float32)
    for i, (x, y) in enumerate(points):
        h[0, i, y, x] = 1.0
        for (dx, dy), v in (neighbours or {}).get(i, {}).items():
            h[0, i, y + dy, x + dx] = v
    return h


def test_heatmap_points_quarter_pixel_rule():
    pts = heatmap_points(
        _heat([(10, 20), (30, 5), (40, 40)], {
            0: {(1, 0): 0.5, (0, 1): 0.3},  # right and below larger: +0.25, +0.25
            1: {(-1, 0): 0.5, (0, -1): 0.2},  # left and above larger: -0.25, -0.25
            2: {},  # symmetric: no shift
        })
    )
    np.testing.assert_allclose(pts[0], [[10.75, 20.75], [30.25, 5.25], [40.5, 40.5]])


def test_heatmap_points_keeps_facexlib_row_quirk():
    """Once any point lies in the bottom row, every point's lower neighbour is flat index 4095 (as facexlib)."""
    base = {0: {(0, 1): 0.4, (0, -1): 0.1}}
    normal = heatmap_points(_heat([(10, 20), (5, 60)], base))
    assert normal[0, 0, 1] == pytest.approx(20.75)
    quirk = heatmap_points(_heat([(10, 20), (5, 63)], base))
    # point 0's real lower neighbour (0.4) is ignored: y_up = flat[4095] = 0 < y_down = 0.1 -> -0.25
    assert quirk[0, 0, 1] == pytest.approx(20.25)


def test_mean_point_distance():
    a = np.zeros((4, 2))
    b = np.array([[3, 4], [0, 0], [0, 1], [6, 8]], float)
    assert mean_point_distance(a, b) == pytest.approx((5 + 0 + 1 + 10) / 4)


@pytest.fixture
def fan_ckpt(random_fan_ckpt):
    """Random AWing weights saved as facexlib's checkpoint is: {'state_dict': ...} (built once per session)."""
    return random_fan_ckpt


def test_fan_shapes_and_strict_load(tmp_path, fan_ckpt):
    net = load_fan(fan_ckpt)
    with torch.no_grad():
        outs = net(torch.rand(1, 3, 256, 256))
    assert len(outs) == 4 and all(o.shape == (1, 99, 64, 64) for o in outs)
    state = torch.load(fan_ckpt, weights_only=True)["state_dict"]
    assert any(k.startswith("m1.coordconv.conv") for k in state)
    # boundary channels: the first hourglass's CoordConv takes 256+3, the others 256+5
    assert state["m0.coordconv.conv.weight"].shape[1] == 259 and state["m1.coordconv.conv.weight"].shape[1] == 261
    bad = dict(state)
    bad.pop("l3.weight")
    torch.save({"state_dict": bad}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not an AWing FAN"):
        load_fan(tmp_path / "bad.pth")


def test_lmd_metric(fan_ckpt):
    metric = METRICS.create("lmd", weights=str(fan_ckpt))
    assert metric.protocol == "vqfr-awing-wflw98-l2px512" and metric.standard and not metric.higher_better
    x, y = random_faces(2, 512, seed=1), random_faces(2, 512, seed=2)
    lx, ly = metric.landmarks(x), metric.landmarks(y)
    assert lx.shape == (2, 98, 2) and lx.min() >= 0 and lx.max() <= 512
    # get_landmarks path: cv2.resize of the uint8 image to 256, RGB / 255, x8 back to 512
    rgb = (x[0] * 255).round().byte().permute(1, 2, 0).numpy()
    inp = torch.from_numpy(cv2.resize(rgb, (256, 256)).transpose(2, 0, 1).copy()).float()[None] / 255
    with torch.no_grad():
        heat = metric.net(inp)[-1][:, :-1].numpy()
    np.testing.assert_allclose(lx[0], heatmap_points(heat)[0] * 8.0)
    vals = metric.update(x, y)
    np.testing.assert_allclose(vals.numpy(), [mean_point_distance(a, b) for a, b in zip(lx, ly)])
    assert metric.compute() == pytest.approx(float(vals.mean()), rel=1e-12)
    assert metric.update(x[:1], x[:1]).abs().max() == 0


def test_lmd_rescales_to_512_units(fan_ckpt):
    metric = LandmarkDistance(weights=str(fan_ckpt))
    x, y = random_faces(1, 256, seed=3), random_faces(1, 256, seed=4)
    lx, ly = metric.landmarks(x), metric.landmarks(y)  # in 256-pixel units
    assert float(metric.update(x, y)[0]) == pytest.approx(2 * mean_point_distance(lx[0], ly[0]), rel=1e-9)


def test_lmd_unavailable_messages(monkeypatch, tmp_path):
    monkeypatch.setenv("BFRBENCH_HOME", str(tmp_path))  # an empty cache, whatever the session fetched
    monkeypatch.setenv("BFRBENCH_AUTO_FETCH", "0")  # PyPI assets are otherwise fetched on first use
    with pytest.raises(MetricUnavailable) as e:
        METRICS.create("lmd")
    msg = str(e.value)
    assert "alignment_WFLW_4HG.pth" in msg and "github.com/xinntao/facexlib/releases" in msg
    assert "bfrbench fetch awing_fan_wflw" in msg
    with pytest.raises(MetricUnavailable, match="retinaface"):
        METRICS.create("lmd-5pt")
    with pytest.raises(MetricUnavailable, match="shape_predictor_5_face_landmarks"):
        METRICS.create("lmd-5pt-dlib")
    for name in ("lmd-5pt", "lmd-5pt-dlib"):
        e = METRICS.entry(name)
        assert e.standard is False and e.protocol.startswith("nonstandard")
