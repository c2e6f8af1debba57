"""NIQE (Mittal et al. 2013) with the MATLAB release's pristine model: BasicSR's and pyiqa's.

``niqe`` is BasicSR's ``calculate_niqe(img, 0, input_order='HWC', convert_to='y')`` (VQFR and
most BFR papers): the Y channel of MATLAB's rgb2ycbcr rounded to integers, 96x96 blocks without
overlap, MSCN with the 7x7 Gaussian window of the release (replicate border), 18 AGGD features
per block at full and half scale (MATLAB bicubic ``imresize`` with antialiasing), a Gaussian
fitted to the block features (NaN rows dropped from the covariance) and its distance to the
pristine Gaussian. By default with BasicSR's own float32 arithmetic, batched in torch on the
metric's device (:mod:`bench.metrics._niqe_basicsr_torch`: the same dtypes and summation orders,
equal to the reference within 1e-12 relative on the test faces); ``impl='reference'`` runs the
per-image numpy replica of BasicSR on the host (:mod:`bench.metrics._niqe_basicsr`), the parity
baseline. ``impl='auto'`` (the default) runs whichever is faster where the metric is: the numpy
reference on a CPU (the batched torch path costs 1.1-1.2x its CPU time per core, and more where
threads oversubscribe the cores), the batched path on a GPU; the run records which ran. ``precision='float64'`` is the same algorithm batched in float64 torch (MATLAB's double
precision; its own protocol label, ``-f64``).

``niqe-pyiqa`` is pyiqa 0.1.16's default ``niqe`` (what NTIRE's eval runs): the Y of YIQ (not
YCbCr) in float32, rounded, then float64 except its float32 Gaussian window and float32
``imresize`` (:mod:`bench.metrics._pyiqa_ops`).

The pristine parameters are ``niqe_pris_params.npz`` from the ``basicsr==1.4.2`` sdist on PyPI
(a registry asset, see ``bfrbench fetch niqe-pris-params``); pyiqa's ``niqe_modelparameters.mat``
holds the same MATLAB release values.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F

from bench.core.registry import METRICS
from bench.metrics import _pyiqa_ops as pq
from bench.metrics._colour import check_images, rgb_to_y
from bench.metrics._matlab import filter_same, imresize
from bench.metrics._niqe_basicsr import niqe_basicsr
from bench.metrics._niqe_basicsr_torch import niqe_basicsr_batched
from bench.metrics._niqe_fit import pristine_distance
from bench.metrics._nss import aggd_fit, lgamma_ratio
from bench.metrics.base import Impl, MeanOfImages, MetricUnavailable, check_impl
from bench.weights import MissingWeightsError, resolve

WEIGHTS_NAME = "niqe-pris-params"

BLOCK = 96
#: (dy, dx) shifts of the paired products, as np.roll in BasicSR's compute_feature
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


def load_pris_params(path: str | Path) -> dict[str, torch.Tensor]:
    """Read ``mu_pris_param``, ``cov_pris_param`` and ``gaussian_window`` (float64) from the npz."""
    try:
        with np.load(path) as data:
            out = {k: torch.from_numpy(np.asarray(data[k], dtype=np.float64)) for k in
                   ("mu_pris_param", "cov_pris_param", "gaussian_window")}
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(
            f"{path}: not a valid NIQE parameter file ({type(exc).__name__}: {exc}); "
            f"delete it and run `bfrbench fetch {WEIGHTS_NAME}`"
        ) from exc
    if out["mu_pris_param"].numel() != 36 or out["cov_pris_param"].shape != (36, 36):
        raise ValueError(f"{path}: expected mu 1x36 and cov 36x36, got {tuple(out['mu_pris_param'].shape)} "
                         f"and {tuple(out['cov_pris_param'].shape)}")
    out["mu_pris_param"] = out["mu_pris_param"].reshape(36)
    return out


def block_features(img_norm: torch.Tensor, bh: int, bw: int) -> torch.Tensor:
    """(B, 1, nh*bh, nw*bw) MSCN image -> (B, nh*nw, 18) features of its non-overlapping blocks."""
    b, _, h, w = img_norm.shape
    nh, nw = h // bh, w // bw
    blocks = img_norm.reshape(b, nh, bh, nw, bw).permute(0, 1, 3, 2, 4).reshape(b, nh * nw, bh, bw)
    feats = []
    alpha, lstd, rstd = aggd_fit(blocks.flatten(-2))
    scale = torch.sqrt(lgamma_ratio(1, 3, alpha))
    feats += [alpha, (lstd * scale + rstd * scale) / 2]
    for shift in _SHIFTS:
        prod = blocks * torch.roll(blocks, shifts=shift, dims=(-2, -1))
        alpha, lstd, rstd = aggd_fit(prod.flatten(-2))
        scale = torch.sqrt(lgamma_ratio(1, 3, alpha))
        beta_l, beta_r = lstd * scale, rstd * scale
        feats += [alpha, (beta_r - beta_l) * lgamma_ratio(2, 1, alpha), beta_l, beta_r]
    return torch.stack(feats, dim=-1)


def niqe_score(y: torch.Tensor, params: dict[str, torch.Tensor], block: int = BLOCK) -> torch.Tensor:
    """NIQE of (B, 1, H, W) integer-valued float64 luma in [0, 255]; returns (B,)."""
    h, w = y.shape[-2:]
    nh, nw = h // block, w // block
    if nh * nw < 2:
        raise ValueError(f"NIQE needs at least two {block}x{block} blocks; the image is {h}x{w}")
    img = y[..., : nh * block, : nw * block]
    window = params["gaussian_window"]
    feats = []
    for scale in (1, 2):
        mu = filter_same(img, window, "replicate")
        sigma = torch.sqrt((filter_same(img * img, window, "replicate") - mu * mu).abs())
        feats.append(block_features((img - mu) / (sigma + 1), block // scale, block // scale))
        if scale == 1:
            img = imresize(img / 255.0, 0.5, antialias=True) * 255.0
    return pristine_distance(torch.cat(feats, dim=-1), params["mu_pris_param"], params["cov_pris_param"])


Precision = Literal["float32", "float64"]
PRECISIONS: tuple[str, ...] = get_args(Precision)


def _check_size(h: int, w: int, block: int = BLOCK) -> None:
    if (h // block) * (w // block) < 2:
        raise ValueError(f"NIQE needs at least two {block}x{block} blocks; the image is {h}x{w}")


@METRICS.register
class NIQE(MeanOfImages):
    """NIQE on the Y channel, BasicSR ``calculate_niqe`` (crop_border 0, 96x96 blocks); lower is better."""

    name = "niqe"
    weights = (WEIGHTS_NAME,)
    description = ("NIQE (MATLAB pristine model), BasicSR calculate_niqe as shipped: Y channel, crop 0, 96x96 blocks, "
                   "float32 (precision='float64': the same in double; impl='reference': BasicSR's numpy, per image)")
    higher_better = False
    needs_gt = False
    protocol = "basicsr-1.4.2-niqe-y"
    option_help = {"precision": "float32 (BasicSR as shipped) or float64 (MATLAB's double; protocol -f64)",
                   "impl": "auto (the faster where it runs: reference on a CPU, device elsewhere), device (batched "
                           "torch on the metric's device) or reference (BasicSR's numpy, per image, on the host; "
                           "the same numbers within 1e-12)"}
    fastest_impl = {"cpu": "reference"}

    def __init__(self, weights: str | None = None, precision: Precision = "float32", impl: Impl = "auto") -> None:
        super().__init__()
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        check_impl("niqe", impl)
        if precision == "float64" and impl == "reference":
            raise ValueError("niqe: impl=reference is BasicSR's float32 numpy code; precision=float64 has no "
                             "reference path (drop impl or precision)")
        self.precision, self.impl = precision, impl
        if precision == "float64":
            self.protocol = "basicsr-niqe-y-f64"
        try:
            path = resolve(WEIGHTS_NAME, weights)
        except MissingWeightsError as exc:
            raise MetricUnavailable(str(exc)) from exc
        params = load_pris_params(path)
        for k, v in params.items():
            self.register_buffer(k, v, persistent=False)

    def impl_on(self, device_type: str) -> str:
        if self.precision == "float64":  # one path: the batched float64 torch arithmetic
            return "device"
        return str(super().impl_on(device_type))

    @property
    def runs_on_host(self) -> bool:  # type: ignore[override]
        """BasicSR's numpy arithmetic, image by image, where the metric is (the engine's host pool takes it)."""
        return self.active_impl == "reference"

    def reference_options(self) -> dict[str, str]:
        return {"impl": "reference"} if self.precision == "float32" else {}  # BasicSR's numpy, per image

    def score(self, pred: torch.Tensor, gt: torch.Tensor | None = None) -> torch.Tensor:
        check_images(pred, "pred")
        _check_size(*pred.shape[-2:])
        y = rgb_to_y(pred).round()  # BasicSR: `img.round()` "for consistency with MATLAB"
        params = {k: getattr(self, k) for k in ("mu_pris_param", "cov_pris_param", "gaussian_window")}
        if self.precision == "float64":
            return niqe_score(y, params)
        if self.impl_on(pred.device.type) == "device":
            return niqe_basicsr_batched(y, params["mu_pris_param"], params["cov_pris_param"],
                                        params["gaussian_window"])
        np_params = [params[k].cpu().numpy() for k in ("mu_pris_param", "cov_pris_param", "gaussian_window")]
        out = []
        for img in y[:, 0].cpu().numpy().astype(np.float32):
            try:
                out.append(niqe_basicsr(img, *np_params))
            except np.linalg.LinAlgError:  # no block without NaN features (flat image): BasicSR raises here
                out.append(float("nan"))
        return torch.tensor(out, dtype=torch.float64, device=pred.device)


def _pyiqa_block_features(blocks: torch.Tensor) -> torch.Tensor:
    """pyiqa ``compute_feature`` of (N, 1, h, w) MSCN blocks: (N, 18)."""
    alpha, ls, rs = pq.aggd(blocks)
    bl, br = pq.aggd_beta(alpha, ls), pq.aggd_beta(alpha, rs)
    feats = [alpha, (bl + br) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        alpha, ls, rs = pq.aggd(blocks * torch.roll(blocks, shift, dims=(2, 3)))
        bl, br = pq.aggd_beta(alpha, ls), pq.aggd_beta(alpha, rs)
        feats += [alpha, (br - bl) * (torch.lgamma(2 / alpha) - torch.lgamma(1 / alpha)).exp(), bl, br]
    return torch.cat([f.reshape(blocks.shape[0], 1) for f in feats], dim=-1)


def _blocks(x: torch.Tensor, size: int) -> torch.Tensor:
    """pyiqa ``blockproc`` order of (1, 1, H, W): (nw * nh, 1, size, size), column-major blocks."""
    nh, nw = x.shape[-2] // size, x.shape[-1] // size
    b = F.unfold(x, size, stride=size).reshape(1, 1, size, size, nh, nw)
    return b.permute(5, 4, 0, 1, 2, 3).reshape(nh * nw, 1, size, size)


def niqe_pyiqa(x: torch.Tensor, mu_pris: torch.Tensor, cov_pris: torch.Tensor) -> float:
    """pyiqa 0.1.16 ``calculate_niqe(x, 0, True, 'yiq', ...)`` of one (1, 3, H, W) float32 image."""
    img = pq.yiq_y(x, 255.0).round().to(torch.float64)
    h, w = img.shape[-2:]
    img = img[..., : (h // BLOCK) * BLOCK, : (w // BLOCK) * BLOCK]
    feats = []
    for scale in (1, 2):
        feats.append(_pyiqa_block_features(_blocks(pq.mscn(img, "replicate"), BLOCK // scale)))
        if scale == 1:
            img = pq.imresize_half(img / 255.0) * 255.0
    dist = torch.cat(feats, -1)[None]  # (1, blocks, 36), pyiqa's batch layout
    nan = torch.isnan(dist)
    mu_d = torch.where(nan, 0.0, dist).sum(dim=1) / (~nan).float().sum(dim=1)
    rows = dist[0][~nan[0].any(dim=1)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # no row without NaN (flat image): NaN, as pyiqa
        cov_d = torch.cov(rows.t(), correction=1 if rows.shape[0] > 1 else 0)[None]
    mu_p, cov_p = mu_pris.to(dist).repeat(1, 1), cov_pris.to(dist).repeat(1, 1, 1)
    inv = torch.linalg.pinv((cov_p + cov_d) / 2)
    diff = (mu_p - mu_d).unsqueeze(1)
    return float(torch.sqrt(torch.bmm(torch.bmm(diff, inv), diff.transpose(1, 2)).squeeze()))


@METRICS.register
class NIQEPyiqa(MeanOfImages):
    """pyiqa 0.1.16's default ``niqe`` (Y of YIQ), as NTIRE's face restoration eval runs it; lower is better."""

    name = "niqe-pyiqa"
    weights = (WEIGHTS_NAME,)
    description = "NIQE as pyiqa 0.1.16's default niqe (Y of YIQ), the NTIRE face restoration challenge's NIQE"
    higher_better = False
    needs_gt = False
    protocol = "pyiqa-0.1.16-niqe-yiq"

    def __init__(self, weights: str | None = None) -> None:
        super().__init__()
        try:
            path = resolve(WEIGHTS_NAME, weights)
        except MissingWeightsError as exc:
            raise MetricUnavailable(str(exc)) from exc
        params = load_pris_params(path)
        self.register_buffer("mu_pris_param", params["mu_pris_param"], persistent=False)
        self.register_buffer("cov_pris_param", params["cov_pris_param"], persistent=False)

    runs_on_host = True

    def score(self, pred: torch.Tensor, gt: torch.Tensor | None = None) -> torch.Tensor:
        check_images(pred, "pred")
        _check_size(*pred.shape[-2:])
        x = pq.uint8_float(pred.detach().cpu())
        mu, cov = self.mu_pris_param.cpu(), self.cov_pris_param.cpu()
        out = []
        with pq.stock_cpu():
            for i in range(x.shape[0]):
                try:
                    out.append(niqe_pyiqa(x[i:i + 1], mu, cov))
                except torch.linalg.LinAlgError:
                    out.append(float("nan"))
        return torch.tensor(out, dtype=torch.float64, device=pred.device)




__all__ = ["NIQE", "NIQEPyiqa", "niqe_pyiqa", "niqe_score", "load_pris_params", "block_features", "WEIGHTS_NAME"]
