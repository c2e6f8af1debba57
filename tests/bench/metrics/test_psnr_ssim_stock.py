"""PSNR / SSIM against BasicSR 1.4.2's own ``calculate_psnr`` / ``calculate_ssim``, run on the same machine.

BasicSR's ``basicsr/metrics/psnr_ssim.py`` (with its ``metric_util`` and ``color_util``) is imported from
the PyPI sdist through ``tests/_helpers/official_refs.py`` (downloaded into the test cache, never
installed) and fed what the papers' scripts feed it: ``cv2.imread``'s BGR uint8 images. The pairs are
the classic-metric reference images (``tests/fixtures/metrics_classic/images.py``: real demo faces as GT
and LQ, their blurred / noisy / blocky / posterised versions, flat, small and odd-sized crops).

Measured on 2026-12-07 over all 52 pairs, RGB and Y (``python scripts/measure_tolerances.py psnr-ssim``):
``impl='reference'`` equal to BasicSR in every value; the batched torch path (``impl='device'``) off by at
most 8.0e-14 (SSIM) and 2.1e-16 (PSNR) relative, with 104 of 104 SSIM values and 3 of 104 PSNR values not
bit-equal.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import bench
from tests._helpers import psnr_ssim_stock as stock

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "metrics_classic"
#: the device path's largest relative distance from BasicSR (measured above, with a margin of about 2x)
DEVICE_TOL = {"psnr": 4e-16, "ssim": 2e-13}


@pytest.fixture(scope="module")
def basicsr_metrics():
    return stock.basicsr_psnr_ssim()


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """(name, restored-like RGB uint8, GT RGB uint8) for every reference image."""
    spec = importlib.util.spec_from_file_location("metrics_classic_images", FIX / "images.py")
    images = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(images)
    out = stock.pairs(images.make_images(tmp_path_factory.mktemp("psnr_ssim_data")))
    assert len(out) >= 50
    return out


def _tensor(rgb) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0


_stock = stock.stock_value


@pytest.mark.parametrize("y", [False, True], ids=["rgb", "y"])
def test_reference_path_is_basicsr_to_the_last_bit(basicsr_metrics, pairs, y):
    """Every pair, both metrics: ``impl='reference'`` (what ``auto`` runs on a CPU) gives BasicSR's value."""
    for metric in ("psnr", "ssim"):
        m = bench.create_metric(metric, test_y_channel=y)
        assert m.active_impl == "reference"
        for name, pred, gt in pairs:
            got = m(_tensor(pred), _tensor(gt)).item()
            assert got == _stock(basicsr_metrics, metric, pred, gt, y), (metric, name)


def test_device_path_within_its_tolerance(basicsr_metrics, pairs):
    worst = {"psnr": 0.0, "ssim": 0.0}
    for metric in worst:
        for y in (False, True):
            m = bench.create_metric(metric, test_y_channel=y, impl="device")
            assert m.active_impl == "device"
            for _, pred, gt in pairs[::6]:
                want = _stock(basicsr_metrics, metric, pred, gt, y)
                worst[metric] = max(worst[metric], abs(m(_tensor(pred), _tensor(gt)).item() - want) / abs(want))
    assert worst["ssim"] < DEVICE_TOL["ssim"] and worst["psnr"] < DEVICE_TOL["psnr"], worst
    assert worst["ssim"] > 0  # a different summation (separable torch vs OpenCV's 2-D filter): not the same bits


def test_reference_path_with_crop_border_and_in_a_batch(basicsr_metrics, pairs):
    """Cropped as BasicSR crops; a batch of faces gives each face's own value (no batch dependence)."""
    faces = [(p, g) for name, p, g in pairs if name.endswith("_gt")][:4]
    pred = torch.cat([_tensor(p) for p, _ in faces])
    gt = torch.cat([_tensor(g) for _, g in faces])
    for metric in ("psnr", "ssim"):
        m = bench.create_metric(metric, crop_border=4, test_y_channel=True)
        got = m(pred, gt).tolist()
        assert got == [_stock(basicsr_metrics, metric, p, g, True, crop=4) for p, g in faces], metric


def test_identical_images_and_the_impl_choice():
    x = torch.rand(2, 3, 32, 32).mul(255).round().div(255)
    assert bench.create_metric("psnr")(x, x).tolist() == [float("inf")] * 2
    assert bench.create_metric("ssim")(x, x).tolist() == [1.0, 1.0]
    m = bench.create_metric("ssim-y")
    assert (m.impl_on("cpu"), m.impl_on("cuda"), m.reference_options()) == ("reference", "device", {"impl": "reference"})
    assert bench.create_metric("ssim", impl="device").impl_on("cpu") == "device"


@pytest.mark.parametrize("impl", ["reference", "device"])
def test_bad_input_gives_the_same_error_on_both_paths(impl):
    m = bench.create_metric("ssim", impl=impl)
    with pytest.raises(ValueError, match="at least 11x11"):
        m.score(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="shapes differ"):
        bench.create_metric("psnr", impl=impl).score(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 17))
    with pytest.raises(ValueError, match="impl must be one of"):
        bench.create_metric("ssim", impl="cv2")
