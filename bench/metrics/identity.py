"""Identity preservation between restored and ground-truth faces.

``ids`` / ``ids-cos``: ArcFace ResNet-18 (:mod:`bench.metrics.arcface_arch`), the BFR papers'
"Deg." / IDS. Preprocessing as VQFR's ``metric_paper/calculate_cos_dist.py``: the image read
as grey by ``cv2.imread(path, 0)`` (for a PNG, libpng's RGB->grey inside OpenCV's decoder, which
differs from ``cvtColor`` by one level on about half the pixels; reproduced exactly by
decoding the PNG bytes), ``cv2.resize`` to 128 x 128 (INTER_LINEAR, uint8), ``(x - 127.5) / 127.5``.
``ids`` is the angle ``arccos(cos) in degrees``; VQFR leaves pairs under 1 degree out of the mean
("almost identical to original"): ``drop_below=1.0`` (default) does the same and the protocol
label says ``drop1``; ``drop_below=0`` keeps every pair. ``ids-cos`` is the cosine similarity
(DAEFR style). ``ids-rad`` is RestoreFormer++'s ``cal_identity_distance.py``: the arccos in
radians, every pair kept, its input as ``grey='rfpp'`` (the BGR image from ``cv2.imread`` in
[0, 1] mixed with the RGB weights 0.2989/0.5870/0.1140 in that BGR order, bilinear to 128, no
[-1, 1] scaling) and the cosine in float32 numpy. ``grey='torch'`` is GFPGAN's training-time
variant (the same mix on the RGB [-1, 1] image); ``grey='cv2'`` uses ``cvtColor``.

``ids-insightface``: insightface ``buffalo_l`` recognition (w600k_r50 ONNX) by onnxruntime, the
aligned face warped to the ArcFace 112 x 112 template from the FFHQ 5-point template (the test
sets are FFHQ-aligned) or from detected landmarks; cosine similarity.

``ids-dlib``: offline, non-standard: dlib's ResNet face descriptor (128-d, from the CC0 PyPI
sdist ``face-recognition-models``) with its 5-point shape predictor, L2 distance (the
``face_recognition`` library's ``face_distance``; same person is under ~0.6).
"""
from __future__ import annotations

import os
import zipfile
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from bench.core.registry import METRICS
from bench.data.align import FFHQ_TEMPLATE_512, similarity_lstsq
from bench.metrics.arcface_arch import load_arcface
from bench.metrics.base import MeanOfImages, Metric, MetricUnavailable
from bench.weights import MissingWeightsError

ARCFACE_WEIGHTS = "arcface_resnet18"
INSIGHTFACE_WEIGHTS = "insightface_buffalo_l"
DLIB_RECOGNITION = "dlib_face_recognition_resnet_v1"
DLIB_SHAPE5 = "dlib_shape_predictor_5"


