"""Degradation presets: ranges, reproducibility per image, parity with BasicSR, torch variant."""
from __future__ import annotations

import importlib.util
import math
import sys
import types

import cv2
import numpy as np
import pytest

from bench.data.degrade import (
    PRESETS,
    DegradationParams,
    DegradationPreset,
    apply_degradation,
    degrade,
    degrade_batch,
    degrade_named,
    degrade_with_params,
    gaussian_kernel,
    get_preset,
    rng_for,
    sample_params,
)


def _face(size: int = 512, seed: int = 0) -> np.ndarray:
    """A smooth synthetic RGB image with edges (enough structure for blur/JPEG to matter)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.stack([128 + 100 * np.sin(6 * xx + c) * np.cos(4 * yy - c) for c in range(3)], -1)
    img += rng.normal(0, 10, img.shape)
    cv2.circle(img, (size // 2, size // 2), size // 4, (250, 200, 30), -1)
    return np.clip(img, 0, 255).astype(np.uint8)


EXPECTED_RANGES = {
    # preset: (blur sigma, downsample, noise (of 255), JPEG quality) as the papers/configs give them
    "celeba-test": ((0.1, 10), (0.8, 8), (0, 20), (60, 100)),
    "codeformer-large": ((1, 15), (4, 30), (0, 20), (30, 80)),
    "codeformer-small": ((0.1, 10), (1, 12), (0, 15), (60, 100)),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_RANGES))
def test_preset_ranges_and_draws(name: str) -> None:
    p = get_preset(name)
    sig, down, noise, jpeg = EXPECTED_RANGES[name]
    assert (p.blur_sigma, p.downsample_range, p.noise_range, p.jpeg_range) == (sig, down, noise, jpeg)
    assert p.blur_kernel_size == 41 and p.kernel_list == ("iso", "aniso") and p.kernel_prob == (0.5, 0.5)
    rng = np.random.default_rng(1)
    draws = [sample_params(p, rng) for _ in range(2000)]
    kinds = [d.kernel_type for d in draws]
    assert 0.45 < kinds.count("iso") / len(kinds) < 0.55
    for d in draws:
        assert sig[0] <= d.sigma_x <= sig[1]
        if d.kernel_type == "aniso":
            assert sig[0] <= d.sigma_y <= sig[1] and -math.pi <= d.theta <= math.pi
        else:
            assert d.sigma_y is None and d.theta == 0.0
        assert down[0] <= d.scale <= down[1]
        assert noise[0] <= d.noise_sigma <= noise[1]
        assert isinstance(d.jpeg_quality, int) and jpeg[0] <= d.jpeg_quality <= jpeg[1]
    # the draws cover the ranges (not stuck at one end)
    scales = np.array([d.scale for d in draws])
    assert scales.min() < down[0] + 0.05 * (down[1] - down[0]) and scales.max() > down[1] - 0.05 * (down[1] - down[0])


def test_kernel_properties() -> None:
    k = gaussian_kernel(41, 2.0)
    assert k.shape == (41, 41) and abs(k.sum() - 1) < 1e-12
    assert np.allclose(k, k.T) and np.allclose(k, k[::-1, ::-1]) and k.argmax() == 41 * 20 + 20
    # a rotated anisotropic kernel: rotating by pi/2 swaps the axes
    a = gaussian_kernel(41, 4.0, 1.0, 0.0)
    b = gaussian_kernel(41, 4.0, 1.0, math.pi / 2)
    assert np.allclose(a, b.T, atol=1e-12)
    assert a[20, 30] > a[30, 20]  # wide along x


def test_output_shape_dtype_and_degrades() -> None:
    hq = _face()
    for name in PRESETS:
        lq = degrade(hq, name, rng_for(3, "face.png"))
        assert lq.shape == hq.shape and lq.dtype == np.uint8
        assert np.abs(lq.astype(int) - hq).mean() > 3  # something happened
    with pytest.raises(ValueError, match="unknown degradation preset"):
        degrade(hq, "nope", rng_for(0, "x"))
    with pytest.raises(ValueError, match="RGB uint8"):
        degrade(hq.astype(np.float32), "celeba-test", rng_for(0, "x"))


def test_rng_for_is_per_name_and_stable() -> None:
    a = rng_for(0, "00000001").random(4)
    assert np.array_equal(a, rng_for(0, "00000001").random(4))
    assert not np.array_equal(a, rng_for(0, "00000002").random(4))
    assert not np.array_equal(a, rng_for(1, "00000001").random(4))
    # the derivation (SHA-256 -> SeedSequence -> PCG64, all stable by specification) must not
    # change between releases or machines: a change would silently change every synthesised
    # benchmark (value recorded once, from the raw bit stream)
    assert rng_for(0, "00000001").bit_generator.random_raw() == 17984213961622480159


def test_one_image_alone_equals_in_a_set() -> None:
    """Any image's LQ depends only on (seed, name), not on order or on the other images."""
    faces = {f"{i:08d}": _face(128, seed=i) for i in range(5)}
    rng_shared_order = {n: degrade_named(img, "celeba-test", 7, n) for n, img in reversed(list(faces.items()))}
    alone = degrade_named(faces["00000003"], "celeba-test", 7, "00000003")
    assert np.array_equal(alone, rng_shared_order["00000003"])
    # and a different seed gives a different image
    assert not np.array_equal(alone, degrade_named(faces["00000003"], "celeba-test", 8, "00000003"))


