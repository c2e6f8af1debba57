"""FID: Frechet distance maths, parity with pytorch-fid, statistics files, caching and merging."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from bench.core.registry import METRICS
from bench.metrics import MetricUnavailable
from bench.metrics.fid import (
    FID,
    FIDGT,
    SQRTM_METHODS,
    extract_folder,
    folder_hash,
    folder_stats,
    frechet_distance,
    gaussian_stats,
    load_stats,
    save_stats,
    stats_cache_dir,
    trace_sqrt_product,
)
from bench.metrics.inception import FIDInceptionV3, basicsr_fid_input
from tests._helpers.learned_helpers import random_faces


def _spd(rng: np.random.Generator, d: int, rank: int | None = None) -> np.ndarray:
    a = rng.standard_normal((d, rank or d))
    return a @ a.T / (rank or d)


# ----------------------------------------------------------------------------- Frechet maths


def test_frechet_diagonal_closed_form(rng):
    d = 32
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    got = frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
    assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_commuting_rotated_closed_form(rng):
    """Same eigenbasis, rotated: the answer only depends on the eigenvalues."""
    d = 24
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    l1, l2 = rng.uniform(0.2, 2.0, d), rng.uniform(0.2, 2.0, d)
    s1, s2 = q @ np.diag(l1) @ q.T, q @ np.diag(l2) @ q.T
    mu = rng.standard_normal(d)
    expected = np.sum((np.sqrt(l1) - np.sqrt(l2)) ** 2)
    assert frechet_distance(mu, s1, mu, s2) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(mu, s1, mu, s1) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("sqrtm", SQRTM_METHODS)
@pytest.mark.parametrize("rank", [None, 10])
def test_frechet_matches_pytorch_fid(rng, rank, sqrtm):
    """Full-rank and singular (rank-deficient: the eps fallback path) covariances, both trace methods."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    d = 64
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d) * 0.5
    s1, s2 = _spd(rng, d, rank), _spd(rng, d, rank)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = calculate_frechet_distance(mu1, s1, mu2, s2)
        ours = frechet_distance(mu1, s1, mu2, s2, sqrtm=sqrtm)
    assert ours == pytest.approx(ref, rel=1e-6)


def _face_like_features(rng: np.random.Generator, n: int, d: int, basis: np.ndarray) -> np.ndarray:
    """Non-negative, correlated features like Inception pool3's (low-rank structure plus noise, ReLU)."""
    z = rng.standard_normal((n, basis.shape[1]))
    return np.maximum(z @ basis.T + 0.3 + 0.05 * rng.standard_normal((n, d)), 0.0)