#: insightface's ArcFace 112 x 112 destination points (same order)
ARCFACE_DST_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
GREY_MODES = ("png", "cv2", "torch", "rfpp")
#: where the ``png`` grey preprocessing runs: in torch on the metric's device, or OpenCV's exact path on the CPU
IMPLS = ("device", "reference")


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [0, 1] -> (B, H, W, 3) uint8 RGB (the saved PNG's pixels)."""
    u8 = img.detach().float().mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
    return np.ascontiguousarray(u8.permute(0, 2, 3, 1).cpu().numpy())  # dlib / cv2 want C-contiguous arrays


# ----------------------------------------------------------------------------- ArcFace-18


def grey128(img: torch.Tensor, mode: str = "png", impl: str = "device") -> torch.Tensor:
    """ArcFace input (B, 1, 128, 128) in [-1, 1] from (B, 3, H, W) RGB in [0, 1].

    ``png``: VQFR's ``cv2.imread(png, 0)`` + ``cv2.resize`` (uint8) + ``(x - 127.5) / 127.5``;
    ``cv2``: the same with ``cv2.cvtColor(BGR2GRAY)``; ``torch``: GFPGAN's float grey mix of the
    [-1, 1] image and ``F.interpolate(bilinear, align_corners=False)``; ``rfpp``: RestoreFormer++'s
    mix of the uint8 BGR image / 255 (channel 0 is blue) in [0, 1], the same interpolation. ``impl="device"`` computes
    ``png`` on the image's device in integer torch arithmetic (:mod:`bench.metrics._cv2_torch`:
    equal on every pixel to the reference for inputs of 128 x 128 and larger, within one grey level
    for smaller ones);
    ``impl="reference"`` goes through OpenCV on the CPU, PNG bytes included.
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, not {impl!r}")
    if mode == "png" and impl == "device":
        from bench.metrics._cv2_torch import png_grey, resize_linear_u8, to_u8_levels

        grey = resize_linear_u8(png_grey(to_u8_levels(img)), 128, 128)
        return ((grey.float() - 127.5) / 127.5).unsqueeze(1)
    if mode in ("torch", "rfpp"):
        if mode == "torch":
            x = (img.float() - 0.5) / 0.5
        else:
            x = img.float().mul(255.0).round_().clamp_(0, 255).div_(255.0).flip(1)  # cv2.imread: BGR
        g = (0.2989 * x[:, 0] + 0.5870 * x[:, 1] + 0.1140 * x[:, 2]).unsqueeze(1)
        return F.interpolate(g, size=(128, 128), mode="bilinear", align_corners=False)
    if mode not in GREY_MODES:
        raise ValueError(f"grey must be one of {GREY_MODES}, not {mode!r}")
    out = []
    for rgb in to_uint8(img):
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        if mode == "png":
            ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 0])
            if not ok:
                raise RuntimeError("PNG encoding failed")
            grey = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
        else:
            grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        grey = cv2.resize(grey, (128, 128), interpolation=cv2.INTER_LINEAR)
        out.append(torch.from_numpy((grey.astype(np.float32) - 127.5) / 127.5))
    return torch.stack(out).unsqueeze(1).to(img.device)


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity in float64."""
    a, b = a.double(), b.double()
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))


def angle_degrees(cos: torch.Tensor) -> torch.Tensor:
    """``arccos(cos)`` in degrees (cos clipped to [-1, 1] against rounding)."""
    return torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0)))


class ArcFaceEmbedder(torch.nn.Module):
    """ArcFace-18 with its grey 128 x 128 preprocessing: (B, 3, H, W) in [0, 1] -> (B, 512)."""

    def __init__(self, metric: str, weights: str | None = None, grey: str = "png", impl: str = "device") -> None:
        super().__init__()
        if grey not in GREY_MODES:
            raise ValueError(f"grey must be one of {GREY_MODES}, not {grey!r}")
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, not {impl!r}")
        from bench.weights import resolve

        try:
            self.net = load_arcface(resolve(ARCFACE_WEIGHTS, weights))
        except MissingWeightsError as exc:
            raise MetricUnavailable.because(metric, exc) from exc
        self.grey, self.impl = grey, impl

    @torch.no_grad()
    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.net(grey128(img, self.grey, self.impl))

    def similarity(self, pred: torch.Tensor, gt: torch.Tensor | None) -> torch.Tensor:
        """Cosine similarity (B,) of restored and GT embeddings, float64."""
        if gt is None:
            raise ValueError("ArcFace identity needs ground truth")
        return cosine(self(pred), self(gt))


@METRICS.register
class IdentityAngle(Metric):
    """ArcFace-18 identity angle in degrees (VQFR "Deg."); pairs under ``drop_below`` are left out of the mean."""

    name = "ids"
    weights = (ARCFACE_WEIGHTS,)
    description = ("identity angle (degrees) between ArcFace-18 embeddings of restored and GT, grey 128x128 as "
                   "VQFR calculate_cos_dist.py; pairs under 1 degree dropped as VQFR (drop_below=0 keeps them)")
    higher_better = False
    needs_gt = True
    protocol = "vqfr-arcface18-gray128-deg-drop1"
    standard = True

    def __init__(self, weights: str | None = None, grey: str = "png", drop_below: float = 1.0,
                 impl: str = "device") -> None:
        super().__init__()
        self.embedder = ArcFaceEmbedder(self.name, weights, grey, impl)
        self.drop_below = float(drop_below)
        self.protocol = protocol_label("deg", grey, self.drop_below)
        self.add_state("total", torch.zeros((), dtype=torch.float64), "sum")
        self.add_state("count", torch.zeros((), dtype=torch.float64), "sum")
        self.add_state("dropped", torch.zeros((), dtype=torch.float64), "sum")

    def reference_options(self) -> dict[str, str]:
        return {"impl": "reference"}  # VQFR's grey conversion through OpenCV and PNG bytes

    @torch.no_grad()
    def update(self, pred: torch.Tensor, gt: torch.Tensor | None = None) -> torch.Tensor:
        deg = angle_degrees(self.embedder.similarity(pred, gt))
        keep = torch.isfinite(deg) & (deg >= self.drop_below)
        self.total = self.total + deg[keep].sum()
        self.count = self.count + keep.sum()
        self.dropped = self.dropped + (torch.isfinite(deg) & ~keep).sum()
        return deg

    def compute(self) -> float:
        return float(self.total / self.count) if float(self.count) else float("nan")


