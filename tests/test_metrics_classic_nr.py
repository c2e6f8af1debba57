"""NIQE, BRISQUE and PIQE against stored reference values of BasicSR and pyiqa, plus their helpers.

``fixtures/metrics_classic/reference_values.json`` holds what BasicSR 1.4.2 and pyiqa 0.1.16
computed for ``images.make_images()`` (``make_reference.py`` says exactly how). The tight checks
use the float64 runs of those implementations; the float32 ones as shipped differ by up to a few
per cent, which the fixture keeps as a record of the "MATLAB vs Python NIQE" pitfall.
"""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import bench
from bench.core.registry import METRICS
from bench.metrics import MetricUnavailable
from bench.metrics._matlab import imresize, resize_matrix
from bench.metrics._nss import GAM, _tables, nearest_index
from bench.metrics.brisque import BRISQUE, load_libsvm_model
from bench.metrics.niqe import NIQE, load_pris_params
from bench.metrics.piqe import PIQE, piqe
from bench.weights import fetch

FIX = Path(__file__).parent / "fixtures" / "metrics_classic"
_spec = importlib.util.spec_from_file_location("metrics_classic_images", FIX / "images.py")
images = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(images)
REF = json.loads((FIX / "reference_values.json").read_text())

#: images whose large flat areas give MSCN values of +-1e-13 whose sign (and so NIQE's
#: left/right AGGD counts) depends on the last bit of the filtering: agreement is 1e-3 there
NIQE_FLAT = {"astronaut_poster8"}


@pytest.fixture(scope="module")
def imgs() -> dict[str, torch.Tensor]:
    out = {}
    for name, arr in images.make_images().items():
        assert images.sha256_image(arr) == REF["images"][name]["sha256"], (
            f"test image {name} differs from the one the reference values were computed on "
            "(scikit-image's bundled photo or numpy's Generator changed); regenerate "
            "tests/fixtures/metrics_classic/reference_values.json with make_reference.py"
        )
        out[name] = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255.0
    return out


def _fetched(name: str, home: Path) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BFRBENCH_HOME", str(home))
        return fetch(name, quiet=True)


@pytest.fixture(scope="module")
def niqe_params(bfrbench_home) -> Path:
    return _fetched("niqe-pris-params", bfrbench_home)


@pytest.fixture(scope="module")
def brisque_model(bfrbench_home) -> Path:
    return _fetched("brisque-live-allmodel", bfrbench_home)


# ---- reference values ------------------------------------------------------------------------
@pytest.mark.network
def test_niqe_matches_basicsr_and_pyiqa(imgs, niqe_params):
    metric = NIQE(weights=str(niqe_params))
    for name, x in imgs.items():
        got = metric.update(x).item()
        ref = REF["images"][name]["niqe"]
        tol = 2e-3 if name in NIQE_FLAT else 1e-9
        assert got == pytest.approx(ref["basicsr_f64"], rel=tol), name
        assert got == pytest.approx(ref["pyiqa_f64_ycbcr"], rel=max(tol, 2e-4)), name  # pyiqa's own Y
        # BasicSR as shipped (float32) is the same metric up to its rounding noise
        assert got == pytest.approx(ref["basicsr_f32"], rel=0.08), name


@pytest.mark.network
def test_brisque_matches_pyiqa(imgs, brisque_model):
    metric = BRISQUE(weights=str(brisque_model))
    for name, x in imgs.items():
        got = metric.update(x).item()
        ref = REF["images"][name]["brisque"]
        assert got == pytest.approx(ref["pyiqa_f64_gray"], rel=1e-9), name
        # pyiqa as shipped: Y of YIQ instead of MATLAB rgb2gray, float32
        assert got == pytest.approx(ref["pyiqa_default_yiq"], rel=0.03), name


def test_piqe_matches_pyiqa(imgs):
    metric = PIQE()
    for name, x in imgs.items():
        got = metric.update(x).item()
        ref = REF["images"][name]["piqe"]
        assert got == pytest.approx(ref["pyiqa_f64"], rel=1e-9), name
        assert got == pytest.approx(ref["pyiqa_default"], rel=5e-3), name


def test_piqe_orders_degradations(imgs):
    """PIQE ranks the clean photo above its blurred and blocky versions."""
    p = {n: piqe(x).item() for n, x in imgs.items()}
    assert p["astronaut"] < p["astronaut_block4"] and p["astronaut"] < p["astronaut_box5"]


