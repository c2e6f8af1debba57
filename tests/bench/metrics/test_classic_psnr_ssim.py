"""PSNR / SSIM (RGB and Y) against independent numpy versions of BasicSR's published formulas."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import torch

import bench
from bench.core.errors import UserError
from bench.core.registry import METRICS
from bench.metrics.psnr_ssim import PSNR, PSNRY, SSIM, SSIMY, psnr, ssim


# ---- independent numpy references (BasicSR conventions, written from the formulas) ----------
def ref_y(rgb: np.ndarray) -> np.ndarray:
    """BasicSR to_y_channel on an RGB uint8 image: float32 in, float32 out, times 255."""
    img = rgb.astype(np.float32) / 255.0
    y = np.dot(img.astype(np.float64), [65.481, 128.553, 24.966]) + 16.0
    return (((y / 255.0).astype(np.float32)) * np.float32(255.0)).astype(np.float64)[..., None]


def ref_psnr(a: np.ndarray, b: np.ndarray, y: bool) -> float:
    a, b = (ref_y(a), ref_y(b)) if y else (a.astype(np.float64), b.astype(np.float64))
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def ref_ssim(a: np.ndarray, b: np.ndarray, y: bool) -> float:
    a, b = (ref_y(a), ref_y(b)) if y else (a.astype(np.float64), b.astype(np.float64))
    r = np.arange(11) - 5.0
    g = np.exp(-(r**2) / (2 * 1.5**2))
    win = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def filt(x: np.ndarray) -> np.ndarray:  # 'valid': drop the 5-pixel border the window overhangs
        return scipy.ndimage.correlate(x, win, mode="constant")[5:-5, 5:-5]

    vals = []
    for c in range(a.shape[2]):
        x, z = a[..., c], b[..., c]
        m1, m2 = filt(x), filt(z)
        s1, s2, s12 = filt(x * x) - m1**2, filt(z * z) - m2**2, filt(x * z) - m1 * m2
        vals.append((((2 * m1 * m2 + c1) * (2 * s12 + c2)) / ((m1**2 + m2**2 + c1) * (s1 + s2 + c2))).mean())
    return float(np.mean(vals))


def to_tensor(*imgs: np.ndarray) -> torch.Tensor:
    return torch.stack([torch.from_numpy(i).permute(2, 0, 1) for i in imgs]).float() / 255.0


def degraded_astronaut() -> tuple[np.ndarray, np.ndarray]:
    import skimage.data
    import skimage.filters

    gt = skimage.data.astronaut()
    rng = np.random.default_rng(3)
    blur = skimage.filters.gaussian(gt, sigma=1.5, channel_axis=-1, preserve_range=True)
    lq = np.clip(np.round(blur + rng.normal(0, 6, gt.shape)), 0, 255).astype(np.uint8)
    return lq, gt


@pytest.mark.parametrize("y", [False, True])
def test_random_images_match_reference(rng, y):
    shapes = [(37, 53), (64, 64), (96, 80)]
    for h, w in shapes:
        a = rng.integers(0, 256, (3, h, w, 3), dtype=np.uint8)
        b = np.clip(a.astype(int) + rng.integers(-30, 31, a.shape), 0, 255).astype(np.uint8)
        got_p = psnr(to_tensor(*a), to_tensor(*b), y_channel=y).numpy()
        got_s = ssim(to_tensor(*a), to_tensor(*b), y_channel=y).numpy()
        for i in range(3):
            assert got_p[i] == pytest.approx(ref_psnr(a[i], b[i], y), rel=1e-6)
            assert got_s[i] == pytest.approx(ref_ssim(a[i], b[i], y), rel=1e-6)


@pytest.mark.parametrize("y", [False, True])
def test_real_image_matches_reference_and_skimage(y):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    lq, gt = degraded_astronaut()
    p = psnr(to_tensor(lq), to_tensor(gt), y_channel=y).item()
    s = ssim(to_tensor(lq), to_tensor(gt), y_channel=y).item()
    assert p == pytest.approx(ref_psnr(lq, gt, y), rel=1e-6)
    assert s == pytest.approx(ref_ssim(lq, gt, y), rel=1e-6)
    assert 20 < p < 40 and 0.3 < s < 0.99  # a real degradation, not a degenerate case
    # skimage with the same convention: 11x11 Gaussian (sigma 1.5, truncate 3.5), population
    # covariance, 'valid' region (skimage crops the 5-pixel border), channels averaged
    a, b = (ref_y(lq), ref_y(gt)) if y else (lq.astype(np.float64), gt.astype(np.float64))
    assert p == pytest.approx(peak_signal_noise_ratio(b, a, data_range=255), rel=1e-6)
    sk = structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5,
                               use_sample_covariance=False, channel_axis=-1)
    assert s == pytest.approx(sk, rel=1e-6)


def test_y_channel_differs_from_rgb_and_grey_conversions():
    lq, gt = degraded_astronaut()
    rgb = psnr(to_tensor(lq), to_tensor(gt)).item()
    y = psnr(to_tensor(lq), to_tensor(gt), y_channel=True).item()
    assert abs(rgb - y) > 0.1  # catches a y_channel flag that is ignored


def test_identical_images():
    x = to_tensor(degraded_astronaut()[1])
    assert psnr(x, x).item() == float("inf")
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-12)


def test_batch_equals_single_and_state_merges(rng):
    a = rng.integers(0, 256, (4, 32, 40, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (4, 32, 40, 3), dtype=np.uint8)
    for cls in (PSNR, PSNRY, SSIM, SSIMY):
        whole = cls()
        vals = whole.update(to_tensor(*a), to_tensor(*b))
        parts = [cls(), cls()]
        v0 = parts[0].update(to_tensor(*a[:1]), to_tensor(*b[:1]))
        v1 = parts[1].update(to_tensor(*a[1:]), to_tensor(*b[1:]))
        torch.testing.assert_close(torch.cat([v0, v1]), vals, rtol=1e-12, atol=0)
        parts[0].merge_state(parts[1].state())
        assert parts[0].compute() == pytest.approx(whole.compute(), rel=1e-12)
        assert whole.compute() == pytest.approx(float(vals.mean()), rel=1e-12)


def test_bad_input_errors():
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(x, torch.rand(1, 3, 32, 31))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        ssim(x[:, :1], x[:, :1])
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="needs ground truth"):
        PSNR().update(x)


def test_registry_entries():
    bench.list_metrics()  # loads the plugins
    for name, protocol in (("psnr", "basicsr-rgb-crop0"), ("psnr-y", "basicsr-y-crop0"),
                           ("ssim", "basicsr-rgb-crop0"), ("ssim-y", "basicsr-y-crop0")):
        e = METRICS.entry(name)
        assert e.higher_better and e.needs_gt and e.standard and e.protocol == protocol
        assert e.available() == (True, "")
        m = bench.create_metric(name)
        assert m.name == name and m.protocol == protocol
    # BasicSR's options are accepted and named in the protocol; unknown ones are refused
    assert METRICS.create("psnr", crop_border=4).protocol == "basicsr-rgb-crop4"
    assert METRICS.create("ssim-y", crop_border=2).protocol == "basicsr-y-crop2"
    with pytest.raises(UserError, match="has no option 'border'"):
        METRICS.create("psnr", border=4)