@pytest.mark.parametrize("n", [96, 700])
def test_eigh_trace_matches_pytorch_fid_at_scale(rng, n):
    """512-d: a small set (rank-deficient, Gram form) and a set larger than the dimension (full eigh form)
    against full-rank reference statistics, as ``fid`` meets them; pytorch-fid's sqrtm is the reference."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    d = 512
    basis = rng.standard_normal((d, 48)) * 0.05
    ref_feats = _face_like_features(rng, 4000, d, basis)
    feats = _face_like_features(rng, n, d, basis * 1.2)
    mu2, s2 = gaussian_stats(ref_feats)
    mu1, s1 = gaussian_stats(feats)
    centred = torch.from_numpy(feats - mu1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = calculate_frechet_distance(mu1, s1, mu2, s2)
    ours = frechet_distance(mu1, s1, mu2, s2, centred1=centred)
    assert ref > 0.1
    assert ours == pytest.approx(ref, rel=1e-6)
    # the Gram form (n x n) and the full form (d x d) are the same number; the full form adds the square
    # roots of its d - n rounding-level eigenvalues (~1e-16 each: ~1e-8 each after the root), hence 1e-7
    full = float(trace_sqrt_product(torch.from_numpy(s1), torch.from_numpy(s2)))
    small = float(trace_sqrt_product(torch.from_numpy(s1), torch.from_numpy(s2), centred))
    assert small == pytest.approx(full, rel=1e-7)


def test_trace_sqrt_product_closed_form(rng):
    """Commuting covariances: Tr sqrt(S1 S2) is the sum of sqrt(l1 * l2) over the shared eigenbasis."""
    d = 16
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    l1, l2 = rng.uniform(0.1, 2.0, d), rng.uniform(0.1, 2.0, d)
    s1, s2 = torch.from_numpy(q @ np.diag(l1) @ q.T), torch.from_numpy(q @ np.diag(l2) @ q.T)
    assert float(trace_sqrt_product(s1, s2)) == pytest.approx(float(np.sum(np.sqrt(l1 * l2))), rel=1e-10)


def test_frechet_sqrtm_option_errors(inception_ckpt):
    with pytest.raises(ValueError, match="sqrtm must be one of"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(3), sqrtm="newton")
    with pytest.raises(ValueError, match="sqrtm must be one of"):
        FIDGT(weights=str(inception_ckpt[0]), sqrtm="svd")
    assert FIDGT(weights=str(inception_ckpt[0]), sqrtm="scipy").sqrtm == "scipy"


@pytest.mark.parametrize("sqrtm", SQRTM_METHODS)
def test_frechet_singular_uses_eps_fallback(sqrtm):
    """A zero covariance makes sqrtm of the product non-finite or exact; either way the answer is |dmu|^2 + tr."""
    d = 8
    s1 = np.zeros((d, d))
    s2 = np.eye(d) * 4.0
    mu1, mu2 = np.zeros(d), np.ones(d)
    got = frechet_distance(mu1, s1, mu2, s2, sqrtm=sqrtm)
    assert got == pytest.approx(d + 4.0 * d, rel=1e-4)


def test_frechet_shape_errors():
    with pytest.raises(ValueError, match="mean vectors"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="covariances"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4))


def test_gaussian_stats_float64_unbiased(rng):
    f = rng.standard_normal((50, 5)).astype(np.float32)
    mu, sigma = gaussian_stats(torch.from_numpy(f))
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    np.testing.assert_allclose(sigma, np.cov(f.astype(np.float64), rowvar=False), rtol=1e-12)
    with pytest.raises(ValueError, match="at least 2"):
        gaussian_stats(f[:1])


# ----------------------------------------------------------------------------- network parity


@pytest.fixture
def inception_ckpt(random_inception_ckpt):
    """Random FID-Inception weights (valid BatchNorm statistics) saved as a checkpoint (once per session)."""
    return random_inception_ckpt


def _pytorch_fid_model(state, monkeypatch):
    import pytorch_fid.inception as pfi

    monkeypatch.setattr(pfi, "load_state_dict_from_url", lambda *a, **k: {k2: v.clone() for k2, v in state.items()})
    return pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()


def test_inception_matches_pytorch_fid(inception_ckpt, monkeypatch):
    """Same random weights in pytorch-fid's InceptionV3 (strict load) and ours: pool3 features agree."""
    path, state = inception_ckpt
    ref = _pytorch_fid_model(state, monkeypatch)  # its fid_inception_v3 loads our state strictly
    ours = FIDInceptionV3()
    ours.load_state_dict(torch.load(path, weights_only=True), strict=True)
    ours.eval()
    x = random_faces(3, 96, seed=1)
    with torch.no_grad():
        a = ours(basicsr_fid_input(x))
        b = ref(x)[0].flatten(1)  # pytorch-fid: [0,1] input, resize 299, 2x-1
    assert a.shape == (3, 2048)
    assert a.abs().mean() > 1e-3  # the random network is not degenerate
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_basicsr_input_is_resize_of_minus1_1(inception_ckpt):
    x = random_faces(1, 40, seed=2)
    y = basicsr_fid_input(x)
    assert y.shape == (1, 3, 299, 299)
    assert y.min() >= -1 and y.max() <= 1
    ref = torch.nn.functional.interpolate(x * 2 - 1, size=(299, 299), mode="bilinear", align_corners=False)
    torch.testing.assert_close(y, ref, atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------- statistics files


def _basicsr_stats_file(path, mu, sigma, legacy=False, numpy1_names=False):
    """A torch.save of numpy arrays as VQFR's inception_stat.py writes it (optionally numpy-1.x names)."""
    obj = {"name": "FFHQ", "size": 512, "mean": mu, "cov": sigma}
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
    data = buf.getvalue()
    if numpy1_names:
        assert legacy
        data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
        assert b"numpy.core.multiarray" in data
    path.write_bytes(data)


@pytest.mark.parametrize("legacy,numpy1", [(False, False), (True, False), (True, True)])
def test_load_stats_basicsr_numpy_pickle(tmp_path, rng, legacy, numpy1):
    mu, sigma = rng.standard_normal(16), _spd(rng, 16)
    p = tmp_path / "inception_FFHQ_512.pth"
    _basicsr_stats_file(p, mu, sigma, legacy, numpy1)
    before = set(map(str, torch.serialization.get_safe_globals()))
    m2, s2 = load_stats(p)
    np.testing.assert_array_equal(m2, mu)
    np.testing.assert_array_equal(s2, sigma)
    # the numpy globals were allowed for that one load only
    assert set(map(str, torch.serialization.get_safe_globals())) == before


def test_load_stats_without_scoped_allowlist_refuses_and_never_widens_the_global_one(tmp_path, rng, monkeypatch):
    """A torch without ``serialization.safe_globals`` (< 2.5) gets a clear error, not a global allowlist change."""
    p = tmp_path / "inception_FFHQ_512.pth"
    _basicsr_stats_file(p, rng.standard_normal(4), _spd(rng, 4), False, False)
    before = set(map(str, torch.serialization.get_safe_globals()))
    monkeypatch.delattr(torch.serialization, "safe_globals")
    with pytest.raises(RuntimeError, match=r"needs torch >= 2\.6.*pip install"):
        load_stats(p)
    assert set(map(str, torch.serialization.get_safe_globals())) == before


def test_load_stats_npz_and_tensor_dict(tmp_path, rng):
    mu, sigma = rng.standard_normal(6), _spd(rng, 6)
    np.savez(tmp_path / "a.npz", mu=mu, sigma=sigma)  # pytorch-fid's format
    save_stats(tmp_path / "b.npz", mu, sigma, folder="x")
    torch.save({"mean": torch.from_numpy(mu), "cov": torch.from_numpy(sigma)}, tmp_path / "c.pth")
    for name in ("a.npz", "b.npz", "c.pth"):
        m2, s2 = load_stats(tmp_path / name)
        np.testing.assert_array_equal(m2, mu)
        np.testing.assert_array_equal(s2, sigma)


def test_load_stats_bad_files(tmp_path):
    (tmp_path / "trunc.pth").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(ValueError, match="trunc.pth"):
        load_stats(tmp_path / "trunc.pth")
    torch.save({"foo": torch.zeros(2)}, tmp_path / "nokeys.pth")
    with pytest.raises(ValueError, match="no 'mean'/'cov'"):
        load_stats(tmp_path / "nokeys.pth")
    torch.save({"mean": torch.zeros(3), "cov": torch.eye(4)}, tmp_path / "shape.pth")
    with pytest.raises(ValueError, match="bad statistics"):
        load_stats(tmp_path / "shape.pth")


# ----------------------------------------------------------------------------- metrics


@pytest.fixture
def frechet_spy(monkeypatch):
    """Record what a metric hands to the Frechet distance (a 2048-d sqrtm costs ~30 s on one core;
    the distance itself is tested above and end to end in the slow test)."""
    import bench.metrics.fid as fid_mod

    calls = []

    def spy(mu1, sigma1, mu2, sigma2, eps=1e-6, **kwargs):
        calls.append((mu1, sigma1, mu2, sigma2))
        return float(np.sum((np.asarray(mu1) - np.asarray(mu2)) ** 2) + np.trace(sigma1) + np.trace(sigma2))

    monkeypatch.setattr(fid_mod, "frechet_distance", spy)
    return calls


def _ffhq_like_stats(tmp_path, rng, d=2048):
    p = tmp_path / "inception_FFHQ_512-f7b384ab.pth"
    _basicsr_stats_file(p, rng.standard_normal(d) * 0.01, np.eye(d) * 1e-3)
    return p


def test_fid_unavailable_messages(tmp_path, inception_ckpt, monkeypatch):
    monkeypatch.setenv("BFRBENCH_HOME", str(tmp_path / "home"))  # an empty cache
    monkeypatch.setenv("BFRBENCH_AUTO_FETCH", "0")
    with pytest.raises(MetricUnavailable) as e:
        METRICS.create("fid")
    msg = str(e.value)
    assert "pt_inception-2015-12-05-6726825d.pth" in msg and "github.com/mseitzer/pytorch-fid" in msg
    assert "bfrbench fetch pt_inception_fid" in msg
    ok, reason = METRICS.entry("fid").available()
    assert not ok and "pt_inception_fid" in reason
    # network present, FFHQ statistics missing: the message gives the manual download
    with pytest.raises(MetricUnavailable) as e:
        FID(weights=str(inception_ckpt[0]))
    msg = str(e.value)
    assert "inception_FFHQ_512-f7b384ab.pth" in msg and "drive.google.com" in msg and "stats=PATH" in msg


def test_fid_merge_equals_single_pass(tmp_path, rng, inception_ckpt, frechet_spy):
    """Sharded (state -> torch.save -> merge, as the runner does) equals one pass; the distance gets the stats."""
    stats = _ffhq_like_stats(tmp_path, rng)
    x = random_faces(4, 64, seed=5)
    whole = FID(weights=str(inception_ckpt[0]), stats=str(stats))
    assert whole.protocol == "basicsr-fid-inception-pool3-ffhq512" and whole.standard
    assert whole.update(x) is None
    merged = FID(weights=str(inception_ckpt[0]), stats=str(stats))
    for part in (x[:1], x[1:]):
        shard = FID(weights=str(inception_ckpt[0]), stats=str(stats))
        shard.update(part)
        buf = io.BytesIO()
        torch.save(shard.state(), buf)
        merged.merge_state(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))
    feats = whole.state()["features"]
    assert feats.shape == (4, 2048)
    torch.testing.assert_close(merged.state()["features"], feats, atol=1e-6, rtol=0)
    a, b = whole.compute(), merged.compute()
    assert a == pytest.approx(b, rel=1e-6)
    mu, sigma = gaussian_stats(feats)
    mu1, s1, mu2, s2 = frechet_spy[0]
    np.testing.assert_allclose(mu1, mu, rtol=1e-12)
    np.testing.assert_allclose(s1, sigma, rtol=1e-12)
    ref_mu, ref_sigma = load_stats(stats)
    np.testing.assert_array_equal(mu2, ref_mu)
    np.testing.assert_array_equal(s2, ref_sigma)
    one = FID(weights=str(inception_ckpt[0]), stats=str(stats))
    one.update(x[:1])
    with pytest.raises(ValueError, match="at least 2"):
        one.compute()


