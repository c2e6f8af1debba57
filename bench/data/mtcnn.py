"""MTCNN face detector with 5 landmarks: the fallback to RetinaFace.

The P-, R- and O-Net weights are the state dicts shipped in the MIT-licensed PyPI wheel
``facenet-pytorch==2.6.0`` (``facenet_pytorch/data/{p,r,o}net.pt``), fetched through the weights
manager (the package itself is never installed). The cascade follows the original MTCNN
(Zhang et al. 2016) as facenet-pytorch runs it: an image pyramid (factor 0.709, smallest face
20 px) through P-Net, NMS, R-Net on 24x24 crops, O-Net on 48x48 crops giving the landmarks.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

#: the P-, R- and O-Net weights are the catalogue entries mtcnn_pnet / mtcnn_rnet / mtcnn_onet


class PNet(nn.Module):
    """Proposal net: fully convolutional, 12x12 receptive field, stride 2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), F.softmax(self.conv4_1(x), dim=1)


class RNet(nn.Module):
    """Refinement net on 24x24 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        # flattened as (W, H, C): the original Caffe nets were trained on transposed images
        x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)))
        return self.dense5_2(x), F.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """Output net on 48x48 crops: box refinement and 5 landmarks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), F.softmax(self.dense6_1(x), dim=1)


@lru_cache(maxsize=1)
def load_nets(download: bool = True) -> tuple[PNet, RNet, ONet]:
    """The three nets with the facenet-pytorch weights (strict loading), in eval mode."""
    from bench import weights as wm

    nets = (PNet(), RNet(), ONet())
    for net, name in zip(nets, ("pnet", "rnet", "onet")):
        try:
            path = wm.resolve(f"mtcnn_{name}")
        except wm.MissingWeightsError:
            if not download:
                raise
            path = wm.fetch(f"mtcnn_{name}")
        net.load_state_dict(wm.load_state_dict(path), strict=True)
        net.eval()
    return nets


# ----------------------------------------------------------------------------- cascade helpers
def _nms(boxes: np.ndarray, scores: np.ndarray, thr: float, mode: str = "union", plus1: bool = False) -> np.ndarray:
    """Greedy NMS; ``mode="min"`` divides by the smaller box, ``plus1`` counts pixels inclusively.

    facenet-pytorch uses torchvision's NMS (no +1) in stages 1-2 and MTCNN's own +1 / "Min"
    NMS at the end.
    """
    if boxes.size == 0:
        return np.zeros(0, dtype=np.int64)
    one = 1.0 if plus1 else 0.0
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + one) * (y2 - y1 + one)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + one)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + one)
        inter = w * h
        denom = np.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        order = rest[inter / denom <= thr]
    return np.asarray(keep, dtype=np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow boxes to squares around their centres (MTCNN's ``rerec``)."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _refine(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Apply regression offsets (fractions of the +1 box size)."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out[:, 0] += reg[:, 0] * w
    out[:, 1] += reg[:, 1] * h
    out[:, 2] += reg[:, 2] * w
    out[:, 3] += reg[:, 3] * h
    return out


def _crops(img: torch.Tensor, boxes: np.ndarray, size: int) -> tuple[torch.Tensor, np.ndarray]:
    """Crops of the (1, 3, H, W) image resized (area) to size x size, normalised; and the kept rows."""
    h, w = img.shape[2:]
    b = np.trunc(boxes[:, :4]).astype(np.int64)
    x1 = np.maximum(b[:, 0], 1)
    y1 = np.maximum(b[:, 1], 1)
    x2 = np.minimum(b[:, 2], w)
    y2 = np.minimum(b[:, 3], h)
    out, kept = [], []
    for k in range(len(b)):
        if y2[k] > y1[k] - 1 and x2[k] > x1[k] - 1:
            crop = img[:, :, y1[k] - 1 : y2[k], x1[k] - 1 : x2[k]]
            out.append(F.interpolate(crop, size=(size, size), mode="area"))
            kept.append(k)
    if not out:
        return torch.zeros(0, 3, size, size), np.zeros(0, dtype=np.int64)
    return (torch.cat(out) - 127.5) * 0.0078125, np.asarray(kept)


@torch.no_grad()
def mtcnn_detect(
    rgb: np.ndarray,
    min_face: int = 20,
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
    factor: float = 0.709,
    download: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (N, 5: x1, y1, x2, y2, score) and landmarks (N, 5, 2) of the faces in an RGB uint8 image."""
    pnet, rnet, onet = load_nets(download)
    img = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
    h, w = rgb.shape[:2]
    empty = (np.zeros((0, 5)), np.zeros((0, 5, 2)))
    # stage 1: P-Net over the pyramid
    m = 12.0 / min_face
    scales, minl = [], min(h, w) * m
    s = m
    while minl >= 12:
        scales.append(s)
        s *= factor
        minl *= factor
    cand = []
    for scale in scales:
        x = F.interpolate(img, size=(int(h * scale + 1), int(w * scale + 1)), mode="area")
        reg, prob = pnet((x - 127.5) * 0.0078125)
        p = prob[0, 1].numpy()
        ys, xs = np.nonzero(p >= thresholds[0])
        if ys.size == 0:
            continue
        q1x, q1y = np.floor((2 * xs + 1) / scale), np.floor((2 * ys + 1) / scale)
        q2x, q2y = np.floor((2 * xs + 12) / scale), np.floor((2 * ys + 12) / scale)
        r = reg[0][:, ys, xs].numpy().T
        boxes = np.column_stack([q1x, q1y, q2x, q2y, p[ys, xs], r])
        cand.append(boxes[_nms(boxes[:, :4], boxes[:, 4], 0.5)])
    if not cand:
        return empty
    boxes = np.concatenate(cand)
    boxes = boxes[_nms(boxes[:, :4], boxes[:, 4], 0.7)]
    regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    boxes = np.column_stack([
        boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh,
        boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh, boxes[:, 4],
    ])
    boxes = _square(boxes)
    # stage 2: R-Net
    crops, kept = _crops(img, boxes, 24)
    if not len(kept):
        return empty
    boxes = boxes[kept]
    reg, prob = rnet(crops)
    score = prob[:, 1].numpy()
    keep = score > thresholds[1]
    boxes, reg = np.column_stack([boxes[keep, :4], score[keep]]), reg.numpy()[keep]
    pick = _nms(boxes[:, :4], boxes[:, 4], 0.7)
    boxes = _square(_refine(boxes[pick], reg[pick]))
    if not len(boxes):
        return empty
    # stage 3: O-Net, landmarks
    crops, kept = _crops(img, boxes, 48)
    if not len(kept):
        return empty
    boxes = boxes[kept]
    reg, pts, prob = onet(crops)
    score = prob[:, 1].numpy()
    keep = score > thresholds[2]
    boxes = np.column_stack([boxes[keep, :4], score[keep]])
    reg, pts = reg.numpy()[keep], pts.numpy()[keep]
    bw = boxes[:, 2] - boxes[:, 0] + 1
    bh = boxes[:, 3] - boxes[:, 1] + 1
    px = bw[:, None] * pts[:, :5] + boxes[:, 0:1] - 1
    py = bh[:, None] * pts[:, 5:] + boxes[:, 1:2] - 1
    landmarks = np.stack([px, py], axis=-1)
    boxes = _refine(boxes, reg)
    pick = _nms(boxes[:, :4], boxes[:, 4], 0.7, mode="min", plus1=True)
    return boxes[pick], landmarks[pick]


__all__ = ["PNet", "RNet", "ONet", "load_nets", "mtcnn_detect"]