@METRICS.register
class IdentityCosine(MeanOfImages):
    """ArcFace-18 cosine similarity of restored vs GT embeddings (higher is better)."""

    name = "ids-cos"
    weights = (ARCFACE_WEIGHTS,)
    description = "cosine similarity of ArcFace-18 embeddings of restored and GT (grey 128x128)"
    higher_better = True
    needs_gt = True
    protocol = "arcface18-gray128-cos"
    standard = True

    def __init__(self, weights: str | None = None, grey: str = "png", impl: str = "device") -> None:
        super().__init__()
        self.embedder = ArcFaceEmbedder(self.name, weights, grey, impl)
        self.protocol = protocol_label("cos", grey, 0.0)

    def reference_options(self) -> dict[str, str]:
        return {"impl": "reference"}  # VQFR's grey conversion through OpenCV and PNG bytes

    def score(self, pred: torch.Tensor, gt: torch.Tensor | None) -> torch.Tensor:
        return self.embedder.similarity(pred, gt)


def radians_float32(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """RestoreFormer++'s ``np.arccos(np.dot(a, b) / (norm(a) * norm(b)))`` per row, in float32 numpy.

    The cosine is clipped to [-1, 1] first: unclipped, identical images give NaN there.
    """
    out = []
    for u, v in zip(a.detach().float().cpu().numpy(), b.detach().float().cpu().numpy()):
        cos = np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v))
        out.append(float(np.arccos(np.clip(cos, np.float32(-1), np.float32(1)))))
    return torch.tensor(out, dtype=torch.float64, device=a.device)


@METRICS.register
class IdentityRadians(MeanOfImages):
    """ArcFace-18 identity angle in radians as RestoreFormer++ reports it (every pair kept); lower is better."""

    name = "ids-rad"
    weights = (ARCFACE_WEIGHTS,)
    description = ("identity angle (radians) between ArcFace-18 embeddings of GT and restored, as RestoreFormer++ "
                   "cal_identity_distance.py (BGR grey in [0, 1], bilinear 128, float32 cosine, every pair kept)")
    higher_better = False
    needs_gt = True
    protocol = "rfpp-arcface18-bgrgray01-128-rad"

    def __init__(self, weights: str | None = None) -> None:
        super().__init__()
        self.embedder = ArcFaceEmbedder(self.name, weights, "rfpp")

    def score(self, pred: torch.Tensor, gt: torch.Tensor | None) -> torch.Tensor:
        if gt is None:
            raise ValueError("ArcFace identity needs ground truth")
        return radians_float32(self.embedder(gt), self.embedder(pred))


def protocol_label(kind: str, grey: str, drop_below: float) -> str:
    """``vqfr-arcface18-gray128-deg[-dropN]`` / ``arcface18-gray128-cos``, plus the grey variant if not VQFR's."""
    base = "vqfr-arcface18-gray128-deg" if kind == "deg" else "arcface18-gray128-cos"
    if kind == "deg" and drop_below > 0:
        base += f"-drop{drop_below:g}"
    return base if grey == "png" else f"{base}-{grey}grey"


# ----------------------------------------------------------------------------- insightface


def arcface_crop(rgb: np.ndarray, landmarks5: np.ndarray, size: int = 112) -> np.ndarray:
    """insightface ``norm_crop``: warp to the ArcFace template (INTER_LINEAR, black border). The least-squares
    similarity is :func:`bench.data.align.similarity_lstsq` (skimage's Umeyama estimate to ~2e-13)."""
    m = similarity_lstsq(landmarks5, ARCFACE_DST_112 * (size / 112.0))
    return cv2.warpAffine(rgb, m, (size, size), borderValue=0.0)