def test_fid_custom_stats_labelled(tmp_path, rng, inception_ckpt):
    p = tmp_path / "celeba_stats.pth"
    _basicsr_stats_file(p, np.zeros(2048), np.eye(2048))
    m = FID(weights=str(inception_ckpt[0]), stats=str(p))
    assert not m.standard and m.protocol.endswith("ref-celeba_stats")


def test_fid_gt_compares_with_gt_features(inception_ckpt, frechet_spy):
    m = FIDGT(weights=str(inception_ckpt[0]))
    x = random_faces(3, 64, seed=7)
    y = random_faces(3, 64, seed=8)
    assert m.update(x, y) is None
    st = m.state()
    assert st["features"].shape == st["gt_features"].shape == (3, 2048)
    m.compute()
    mu1, s1, mu2, s2 = frechet_spy[-1]
    np.testing.assert_allclose(mu1, gaussian_stats(st["features"])[0], rtol=1e-12)
    np.testing.assert_allclose(s2, gaussian_stats(st["gt_features"])[1], rtol=1e-12)
    assert not np.allclose(mu1, mu2)
    m.reset()
    m.update(x, x)
    torch.testing.assert_close(m.state()["features"], m.state()["gt_features"])
    with pytest.raises(ValueError, match="ground truth"):
        m.update(x, None)


