"""MTCNN fallback detector: parity with facenet-pytorch 2.6.0 and agreement with RetinaFace."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from bench.data.mtcnn import _nms, _square


def test_nms_modes() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 4, 4], [20, 20, 30, 30]], float)
    scores = np.array([0.9, 0.8, 0.7])
    assert _nms(boxes, scores, 0.5).tolist() == [0, 1, 2]  # IoU 0.16: kept
    assert _nms(boxes, scores, 0.5, mode="min").tolist() == [0, 2]  # contained box: dropped
    assert _nms(np.zeros((0, 4)), np.zeros(0), 0.5).size == 0


def test_square_keeps_centre() -> None:
    sq = _square(np.array([[10.0, 20.0, 30.0, 60.0, 0.9]]))
    assert np.allclose(sq[0], [0, 20, 40, 60, 0.9])


@pytest.fixture(scope="module")
def facenet_mtcnn(tmp_path_factory):
    """facenet-pytorch 2.6.0's own MTCNN, from its wheel (downloaded, not installed)."""
    pytest.importorskip("torchvision")
    pytest.importorskip("PIL")
    root = tmp_path_factory.mktemp("facenet")
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-q",
                    "-d", str(root), "facenet-pytorch==2.6.0"], check=True, capture_output=True)
    wheel = next(root.glob("*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(root / "pkg", [n for n in zf.namelist() if n.startswith("facenet_pytorch/")])
    sys.path.insert(0, str(root / "pkg"))
    try:
        from facenet_pytorch.models.mtcnn import MTCNN
    finally:
        sys.path.remove(str(root / "pkg"))
    return MTCNN()


@pytest.mark.network
def test_parity_with_facenet_pytorch(facenet_mtcnn) -> None:
    from skimage import data

    from bench.data.mtcnn import mtcnn_detect

    for img in (data.astronaut(), np.ascontiguousarray(data.astronaut()[40:300, 100:400])):
        ref_boxes, ref_probs, ref_pts = facenet_mtcnn.detect(img, landmarks=True)
        boxes, pts = mtcnn_detect(img)
        assert len(boxes) == len(ref_boxes) == 1
        assert np.abs(boxes[:, :4] - ref_boxes.astype(float)).max() < 1e-2
        assert np.abs(boxes[:, 4] - ref_probs.astype(float)).max() < 1e-5
        assert np.abs(pts - ref_pts.astype(float)).max() < 1e-2


@pytest.mark.network
def test_agrees_with_retinaface_on_the_astronaut() -> None:
    from skimage import data

    from bench.data.detect import detect_faces

    img = data.astronaut()
    r = detect_faces(img)
    m = detect_faces(img, backend="mtcnn")
    assert len(r) == len(m) == 1
    assert np.abs(r[0].landmarks5 - m[0].landmarks5).max() < 0.1 * r[0].eye_distance
    assert detect_faces(img, backend="auto")[0].score == r[0].score
    with pytest.raises(ValueError, match="unknown detector backend"):
        detect_faces(img, backend="dlib")


def test_nets_load_strictly_from_the_wheel_layout() -> None:
    """The architectures match the state-dict layout of facenet-pytorch (key names and shapes)."""
    from bench.data.mtcnn import ONet, PNet, RNet

    shapes = {
        PNet: {"conv4_2.weight": (4, 32, 1, 1), "prelu3.weight": (32,)},
        RNet: {"dense4.weight": (128, 576), "dense5_2.weight": (4, 128)},
        ONet: {"dense5.weight": (256, 1152), "dense6_3.weight": (10, 256)},
    }
    for cls, want in shapes.items():
        sd = cls().state_dict()
        for k, shape in want.items():
            assert tuple(sd[k].shape) == shape
    assert len(PNet().state_dict()) == 13 and len(RNet().state_dict()) == 16 and len(ONet().state_dict()) == 21


def test_weights_registered() -> None:
    from bench.weights import WEIGHTS

    for n in ("pnet", "rnet", "onet"):
        spec = WEIGHTS[f"mtcnn_{n}"]
        assert spec.source == "pypi" and spec.package == "facenet-pytorch==2.6.0" and len(spec.sha256) == 64
    assert Path(WEIGHTS["mtcnn_pnet"].member).name == "pnet.pt"
