"""Synthetic degradation of aligned faces: the pipelines that made CelebA-Test and train CodeFormer.

``celeba-test`` is GFPGAN's ``FFHQDegradationDataset`` (BasicSR ``degradations``) with the
CelebA-Test settings, step for step, on float32 images in [0, 1] (BGR internally, as cv2):

1. blur: ``cv2.filter2D`` with a 41x41 Gaussian kernel, isotropic or anisotropic (p = 0.5 each),
   sigma(s) ~ U(0.1, 10), rotation ~ U(-pi, pi) (anisotropic), normalised to sum 1;
2. downsample: scale ~ U(0.8, 8), ``cv2.resize`` to (int(w // scale), int(h // scale)), bilinear;
3. noise: sigma ~ U(0, 20) / 255, per-pixel per-channel Gaussian, clip to [0, 1];
4. JPEG: quality ~ U(60, 100) (truncated to int), ``cv2.imencode`` / ``imdecode``;
5. bilinear resize back to the input size, then round to uint8.

GFPGAN's training-only extras (colour jitter, random grey, horizontal flip) are not part of
the test-set pipeline and are left out. GFPGAN passes the float JPEG quality to OpenCV; like
CodeFormer, it is truncated to an int here.

The CodeFormer presets change only the ranges (``options/CodeFormer_stage2.yml`` for the large
one). Random numbers come from a ``numpy.random.Generator`` that :func:`rng_for` derives from
(seed, image name) with SHA-256, so any image is reproducible alone, in any order, on any
number of workers.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

from bench.data.presets import PRESETS, DegradationPreset, get_preset  # noqa: F401 - re-exported


def rng_for(seed: int, name: str) -> np.random.Generator:
    """A Generator whose state depends only on (seed, name), through SHA-256 (stable everywhere)."""
    digest = hashlib.sha256(f"bfrbench-degrade:{int(seed)}:{name}".encode()).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 32, 4)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(words)))


# ----------------------------------------------------------------------------- kernels
def mesh_grid(kernel_size: int) -> np.ndarray:
    """(K, K, 2) grid of (x, y) offsets centred on zero."""
    ax = np.arange(-kernel_size // 2 + 1.0, kernel_size // 2 + 1.0)
    xx, yy = np.meshgrid(ax, ax)
    return np.stack([xx, yy], axis=-1)


def gaussian_kernel(kernel_size: int, sig_x: float, sig_y: float | None = None, theta: float = 0.0) -> np.ndarray:
    """Normalised bivariate Gaussian kernel (isotropic when sig_y is None)."""
    if kernel_size % 2 != 1:
        raise ValueError("kernel size must be odd")
    if sig_y is None:
        cov = np.array([[sig_x**2, 0.0], [0.0, sig_x**2]])
    else:
        d = np.array([[sig_x**2, 0.0], [0.0, sig_y**2]])
        u = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        cov = u @ d @ u.T
    grid = mesh_grid(kernel_size)
    inv = np.linalg.inv(cov)
    k = np.exp(-0.5 * np.sum(np.dot(grid, inv) * grid, axis=2))
    k = k / np.sum(k)
    # BasicSR normalises again in random_bivariate_Gaussian (same kernel, same last bits)
    return k / np.sum(k)


@dataclass
class DegradationParams:
    """The random draws of one degradation, recorded so a synthesised set can be audited."""

    kernel_type: str
    sigma_x: float
    sigma_y: float | None
    theta: float
    scale: float
    noise_sigma: float | None  # of 255
    jpeg_quality: int | None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in d.items()}


def sample_params(preset: str | DegradationPreset, rng: np.random.Generator) -> DegradationParams:
    """Draw one set of degradation parameters (draw order is fixed: it defines the set)."""
    p = get_preset(preset)
    u = rng.random()
    cum = np.cumsum(np.asarray(p.kernel_prob, np.float64) / np.sum(p.kernel_prob))
    kernel_type = p.kernel_list[int(min(np.searchsorted(cum, u, side="right"), len(cum) - 1))]
    sx = float(rng.uniform(*p.blur_sigma))
    sy: float | None = None
    theta = 0.0
    if kernel_type == "aniso":
        sy = float(rng.uniform(*p.blur_sigma))
        theta = float(rng.uniform(-math.pi, math.pi))
    elif kernel_type != "iso":
        raise ValueError(f"unsupported kernel type {kernel_type!r}")
    scale = float(rng.uniform(*p.downsample_range))
    noise = float(rng.uniform(*p.noise_range)) if p.noise_range is not None else None
    quality = int(rng.uniform(*p.jpeg_range)) if p.jpeg_range is not None else None
    return DegradationParams(kernel_type, sx, sy, theta, scale, noise, quality)


def apply_degradation(
    hq_rgb_uint8: np.ndarray, params: DegradationParams, rng: np.random.Generator, kernel_size: int = 41
) -> np.ndarray:
    """Apply drawn parameters; ``rng`` supplies the noise field. Returns RGB uint8 of the input size."""
    if hq_rgb_uint8.dtype != np.uint8 or hq_rgb_uint8.ndim != 3 or hq_rgb_uint8.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {hq_rgb_uint8.dtype} {hq_rgb_uint8.shape}")
    h, w = hq_rgb_uint8.shape[:2]
    img = hq_rgb_uint8[:, :, ::-1].astype(np.float32) / 255.0  # BGR float32 [0, 1], as cv2.imread + /255
    # 1. blur
    kernel = gaussian_kernel(kernel_size, params.sigma_x, params.sigma_y, params.theta)
    img = cv2.filter2D(img, -1, kernel)
    # 2. downsample
    size = (max(1, int(w // params.scale)), max(1, int(h // params.scale)))
    img = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)
    # 3. noise
    if params.noise_sigma is not None:
        # float32 field * sigma / 255 in float32, as BasicSR's generate_gaussian_noise
        noise = rng.standard_normal(img.shape, dtype=np.float32) * params.noise_sigma / 255.0
        img = np.clip(img + noise, 0, 1)
    # 4. JPEG; BasicSR hands cv2 the float image * 255, which cv2 converts to 8 bits with
    #    round-half-to-even and saturation: done here explicitly (same bytes, no warning)
    if params.jpeg_quality is not None:
        img8 = np.clip(np.round(img * np.float32(255.0)), 0, 255).astype(np.uint8)
        ok, enc = cv2.imencode(".jpg", img8, [int(cv2.IMWRITE_JPEG_QUALITY), int(params.jpeg_quality)])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        img = cv2.imdecode(enc, cv2.IMREAD_COLOR).astype(np.float32) / 255.0
    # 5. back to the input size, then to uint8 levels
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    out = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out[:, :, ::-1])


def degrade_with_params(
    hq_rgb_uint8: np.ndarray, preset: str | DegradationPreset, rng: np.random.Generator
) -> tuple[np.ndarray, DegradationParams]:
    """:func:`degrade` that also returns the drawn parameters."""
    p = get_preset(preset)
    params = sample_params(p, rng)
    return apply_degradation(hq_rgb_uint8, params, rng, p.blur_kernel_size), params


def degrade(hq_rgb_uint8: np.ndarray, preset: str | DegradationPreset, rng: np.random.Generator) -> np.ndarray:
    """Degrade an RGB uint8 face with a preset's pipeline; returns the LQ image at the input size."""
    return degrade_with_params(hq_rgb_uint8, preset, rng)[0]


