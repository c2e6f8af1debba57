"""Landmark distance (LMD) between restored and ground-truth faces.

``lmd``: the papers' protocol (VQFR ``metric_paper/calculate_landmark_distance.py``, facexlib
``awing_fan``): AWing FAN on the image resized to 256 x 256 (``cv2.resize``, INTER_LINEAR, uint8),
RGB / 255, last stack's 98 heatmaps -> points (facexlib ``calculate_points``) scaled back by
W/64, H/64; per image the mean over the 98 points of the L2 distance, in pixels of the 512 x 512
image (the test sets' size; other sizes are rescaled to 512 units).

``lmd-5pt`` (offline, non-standard): the 5 landmarks (eyes, nose, mouth corners) of the
RetinaFace MobileNet-0.25 detector in :mod:`bench.data.detect` (largest face, each image on its
own); ``lmd-5pt-dlib``: dlib's 5-point shape predictor (eye corners, nose base) seeded with the
same box in both images (the GT's HOG detection, else the restored one's, else the FFHQ template
box). Both: mean L2 over the 5 points in 512-pixel units; an image with no face is NaN (left
out of the mean and counted in the ``no_face`` state).
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from bench.core.registry import METRICS
from bench.metrics.awing_arch import heatmap_points, heatmap_points_torch, load_fan
from bench.metrics.base import Impl, MeanOfImages, MetricUnavailable, check_impl
from bench.metrics.identity import DLIB_SHAPE5, load_dlib, template_box, to_uint8
from bench.weights import MissingWeightsError

AWING_WEIGHTS = "awing_fan_wflw"
try:
    from bench.data.detect import WEIGHTS_NAME as RETINAFACE_WEIGHTS
except ImportError:  # the detector module is optional for the other metrics here
    RETINAFACE_WEIGHTS = "retinaface_mnet025_onnx"


def mean_point_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over points of the L2 distance between two (N, 2) landmark sets."""
    return float(np.sqrt(((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).sum(1)).mean())


def _to512(points: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(points, np.float64) * np.array([512.0 / width, 512.0 / height])


@METRICS.register
class LandmarkDistance(MeanOfImages):
    """AWing 98-point landmark distance (VQFR / facexlib), pixels at 512."""

    name = "lmd"
    weights = (AWING_WEIGHTS,)
    description = ("landmark distance: AWing FAN 98 WFLW points (facexlib awing_fan), mean L2 in pixels at 512, "
                   "as VQFR calculate_landmark_distance.py")
    higher_better = False
    needs_gt = True
    protocol = "vqfr-awing-wflw98-l2px512"
    standard = True

    option_help = {"impl": "auto (the faster where it runs: reference on a CPU, device elsewhere), device (resize "
                           "and heatmap decoding in torch on the metric's device) or reference (facexlib's OpenCV "
                           "resize and numpy decoding); the same landmarks"}
    #: on a CPU, OpenCV's resize and numpy's decoding take 0.03-0.06 s per 8 faces against 0.15-0.21 s in torch
    fastest_impl = {"cpu": "reference"}

    def __init__(self, weights: str | None = None, impl: Impl = "auto") -> None:
        super().__init__()
        from bench.weights import resolve

        check_impl("lmd", impl)
        self.impl = impl

        try:
            self.net = load_fan(resolve(AWING_WEIGHTS, weights))
        except MissingWeightsError as exc:
            raise MetricUnavailable.because(self.name, exc) from exc

    def reference_options(self) -> dict[str, str]:
        return {"impl": "reference"}  # facexlib's numpy decoding

    @torch.no_grad()
    def landmarks(self, img: torch.Tensor) -> np.ndarray:
        """(B, 98, 2) landmarks (x, y) in the input's pixels, as facexlib ``FAN.get_landmarks``."""
        rgb = to_uint8(img)
        # the script resizes the BGR image and flips to RGB; resizing is per channel, so the same
        small = np.stack([cv2.resize(x, (256, 256)) for x in rgb])
        inp = torch.from_numpy(np.ascontiguousarray(small.transpose(0, 3, 1, 2))).float().div_(255.0)
        heat = self.net(inp.to(img.device))[-1][:, :-1].float().cpu().numpy()
        h, w = img.shape[-2:]
        pts = np.stack([heatmap_points(heat[i : i + 1])[0] for i in range(heat.shape[0])])
        return pts * np.array([w / 64.0, h / 64.0])

    @torch.no_grad()
    def landmarks_device(self, img: torch.Tensor) -> torch.Tensor:
        """:meth:`landmarks` on the image's device (uint8 resize and decoding in torch): (B, 98, 2) float64."""
        from bench.metrics._cv2_torch import resize_linear_u8, to_u8_levels

        u8 = to_u8_levels(img)
        b, c, h, w = u8.shape
        small = resize_linear_u8(u8.reshape(b * c, h, w), 256, 256).reshape(b, c, 256, 256)
        heat = self.net(small.float().div_(255.0))[-1][:, :-1].float()
        scale = torch.tensor([w / 64.0, h / 64.0], dtype=torch.float64, device=heat.device)
        return heatmap_points_torch(heat) * scale

    def score(self, pred: torch.Tensor, gt: torch.Tensor | None) -> torch.Tensor:
        assert gt is not None
        h, w = pred.shape[-2:]
        if self.impl_on(pred.device.type) == "device":
            to512 = torch.tensor([512.0 / w, 512.0 / h], dtype=torch.float64, device=pred.device)
            d = (self.landmarks_device(pred) - self.landmarks_device(gt)) * to512
            return d.square().sum(2).sqrt().mean(1)
        lp, lg = self.landmarks(pred), self.landmarks(gt)
        vals = [mean_point_distance(_to512(a, w, h), _to512(b, w, h)) for a, b in zip(lp, lg)]
        return torch.tensor(vals, dtype=torch.float64, device=pred.device)


@METRICS.register
class FivePointDistance(MeanOfImages):
    """Offline, non-standard: RetinaFace 5-landmark distance, pixels at 512."""

    name = "lmd-5pt"
    weights = (RETINAFACE_WEIGHTS,)
    requires = "onnxruntime"
    description = "NON-standard offline landmark distance: RetinaFace-MobileNet 5 points, mean L2 in pixels at 512"
    higher_better = False
    needs_gt = True
    protocol = "nonstandard-lmd5-retinaface-mnet025-l2px512"
    standard = False

    def __init__(self, score_threshold: float = 0.5) -> None:
        super().__init__()
        from bench.weights import resolve

        try:
            resolve(RETINAFACE_WEIGHTS)
            import onnxruntime  # noqa: F401
        except MissingWeightsError as exc:
            raise MetricUnavailable.because(self.name, exc) from exc
        except ImportError as exc:
            raise MetricUnavailable(f"{self.name}: onnxruntime is not installed (pip install onnxruntime)") from exc
        self.threshold = float(score_threshold)
        self.add_state("no_face", torch.zeros((), dtype=torch.float64), "sum")

    def points(self, rgb: np.ndarray) -> np.ndarray | None:
        """The largest face's 5 landmarks (x, y) in 512-pixel units, or None."""
        from bench.data.detect import detect_faces, largest_face

        face = largest_face(detect_faces(rgb, score_threshold=self.threshold, download=False))
        return None if face is None else _to512(face.landmarks5, rgb.shape[1], rgb.shape[0])

    def score(self, pred: torch.Tensor, gt: torch.Tensor | None) -> torch.Tensor:
        assert gt is not None
        vals = []
        for p, g in zip(to_uint8(pred), to_uint8(gt)):
            a, b = self.points(p), self.points(g)
            if a is None or b is None:
                self.no_face = self.no_face + 1
                vals.append(float("nan"))
            else:
                vals.append(mean_point_distance(a, b))
        return torch.tensor(vals, dtype=torch.float64, device=pred.device)


@METRICS.register
class DlibFivePointDistance(MeanOfImages):
    """Offline, non-standard: dlib 5-point shape-predictor landmark distance (same box in both), pixels at 512."""

    name = "lmd-5pt-dlib"
    weights = (DLIB_SHAPE5,)
    requires = "dlib"
    description = ("NON-standard offline landmark distance: dlib 5-point shape predictor (same box in both images), "
                   "mean L2 in pixels at 512")
    higher_better = False
    needs_gt = True
    protocol = "nonstandard-lmd5-dlib-sp5-l2px512"
    standard = False

    def __init__(self, shape_predictor: str | None = None, upsample: int = 1) -> None:
        super().__init__()
        self.faces = load_dlib(self.name, False, shape_predictor, upsample=upsample)
        self.add_state("no_face", torch.zeros((), dtype=torch.float64), "sum")

    def score(self, pred: torch.Tensor, gt: torch.Tensor | None) -> torch.Tensor:
        assert gt is not None
        vals = []
        for p, g in zip(to_uint8(pred), to_uint8(gt)):
            box = self.faces.detect(g) or self.faces.detect(p)
            if box is None:
                self.no_face = self.no_face + 1
                box = template_box(g.shape[1], g.shape[0])
            _, a = self.faces.landmarks(p, box)
            _, b = self.faces.landmarks(g, box)
            vals.append(mean_point_distance(_to512(a, p.shape[1], p.shape[0]), _to512(b, g.shape[1], g.shape[0])))
        return torch.tensor(vals, dtype=torch.float64, device=pred.device)



__all__ = ["LandmarkDistance", "FivePointDistance", "DlibFivePointDistance", "mean_point_distance"]