def test_params_reproduce_the_image() -> None:
    hq = _face(256)
    lq, params = degrade_with_params(hq, "codeformer-large", rng_for(1, "a"))
    rng = rng_for(1, "a")
    replay = sample_params("codeformer-large", rng)
    assert replay == params
    assert np.array_equal(apply_degradation(hq, replay, rng), lq)
    d = params.to_dict()
    assert set(d) == {"kernel_type", "sigma_x", "sigma_y", "theta", "scale", "noise_sigma", "jpeg_quality"}


def test_custom_preset_without_noise_or_jpeg() -> None:
    p = DegradationPreset("blur-only", noise_range=None, jpeg_range=None, downsample_range=(1.0, 1.0001))
    hq = _face(128)
    lq, params = degrade_with_params(hq, p, np.random.default_rng(0))
    assert params.noise_sigma is None and params.jpeg_quality is None
    expected = cv2.filter2D(hq[:, :, ::-1].astype(np.float32) / 255, -1,
                            gaussian_kernel(41, params.sigma_x, params.sigma_y, params.theta))
    expected = cv2.resize(cv2.resize(expected, (127, 127), interpolation=cv2.INTER_LINEAR), (128, 128),
                          interpolation=cv2.INTER_LINEAR)
    expected = np.clip(np.round(expected * 255), 0, 255).astype(np.uint8)[:, :, ::-1]
    assert np.array_equal(lq, expected)


def test_degrade_batch_torch_matches_numpy_closely() -> None:
    torch = pytest.importorskip("torch")
    p = DegradationPreset("no-jpeg", noise_range=None, jpeg_range=None)
    hq = np.stack([_face(128, s) for s in range(3)])
    x = torch.from_numpy(hq).permute(0, 3, 1, 2).float() / 255
    out = degrade_batch(x, p, np.random.default_rng(5))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    rng = np.random.default_rng(5)
    for i in range(3):  # same generator order: params of sample i drawn i-th
        ref = degrade(hq[i], p, rng)
        got = (out[i].permute(1, 2, 0).numpy() * 255).round().astype(int)
        diff = np.abs(got - ref.astype(int))
        assert diff.mean() < 0.6 and diff.max() <= 3, (diff.mean(), diff.max())
    full = degrade_batch(x, "celeba-test", np.random.default_rng(0))
    assert full.shape == x.shape