def _load_onnx_bytes(path: str | os.PathLike[str], member: str = "w600k_r50.onnx") -> bytes:
    p = os.fspath(path)
    if zipfile.is_zipfile(p):
        with zipfile.ZipFile(p) as zf:
            names = [n for n in zf.namelist() if n.rsplit("/", 1)[-1] == member]
            if not names:
                raise ValueError(f"{p}: no {member} inside (members: {zf.namelist()[:8]})")
            return zf.read(names[0])
    with open(p, "rb") as fh:
        return fh.read()


@METRICS.register
class InsightFaceIdentity(MeanOfImages):
    """Cosine similarity of insightface buffalo_l (w600k_r50) embeddings of restored vs GT."""

    name = "ids-insightface"
    weights = (INSIGHTFACE_WEIGHTS,)
    requires = "onnxruntime"
    description = ("cosine similarity of insightface buffalo_l (w600k_r50) embeddings, ArcFace 112 crop from the "
                   "FFHQ template (landmarks='detect' to use the RetinaFace detector)")
    higher_better = True
    needs_gt = True
    protocol = "insightface-buffalo_l-w600k_r50-ffhqtemplate-cos"
    standard = False

    def __init__(self, weights: str | None = None, landmarks: str = "template",
                 input_mean: float = 127.5, input_std: float = 127.5) -> None:
        super().__init__()
        if landmarks not in ("template", "detect"):
            raise ValueError(f"landmarks must be 'template' or 'detect', not {landmarks!r}")
        from bench.weights import resolve

        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise MetricUnavailable(f"{self.name}: onnxruntime is not installed (pip install onnxruntime)") from exc
        try:
            path = resolve(INSIGHTFACE_WEIGHTS, weights)
        except MissingWeightsError as exc:
            raise MetricUnavailable.because(self.name, exc, "or pass weights=PATH to w600k_r50.onnx") from exc
        opts = ort.SessionOptions()
        if os.environ.get("OMP_NUM_THREADS") == "1":
            opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(_load_onnx_bytes(path), sess_options=opts,
                                            providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.size = int(inp.shape[2]) if isinstance(inp.shape[2], int) else 112
        self.landmarks = landmarks
        self.input_mean, self.input_std = float(input_mean), float(input_std)
        if landmarks == "detect":
            self.protocol = "insightface-buffalo_l-w600k_r50-retinaface5-cos"

    def _landmarks(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        template = FFHQ_TEMPLATE_512 * np.array([w / 512.0, h / 512.0])
        if self.landmarks == "template":
            return template
        from bench.data.detect import detect_faces, largest_face

        face = largest_face(detect_faces(rgb, download=False))
        return template if face is None else np.asarray(face.landmarks5, np.float64)

    def blob(self, img: torch.Tensor) -> np.ndarray:
        """The network input (B, 3, size, size) float32: aligned RGB crops, ``(x - mean) / std``."""
        crops = [arcface_crop(rgb, self._landmarks(rgb), self.size) for rgb in to_uint8(img)]
        x = np.stack(crops).astype(np.float32).transpose(0, 3, 1, 2)
        return np.ascontiguousarray((x - self.input_mean) / self.input_std, dtype=np.float32)

    @torch.no_grad()
    def embed(self, img: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: self.blob(img)})[0]
        return torch.from_numpy(np.asarray(out, np.float64)).reshape(img.shape[0], -1)

    def score(self, pred: torch.Tensor, gt: torch.Tensor | None) -> torch.Tensor:
        assert gt is not None
        return cosine(self.embed(pred), self.embed(gt)).to(pred.device)


# ----------------------------------------------------------------------------- dlib


def template_box(width: int, height: int) -> tuple[int, int, int, int]:
    """A face box (x0, y0, x1, y1) for an FFHQ-aligned face, used when the HOG detector finds none.

    The mean of dlib's HOG boxes on FFHQ-aligned 512 crops (upsample 0 and 1) of the
    face_recognition test photos, scaled to the image size.
    """
    sx, sy = width / 512.0, height / 512.0
    return round(103 * sx), round(165 * sy), round(395 * sx), round(457 * sy)


class DlibFaces:
    """dlib's HOG detector + 5-point shape predictor (+ ResNet descriptor), loaded from paths."""

    def __init__(self, shape_predictor: str | os.PathLike[str],
                 recognition: str | os.PathLike[str] | None = None, upsample: int = 1) -> None:
        import dlib

        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.shape = dlib.shape_predictor(os.fspath(shape_predictor))
        self.recognizer = dlib.face_recognition_model_v1(os.fspath(recognition)) if recognition else None
        self.upsample = int(upsample)

    def detect(self, rgb: np.ndarray) -> tuple[int, int, int, int] | None:
        """The largest HOG detection (x0, y0, x1, y1), trying without then with upsampling."""
        for up in sorted({0, self.upsample}):
            rects = list(self.detector(rgb, up))
            if rects:
                r = max(rects, key=lambda r: r.width() * r.height())
                return r.left(), r.top(), r.right(), r.bottom()
        return None

    def landmarks(self, rgb: np.ndarray, box: tuple[int, int, int, int]) -> tuple[Any, np.ndarray]:
        """The dlib shape (for descriptors) and its points (5, 2) as float (x, y)."""
        shape = self.shape(rgb, self.dlib.rectangle(*box))
        return shape, np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)

    def descriptor(self, rgb: np.ndarray, box: tuple[int, int, int, int], jitters: int = 0) -> np.ndarray:
        assert self.recognizer is not None
        shape, _ = self.landmarks(rgb, box)
        return np.array(self.recognizer.compute_face_descriptor(rgb, shape, jitters), dtype=np.float64)

    def boxes(self, a: np.ndarray, b: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...], bool]:
        """Boxes for a pair: each its own detection, else the other's, else the template (flagged)."""
        ba, bb = self.detect(a), self.detect(b)
        fallback = ba is None and bb is None
        if fallback:
            ba = template_box(a.shape[1], a.shape[0])
            bb = template_box(b.shape[1], b.shape[0])
        return (ba or bb), (bb or ba), fallback  # type: ignore[return-value]


