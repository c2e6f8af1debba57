"""RetinaFace ResNet-50 in torch: the detector of the official whole-image pipeline (facexlib's
``retinaface_resnet50``, used by CodeFormer's and GFPGAN's inference scripts).

The network's tensor names are facexlib's (``body.*`` ResNet-50 up to ``layer4``, ``fpn``, ``ssh1..3``,
``ClassHead``/``BboxHead``/``LandmarkHead``), so the released ``detection_Resnet50_Final.pth`` loads
strictly (``weights_only=True``; a ``module.`` prefix is dropped). :meth:`RetinaFaceR50.detect` is
facexlib's ``RetinaFace.detect_faces`` at its original size: BGR minus (104, 117, 123), priors and
decoding in float32, score threshold, descending sort, torchvision NMS. Parity with facexlib 0.3.0
(same seeded weights): tests/bench/data/test_official_pipeline.py.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.data.detect import priors

#: facexlib cfg_re50: anchors of each pyramid level, strides, box variances
VARIANCE = (0.1, 0.2)
MEAN_BGR = (104.0, 117.0, 123.0)
WEIGHTS_NAME = "retinaface-resnet50"


def _conv_bn(cin: int, cout: int, k: int, leaky: float | None) -> nn.Sequential:
    """Conv (no bias) + BatchNorm (+ LeakyReLU when ``leaky`` is not None), facexlib's ``conv_bn*`` blocks."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, 1, k // 2, bias=False), nn.BatchNorm2d(cout)]
    if leaky is not None:
        layers.append(nn.LeakyReLU(negative_slope=leaky, inplace=True))
    return nn.Sequential(*layers)


class _Body(nn.Module):
    """torchvision's ResNet-50 stem and stages; returns the outputs of layer2, layer3, layer4."""

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models import resnet50

        net = resnet50(weights=None)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer2(self.layer1(x))
        c3 = self.layer3(c2)
        return [c2, c3, self.layer4(c3)]


class _FPN(nn.Module):
    def __init__(self, ins: tuple[int, int, int], out: int) -> None:
        super().__init__()
        self.output1, self.output2, self.output3 = (_conv_bn(c, out, 1, 0.0) for c in ins)
        self.merge1, self.merge2 = _conv_bn(out, out, 3, 0.0), _conv_bn(out, out, 3, 0.0)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        o1, o2, o3 = self.output1(feats[0]), self.output2(feats[1]), self.output3(feats[2])
        o2 = self.merge2(o2 + F.interpolate(o3, size=o2.shape[2:], mode="nearest"))
        o1 = self.merge1(o1 + F.interpolate(o2, size=o1.shape[2:], mode="nearest"))
        return [o1, o2, o3]