@pytest.mark.network
def test_batched_equals_single(imgs, niqe_params, brisque_model):
    batch = torch.cat([imgs["astronaut"], imgs["astronaut_box5"], imgs["astronaut_noise20"]])[..., :288, 96:384]
    for metric in (NIQE(weights=str(niqe_params)), BRISQUE(weights=str(brisque_model)), PIQE()):
        together = metric.score(batch)
        alone = torch.cat([metric.score(batch[i:i + 1]) for i in range(3)])
        torch.testing.assert_close(together, alone, rtol=1e-9, atol=0)  # BLAS paths differ by batch


# ---- helpers -----------------------------------------------------------------------------------
def test_nearest_index_is_argmin(rng):
    for table in _tables().values():
        inside = rng.uniform(table.min(), table.max(), 2000)
        vals = np.concatenate([inside, table[rng.integers(0, len(table), 50)],  # exact hits
                               (table[:-1] + table[1:])[:50] / 2,  # midpoints: ties
                               [table.min() - 1, table.max() + 1, np.nan]])
        got = nearest_index(table, torch.from_numpy(vals)).numpy()
        with np.errstate(invalid="ignore"):
            want = np.array([np.argmin(np.abs(table - v)) for v in vals])
        np.testing.assert_array_equal(got, want)
    assert len(GAM) == 9801 and GAM[0] == 0.2 and abs(GAM[-1] - 10) < 1e-9


def test_imresize_is_matlab_bicubic():
    """Values worked out by hand from MATLAB's imresize contributions (Keys cubic, a = -0.5).

    Shrinking by 0.5 with antialiasing: output 1 sits at input 1.5 (1-based) with weights
    0.5*cubic(0.5*d) at d = +-0.5, 1.5, 2.5, 3.5 = 0.43359375, 0.11328125, -0.03515625,
    -0.01171875; MATLAB's symmetric border reads inputs -2, -1, 0 as 3, 2, 1. On the ramp 1:32
    that is 1.44921875; inside, the symmetric kernel reproduces the ramp (input 2i - 0.5).
    Doubling (no antialiasing): output 1 at input 0.75, weights cubic(1.75), cubic(0.75),
    cubic(0.25), cubic(1.25) on inputs -1, 0, 1, 2 read as 2, 1, 1, 2: 0.90625.
    """
    ramp = torch.arange(1.0, 33.0, dtype=torch.float64).view(1, 1, 32, 1).expand(1, 1, 32, 5)
    y = imresize(ramp, 0.5)
    assert y.shape == (1, 1, 16, 3)
    assert y[0, 0, 0, 0].item() == pytest.approx(1.44921875, abs=1e-13)
    assert y[0, 0, -1, 0].item() == pytest.approx(33 - 1.44921875, abs=1e-13)
    np.testing.assert_allclose(y[0, 0, 2:-2, 1].numpy(), np.arange(3, 15) * 2 - 0.5, atol=1e-12)
    up = imresize(ramp[..., :8, :], 2.0, antialias=False)
    assert up.shape == (1, 1, 16, 10)
    assert up[0, 0, 0, 0].item() == pytest.approx(0.90625, abs=1e-13)
    for m in (resize_matrix(8, 4, 0.5, True), resize_matrix(8, 16, 2.0, False), resize_matrix(392, 196, 0.5, True)):
        np.testing.assert_allclose(m.sum(1), 1.0, atol=1e-14)


def test_pris_params_and_libsvm_errors(tmp_path):
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"broken\.npz.*bfrbench fetch niqe-pris-params"):
        load_pris_params(bad)
    model = tmp_path / "allmodel"
    model.write_text("svm_type epsilon_svr\nkernel_type rbf\ngamma 0.05\nnr_class 2\ntotal_sv 3\nrho -1\nSV\n"
                     "1 1:0.5 2:0.1\n-1 1:0.2\n")
    with pytest.raises(ValueError, match=r"3 support vectors, file has 2 .*bfrbench fetch brisque-live-allmodel"):
        load_libsvm_model(model)
    model.write_text("svm_type c_svc\nkernel_type linear\nSV\n1 1:0\n")
    with pytest.raises(ValueError, match="epsilon_svr"):
        load_libsvm_model(model)


def test_svr_prediction_by_hand(tmp_path):
    model = tmp_path / "m"
    model.write_text("svm_type epsilon_svr\nkernel_type rbf\ngamma 0.5\nnr_class 2\ntotal_sv 2\nrho -1.5\nSV\n"
                     "2 1:1 2:0\n-1 2:1\n")
    m = load_libsvm_model(model)
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    want = [2 * np.exp(-0.5) - np.exp(-0.5) + 1.5, 2 * np.exp(-0.5) - np.exp(-0.5) + 1.5]
    np.testing.assert_allclose(m.predict(x).numpy(), want, rtol=1e-14)