def degrade_named(hq_rgb_uint8: np.ndarray, preset: str | DegradationPreset, seed: int, name: str) -> np.ndarray:
    """Degrade with the generator of (seed, name): identical whether a set is made whole or one by one."""
    return degrade(hq_rgb_uint8, preset, rng_for(seed, name))


# ----------------------------------------------------------------------------- batched (torch)
def degrade_batch(
    hq: Any, preset: str | DegradationPreset, generator: np.random.Generator, jpeg: bool = True
) -> Any:
    """Degrade a batch of float tensors (B, 3, H, W) in [0, 1] on their device, for training.

    Blur (grouped conv, reflect-101 padding as cv2), bilinear down/up-sampling
    (``align_corners=False``, no antialias, as cv2.INTER_LINEAR) and noise run in torch; JPEG
    (no differentiable equivalent that matches libjpeg) runs per sample through cv2 on the CPU
    unless ``jpeg=False``. Statistically the same pipeline as :func:`degrade`, not bit-identical
    (per-sample sizes are rounded the same way, the arithmetic differs).
    """
    import torch
    import torch.nn.functional as F

    from bench.core.device import to_uint8_levels

    p = get_preset(preset)
    if hq.ndim != 4 or hq.shape[1] != 3:
        raise ValueError(f"expected (B, 3, H, W), got {tuple(hq.shape)}")
    b, _, h, w = hq.shape
    params = [sample_params(p, generator) for _ in range(b)]
    k = p.blur_kernel_size
    kernels = np.stack([gaussian_kernel(k, q.sigma_x, q.sigma_y, q.theta) for q in params]).astype(np.float32)
    kt = torch.from_numpy(kernels).to(hq.device, hq.dtype)
    pad = k // 2
    x = F.pad(hq.float(), (pad, pad, pad, pad), mode="reflect")  # reflect == cv2 BORDER_REFLECT_101
    x = x.reshape(1, b * 3, h + 2 * pad, w + 2 * pad)
    weight = kt[:, None].repeat_interleave(3, dim=0)  # (b*3, 1, k, k), correlation like cv2.filter2D
    x = F.conv2d(x, weight, groups=b * 3).reshape(b, 3, h, w)
    outs = []
    for i, q in enumerate(params):
        xi = x[i : i + 1]
        size = (max(1, int(h // q.scale)), max(1, int(w // q.scale)))
        xi = F.interpolate(xi, size=size, mode="bilinear", align_corners=False)
        if q.noise_sigma is not None:
            noise = torch.from_numpy(generator.standard_normal(xi.shape, dtype=np.float32)).to(xi.device)
            xi = (xi + noise * (q.noise_sigma / 255.0)).clamp(0, 1)
        if jpeg and q.jpeg_quality is not None:
            arr = (xi[0].permute(1, 2, 0).detach().float().cpu().numpy() * 255.0)[:, :, ::-1]
            arr8 = np.clip(np.round(arr), 0, 255).astype(np.uint8)
            ok, enc = cv2.imencode(".jpg", np.ascontiguousarray(arr8), [int(cv2.IMWRITE_JPEG_QUALITY), q.jpeg_quality])
            dec = cv2.imdecode(enc, cv2.IMREAD_COLOR)[:, :, ::-1].astype(np.float32) / 255.0
            xi = torch.from_numpy(np.ascontiguousarray(dec)).permute(2, 0, 1)[None].to(hq.device)
        xi = F.interpolate(xi, size=(h, w), mode="bilinear", align_corners=False)
        outs.append(xi)
    out = torch.cat(outs, 0)
    return to_uint8_levels(out).to(hq.dtype)


__all__ = [
    "DegradationPreset", "PRESETS", "get_preset", "rng_for", "gaussian_kernel", "mesh_grid",
    "DegradationParams", "sample_params", "apply_degradation", "degrade", "degrade_with_params",
    "degrade_named", "degrade_batch",
]