class _SSH(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv3X3 = _conv_bn(c, c // 2, 3, None)
        self.conv5X5_1 = _conv_bn(c, c // 4, 3, 0.0)
        self.conv5X5_2 = _conv_bn(c // 4, c // 4, 3, None)
        self.conv7X7_2 = _conv_bn(c // 4, c // 4, 3, 0.0)
        self.conv7x7_3 = _conv_bn(c // 4, c // 4, 3, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv5X5_1(x)
        return F.relu(torch.cat([self.conv3X3(x), self.conv5X5_2(a), self.conv7x7_3(self.conv7X7_2(a))], 1))


class _Head(nn.Module):
    def __init__(self, c: int, per_anchor: int) -> None:
        super().__init__()
        self.per_anchor = per_anchor
        self.conv1x1 = nn.Conv2d(c, 2 * per_anchor, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1).contiguous()
        return out.view(out.shape[0], -1, self.per_anchor)


class RetinaFaceR50(nn.Module):
    """RetinaFace with a ResNet-50 body; ``forward`` returns (box offsets, class softmax, landmark offsets)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = _Body()
        self.fpn = _FPN((512, 1024, 2048), 256)
        self.ssh1, self.ssh2, self.ssh3 = _SSH(256), _SSH(256), _SSH(256)
        self.ClassHead = nn.ModuleList(_Head(256, 2) for _ in range(3))
        self.BboxHead = nn.ModuleList(_Head(256, 4) for _ in range(3))
        self.LandmarkHead = nn.ModuleList(_Head(256, 10) for _ in range(3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        fpn = self.fpn(self.body(x))
        feats = [self.ssh1(fpn[0]), self.ssh2(fpn[1]), self.ssh3(fpn[2])]
        loc = torch.cat([h(f) for h, f in zip(self.BboxHead, feats)], 1)
        conf = torch.cat([h(f) for h, f in zip(self.ClassHead, feats)], 1)
        landm = torch.cat([h(f) for h, f in zip(self.LandmarkHead, feats)], 1)
        return loc, F.softmax(conf, dim=-1), landm

    @torch.no_grad()
    def raw(self, rgb: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The network's outputs for an RGB uint8 image at its own size (facexlib's input: BGR - mean)."""
        dev = next(self.parameters()).device
        x = torch.from_numpy(np.ascontiguousarray(rgb[:, :, ::-1]).astype(np.float32).transpose(2, 0, 1))[None]
        x = x.to(dev) - torch.tensor(MEAN_BGR, device=dev).view(1, 3, 1, 1)
        return self(x)

    def detect(self, rgb: np.ndarray, conf_threshold: float = 0.8, nms_threshold: float = 0.4) -> np.ndarray:
        """Detections (N, 15) float32: x1, y1, x2, y2, score, then 5 (x, y) landmarks; best first after NMS."""
        h, w = rgb.shape[:2]
        loc, conf, landm = self.raw(rgb)
        return postprocess(loc[0].cpu(), conf[0].cpu(), landm[0].cpu(), h, w, conf_threshold, nms_threshold)


def decode(loc: torch.Tensor, landm: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Offsets (N, 4), (N, 10) to pixel boxes x1y1x2y2 and landmarks, in float32 as facexlib computes them."""
    p = torch.from_numpy(priors(height, width).astype(np.float32))
    v0, v1 = VARIANCE
    boxes = torch.cat((p[:, :2] + loc[:, :2] * v0 * p[:, 2:], p[:, 2:] * torch.exp(loc[:, 2:] * v1)), 1)
    boxes[:, :2] -= boxes[:, 2:] / 2
    boxes[:, 2:] += boxes[:, :2]
    pts = torch.cat([p[:, :2] + landm[:, 2 * i:2 * i + 2] * v0 * p[:, 2:] for i in range(5)], 1)
    scale = torch.tensor([width, height] * 5, dtype=torch.float32)
    return boxes * scale[:4], pts * scale


def postprocess(loc: torch.Tensor, conf: torch.Tensor, landm: torch.Tensor, height: int, width: int,
                conf_threshold: float, nms_threshold: float) -> np.ndarray:
    """One image's raw outputs to thresholded, sorted, NMS-kept detections (N, 15) float32."""
    from torchvision.ops import nms

    if loc.shape[0] != priors(height, width).shape[0]:
        raise RuntimeError(f"detector output has {loc.shape[0]} anchors for a {width}x{height} image")
    boxes, pts = decode(loc.float(), landm.float(), height, width)
    scores = conf[:, 1].float().numpy()
    keep = np.where(scores > conf_threshold)[0]
    boxes, pts, scores = boxes.numpy()[keep], pts.numpy()[keep], scores[keep]
    order = scores.argsort()[::-1]
    boxes, pts, scores = boxes[order], pts[order], scores[order]
    dets = np.hstack((boxes, scores[:, None])).astype(np.float32, copy=False)
    kept = nms(torch.from_numpy(dets[:, :4].copy()), torch.from_numpy(dets[:, 4].copy()), nms_threshold).numpy()
    return np.concatenate((dets[kept], pts[kept]), axis=1)


def load_retinaface_r50(weights: str | Path | None = None, device: str | torch.device = "cpu",
                        state_dict: dict[str, torch.Tensor] | None = None) -> RetinaFaceR50:
    """The detector with ``state_dict``, or a checkpoint file, or the managed ``retinaface-resnet50``; strict."""
    from bench import weights as wm

    if state_dict is None:
        path = Path(weights) if weights else Path(wm.fetch(WEIGHTS_NAME))
        state_dict = wm.load_state_dict(path, strip_prefix="module.")
    net = RetinaFaceR50()
    net.load_state_dict(state_dict, strict=True)
    return net.eval().to(device)


__all__ = ["RetinaFaceR50", "decode", "postprocess", "load_retinaface_r50", "WEIGHTS_NAME"]