# ----------------------------------------------------------------------------- reference folders


class _TinyExtractor(nn.Module):
    tag = "tiny-test"

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.conv(x).mean(dim=(2, 3))


def _write_pngs(folder, n, seed):
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    imgs = (random_faces(n, 32, seed) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    for i, im in enumerate(imgs):
        cv2.imwrite(str(folder / f"{i:03d}.png"), im[:, :, ::-1])
    return imgs


def test_folder_stats_cached_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv("BFRBENCH_HOME", str(tmp_path / "home"))  # an empty cache, whatever BFRBENCH_TEST_HOME holds
    folder = tmp_path / "ref"
    imgs = _write_pngs(folder, 5, seed=1)
    torch.manual_seed(0)
    ext = _TinyExtractor()
    mu, sigma = folder_stats(folder, ext, batch_size=2)
    assert ext.calls == 3  # 5 images in batches of 2
    cached = list(stats_cache_dir().glob("tiny-test-*.npz"))
    assert len(cached) == 1
    # the features equal a direct pass over the decoded images
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        np.testing.assert_allclose(mu, ext(x).double().mean(0).numpy(), rtol=1e-5)
    ext.calls = 0
    mu2, _ = folder_stats(folder, ext)
    assert ext.calls == 0 and np.array_equal(mu, mu2)  # read back from the cache
    h1 = folder_hash(folder)
    _write_pngs(folder, 1, seed=9)  # overwrite 000.png
    assert folder_hash(folder) != h1
    mu3, _ = folder_stats(folder, ext)
    assert ext.calls > 0 and not np.allclose(mu, mu3)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no images"):
        folder_hash(empty)
    # the cache is private and does not record where the dataset lives (issue 20, item 21)
    assert stats_cache_dir().stat().st_mode & 0o777 == 0o700
    for f in stats_cache_dir().glob("*.npz"):
        assert f.stat().st_mode & 0o777 == 0o600
        with np.load(f) as d:
            assert str(tmp_path) not in " ".join(str(d[k]) for k in d.files if d[k].dtype.kind in "US")
    with pytest.raises(ValueError, match="reference /etc/passwd: not a folder"):
        folder_hash("/etc/passwd")


def test_fid_reference_folder(tmp_path, inception_ckpt, frechet_spy):
    folder = tmp_path / "myref"
    _write_pngs(folder, 3, seed=4)
    m = FID(weights=str(inception_ckpt[0]), reference=str(folder))
    assert m.protocol == "basicsr-fid-inception-pool3-ref-myref" and not m.standard
    x = extract_folder(folder, m.extractor)
    assert x.shape == (3, 2048)
    m.update(torch.from_numpy(np.zeros((2, 3, 32, 32), np.float32)) + 0.5)
    m.update(random_faces(1, 32, seed=4))
    m.compute()
    np.testing.assert_allclose(frechet_spy[-1][2], x.double().mean(0).numpy(), rtol=1e-5)


def _end_to_end_case(tmp_path, rng, inception_ckpt, monkeypatch):
    """Our metric's FID of pixel noise against the FFHQ-style statistics of smooth faces (so the distance is far
    above float32 noise), with pytorch-fid's features of both sets (float64)."""
    path, state = inception_ckpt
    ref_x = random_faces(5, 64, seed=11)
    x = torch.from_numpy(rng.integers(0, 256, (5, 3, 64, 64)).astype(np.float32) / 255)
    model = _pytorch_fid_model(state, monkeypatch)
    with torch.no_grad():
        fr = model(ref_x)[0].flatten(1).numpy().astype(np.float64)
        fx = model(x)[0].flatten(1).numpy().astype(np.float64)
    stats = tmp_path / "inception_FFHQ_512.pth"
    _basicsr_stats_file(stats, fr.mean(0), np.cov(fr, rowvar=False))
    m = FID(weights=str(path), stats=str(stats))
    m.update(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = m.compute()
    return ours, fr, fx


@pytest.mark.slow
def test_fid_end_to_end_matches_pytorch_fid(tmp_path, rng, inception_ckpt, monkeypatch):
    """2048-d: our metric (Gram form) vs pytorch-fid features + calculate_frechet_distance, which runs in the
    10-d span of the 10 feature vectors: both covariances and both means lie in it, and the Frechet distance is
    invariant under an orthonormal change of basis, so it is the same number as the 2048-d call (that one's
    sqrtm costs ~50 s on one core; it runs under ``soak``, next)."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    ours, fr, fx = _end_to_end_case(tmp_path, rng, inception_ckpt, monkeypatch)
    basis, _ = np.linalg.qr(np.concatenate([fr, fx]).T)  # 2048 x 10, orthonormal columns
    assert basis.shape == (2048, 10)
    # every feature vector lies in the span (so do the means and covariances built from them)
    np.testing.assert_allclose(basis @ (basis.T @ np.concatenate([fr, fx]).T), np.concatenate([fr, fx]).T,
                               atol=1e-9 * np.abs(fr).max())
    pr, px = fr @ basis, fx @ basis
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = calculate_frechet_distance(px.mean(0), np.cov(px, rowvar=False), pr.mean(0), np.cov(pr, rowvar=False))
    assert ref > 1e-3
    assert ours == pytest.approx(ref, rel=1e-6)


@pytest.mark.soak
def test_fid_end_to_end_matches_pytorch_fid_2048d_sqrtm(tmp_path, rng, inception_ckpt, monkeypatch):
    """The same case with pytorch-fid's own 2048 x 2048 sqrtm (~50 s on one core)."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    ours, fr, fx = _end_to_end_case(tmp_path, rng, inception_ckpt, monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = calculate_frechet_distance(fx.mean(0), np.cov(fx, rowvar=False), fr.mean(0), np.cov(fr, rowvar=False))
    assert ref > 1e-3
    assert ours == pytest.approx(ref, rel=1e-6)