# ----------------------------------------------------------------------------- parity (network)
BASICSR = dict(
    registry="pypi", requirement="basicsr==1.4.2", member="basicsr-1.4.2/basicsr/data/degradations.py",
    sha256="b78e36137ff8e4d783779b5ed611fcf80305633c492ac494ee52b213806f2d83", sdist=True,
)


@pytest.fixture(scope="module")
def basicsr_degradations():
    """BasicSR 1.4.2's degradations.py from its PyPI sdist (imported with its torchvision import stubbed)."""
    from bench.weights import PackageFile, fetch_files

    spec = PackageFile(**BASICSR)
    path = fetch_files([spec])[spec]
    stub = types.ModuleType("torchvision.transforms.functional_tensor")
    stub.rgb_to_grayscale = None
    saved = sys.modules.get(stub.__name__)
    sys.modules[stub.__name__] = stub
    try:
        mspec = importlib.util.spec_from_file_location("basicsr_degradations_ref", path)
        mod = importlib.util.module_from_spec(mspec)
        mspec.loader.exec_module(mod)
    finally:
        if saved is None:
            sys.modules.pop(stub.__name__, None)
        else:
            sys.modules[stub.__name__] = saved
    return mod


@pytest.mark.network
@pytest.mark.parametrize(
    "params",
    [
        DegradationParams("aniso", 3.3, 0.7, 1.1, 3.7, 12.5, 71),
        DegradationParams("iso", 0.4, None, 0.0, 0.85, 19.0, 99),
        DegradationParams("iso", 9.9, None, 0.0, 7.9, 0.5, 60),
    ],
)
def test_bit_exact_with_gfpgan_pipeline(basicsr_degradations, params: DegradationParams) -> None:
    """GFPGAN's FFHQDegradationDataset steps with BasicSR's functions == apply_degradation, bit for bit."""
    D = basicsr_degradations
    hq = _face(512, seed=2)
    img = hq[:, :, ::-1].astype(np.float32) / 255.0
    h, w = img.shape[:2]
    k = D.bivariate_Gaussian(41, params.sigma_x, params.sigma_y or params.sigma_x, params.theta,
                             isotropic=params.kernel_type == "iso")
    k = k / np.sum(k)  # random_bivariate_Gaussian's second normalisation
    x = cv2.filter2D(img, -1, k)
    x = cv2.resize(x, (int(w // params.scale), int(h // params.scale)), interpolation=cv2.INTER_LINEAR)
    np.random.seed(11)
    x = D.add_gaussian_noise(x, params.noise_sigma)
    np.random.seed(11)
    field = np.float32(np.random.randn(*x.shape))
    x = D.add_jpg_compression(x, params.jpeg_quality)
    x = cv2.resize(x, (w, h), interpolation=cv2.INTER_LINEAR)
    ref = np.clip((x * 255.0).round(), 0, 255).astype(np.uint8)[:, :, ::-1]

    class FixedField:
        def standard_normal(self, shape, dtype=None):
            assert tuple(shape) == field.shape
            return field

    assert np.array_equal(apply_degradation(hq, params, FixedField()), ref)


@pytest.mark.network
def test_kernels_equal_basicsr(basicsr_degradations) -> None:
    D = basicsr_degradations
    for sx, sy, th in [(0.1, 0.1, 0.0), (2.5, 2.5, 0.0), (10.0, 10.0, 0.0)]:
        ref = D.bivariate_Gaussian(41, sx, sy, th, isotropic=True)
        assert np.array_equal(gaussian_kernel(41, sx), ref / ref.sum())
    for sx, sy, th in [(3.3, 0.7, 1.1), (0.2, 9.0, -2.9), (14.0, 1.0, 0.3)]:
        ref = D.bivariate_Gaussian(41, sx, sy, th, isotropic=False)
        assert np.array_equal(gaussian_kernel(41, sx, sy, th), ref / ref.sum())
