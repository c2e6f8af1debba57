"""BasicSR 1.4.2's own PSNR / SSIM and the image pairs they are compared on (the test and the tolerance script).

``basicsr_psnr_ssim()`` imports ``basicsr/metrics/psnr_ssim.py`` (with its ``metric_util`` and ``color_util``)
from the PyPI sdist through :mod:`tests._helpers.official_refs` (never installed). ``stock_value`` feeds it what
the papers' scripts feed it: ``cv2.imread``'s BGR uint8 images. ``pairs`` builds (name, restored-like, GT)
from the classic-metric reference images.
"""
from __future__ import annotations

from types import ModuleType

import numpy as np

from tests._helpers.official_refs import StubRegistry, load_official_module

STOCK = "basicsr==1.4.2"


def basicsr_psnr_ssim() -> ModuleType:
    """BasicSR 1.4.2's ``basicsr.metrics.psnr_ssim`` (registry stubbed; its colour code is its own)."""
    colour = load_official_module(STOCK, "basicsr/utils/color_util.py")
    util = load_official_module(STOCK, "basicsr/metrics/metric_util.py", {"basicsr.utils": {"bgr2ycbcr": colour.bgr2ycbcr}})
    return load_official_module(STOCK, "basicsr/metrics/psnr_ssim.py", {
        "basicsr.metrics.metric_util": util, "basicsr.utils.color_util": colour,
        "basicsr.utils.registry": {"METRIC_REGISTRY": StubRegistry()}})


def stock_value(mod: ModuleType, metric: str, pred: np.ndarray, gt: np.ndarray, y: bool, crop: int = 0) -> float:
    """``calculate_psnr`` / ``calculate_ssim`` of two RGB uint8 images, given to BasicSR as BGR."""
    fn = mod.calculate_psnr if metric == "psnr" else mod.calculate_ssim
    return float(fn(np.ascontiguousarray(pred[..., ::-1]), np.ascontiguousarray(gt[..., ::-1]), crop, test_y_channel=y))


def pairs(images: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, restored-like RGB uint8, GT RGB uint8): each face's LQ against its GT; variants and edge images
    against a seeded noisy copy of themselves."""
    rng = np.random.default_rng(7)
    out = []
    for name, gt in sorted(images.items()):
        if name.endswith("_lq"):
            continue
        other = images.get(f"{name.rsplit('_', 1)[0]}_lq") if name.endswith("_gt") else None
        if other is None:
            other = np.clip(gt.astype(np.int64) + rng.integers(-15, 16, gt.shape), 0, 255).astype(np.uint8)
        out.append((name, other, gt))
    return out