def test_missing_assets_make_metrics_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("BFRBENCH_HOME", str(tmp_path))
    monkeypatch.setenv("BFRBENCH_AUTO_FETCH", "0")  # else these PyPI assets are fetched on first use
    for cls, name in ((NIQE, "niqe-pris-params"), (BRISQUE, "brisque-live-allmodel")):
        with pytest.raises(MetricUnavailable, match=f"bfrbench fetch {name}"):
            cls()
        ok, reason = METRICS.entry(cls.name).available()
        assert not ok and name in reason


def test_registry_metadata():
    bench.list_metrics()
    for name, weights in (("niqe", ["niqe-pris-params"]), ("brisque", ["brisque-live-allmodel"]), ("piqe", [])):
        e = METRICS.entry(name)
        assert e.higher_better is False and e.needs_gt is False and e.standard
        assert e.weights == weights and e.protocol and e.description


def test_niqe_rejects_tiny_images():
    from bench.metrics._matlab import fspecial_gaussian
    from bench.metrics.niqe import niqe_score

    params = {"mu_pris_param": torch.zeros(36, dtype=torch.float64),
              "cov_pris_param": torch.eye(36, dtype=torch.float64),
              "gaussian_window": torch.from_numpy(fspecial_gaussian(7, 7 / 6))}
    with pytest.raises(ValueError, match="at least two 96x96 blocks"):
        niqe_score(torch.zeros(1, 1, 100, 150, dtype=torch.float64), params)
    assert np.isfinite(niqe_score(torch.rand(1, 1, 96, 192, dtype=torch.float64) * 255, params).item())


# ---- live cross-checks, when pyiqa is installed ----------------------------------------------
def _pyiqa_double_precision(monkeypatch) -> None:
    """Remove pyiqa 0.1.16's float32 casts and sqrt eps, as make_reference.py does."""
    fu = pytest.importorskip("pyiqa.archs.func_util")
    import pyiqa.matlab_utils as mu
    import pyiqa.matlab_utils.functions as fn
    import pyiqa.matlab_utils.resize as rs

    def fspecial64(size=None, sigma=None, channels=1, filter_type="gaussian"):
        m = (size - 1.0) / 2.0
        yy, xx = np.ogrid[-m:m + 1, -m:m + 1]
        h = np.exp(-(xx * xx + yy * yy) / (2.0 * sigma * sigma))
        h[h < np.finfo(h.dtype).eps * h.max()] = 0
        return torch.from_numpy(h / h.sum()).repeat(channels, 1, 1, 1)

    monkeypatch.setattr(rs, "cast_input", lambda x: (x, None))
    for mod in (fn, mu, fu):
        monkeypatch.setattr(mod, "fspecial", fspecial64)
    monkeypatch.setattr(fu, "safe_sqrt", torch.sqrt)
    torch.set_default_dtype(torch.float64)  # the gamma grids use torch.arange's default dtype


@pytest.mark.slow
def test_live_pyiqa_piqe_niqe_brisque(imgs, monkeypatch):
    pytest.importorskip("pyiqa")
    from pyiqa.archs.piqe_arch import piqe as pyiqa_piqe

    names = ["astronaut", "coffee_392x504"]
    old_dtype = torch.get_default_dtype()
    try:
        _pyiqa_double_precision(monkeypatch)
        for n in names:
            x = (imgs[n].double() * 255).round() / 255  # the uint8 image / 255 in double
            assert piqe(imgs[n]).item() == pytest.approx(pyiqa_piqe(x)[0].item(), rel=1e-9)
        npz = Path(os.environ["BFRBENCH_HOME"]) / "weights" / "niqe_pris_params.npz"
        if npz.is_file():
            from pyiqa.archs.niqe_arch import calculate_niqe

            p = load_pris_params(npz)
            metric = NIQE(weights=str(npz))
            for n in names:
                want = calculate_niqe((imgs[n].double() * 255).round() / 255, 0, True, "ycbcr", p["mu_pris_param"], p["cov_pris_param"])
                assert metric.score(imgs[n]).item() == pytest.approx(float(want), rel=1e-5)
        model = Path(os.environ["BFRBENCH_HOME"]) / "weights" / "brisque_live_allmodel"
        if model.is_file():
            import pyiqa.archs.brisque_arch as ba

            from bench.metrics._colour import rgb_to_gray_matlab

            svr = load_libsvm_model(model)
            monkeypatch.setattr(ba, "to_y_channel", lambda img, *a, **k: rgb_to_gray_matlab(img))
            metric = BRISQUE(weights=str(model))
            for n in names:
                want = ba.brisque(imgs[n].double(), sv_coef=torch.from_numpy(svr.coef), sv=torch.from_numpy(svr.sv))
                assert metric.score(imgs[n]).item() == pytest.approx(float(want), rel=1e-9)
    finally:
        torch.set_default_dtype(old_dtype)