def load_dlib(metric: str, recognition: bool, shape_predictor: str | None = None,
              weights: str | None = None, upsample: int = 1) -> DlibFaces:
    """:class:`DlibFaces` from the managed files; MetricUnavailable with the fix when missing."""
    from bench.weights import resolve

    try:
        import dlib  # noqa: F401
    except ImportError as exc:
        raise MetricUnavailable(f"{metric}: dlib is not installed (pip install dlib-bin)") from exc
    try:
        sp = resolve(DLIB_SHAPE5, shape_predictor)
        rec = resolve(DLIB_RECOGNITION, weights) if recognition else None
    except MissingWeightsError as exc:
        raise MetricUnavailable.because(metric, exc) from exc
    return DlibFaces(sp, rec, upsample)


@METRICS.register
class DlibIdentity(MeanOfImages):
    """Offline, non-standard: L2 distance of dlib ResNet face descriptors (lower is more alike)."""

    name = "ids-dlib"
    weights = (DLIB_RECOGNITION, DLIB_SHAPE5)
    requires = "dlib"
    description = ("NON-standard offline identity: L2 distance of dlib ResNet descriptors (face-recognition-models); "
                   "same person < 0.6")
    higher_better = False
    needs_gt = True
    protocol = "nonstandard-dlib-resnet-v1-l2"
    standard = False

    def __init__(self, weights: str | None = None, shape_predictor: str | None = None,
                 upsample: int = 1, jitters: int = 0) -> None:
        super().__init__()
        self.faces = load_dlib(self.name, True, shape_predictor, weights, upsample)
        self.jitters = int(jitters)
        self.add_state("no_face", torch.zeros((), dtype=torch.float64), "sum")

    def score(self, pred: torch.Tensor, gt: torch.Tensor | None) -> torch.Tensor:
        assert gt is not None
        out = []
        for p, g in zip(to_uint8(pred), to_uint8(gt)):
            bp, bg, fallback = self.faces.boxes(p, g)
            self.no_face = self.no_face + float(fallback)
            dp = self.faces.descriptor(p, bp, self.jitters)
            dg = self.faces.descriptor(g, bg, self.jitters)
            out.append(float(np.linalg.norm(dp - dg)))
        return torch.tensor(out, dtype=torch.float64, device=pred.device)


# ----------------------------------------------------------------------------- registration



__all__ = [
    "IdentityAngle", "IdentityCosine", "IdentityRadians", "radians_float32", "InsightFaceIdentity", "DlibIdentity", "DlibFaces", "grey128",
    "cosine", "angle_degrees", "arcface_crop", "template_box", "load_dlib", "ArcFaceEmbedder",
]
