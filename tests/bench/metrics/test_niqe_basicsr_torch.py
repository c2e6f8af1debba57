"""The pieces of the batched BasicSR NIQE against the numpy operations they replay, bit for bit.

(The whole metric against the reference on real faces: ``test_classic_nr.py``.)
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import bench.metrics._niqe_basicsr_torch as T
from bench.metrics._niqe_basicsr import _aggd, _gam_table
from bench.metrics._niqe_basicsr_torch import _tables, aggd, nearest_gam, pairwise_sum, split_signs

CPU = torch.device("cpu")


@pytest.mark.parametrize("n", [1, 7, 8, 9, 127, 128, 129, 136, 255, 1000, 2304, 4097, 8193, 9216])
def test_pairwise_sum_is_numpys_float32_sum(n, rng):
    """numpy's float32 sum is pairwise (leaves of 128, 8 lanes): a plain or float64 sum differs in the last bits."""
    rows = (rng.standard_normal((24, n)) * rng.uniform(0.1, 30, (24, 1))).astype(np.float32) ** 2
    want = np.array([np.add.reduce(r) for r in rows])
    got = pairwise_sum(torch.from_numpy(rows)).numpy()
    np.testing.assert_array_equal(got, want)
    if n >= 1000:  # the test can fail: summing in float64 and rounding is not numpy's value
        assert (torch.from_numpy(rows).double().sum(-1).float().numpy() != want).any()


@pytest.mark.parametrize("layout", ["cpu", "gpu"])
def test_pairwise_sum_of_ragged_rows(layout, rng, monkeypatch):
    """Rows of any count (zeros after it), as the packed negative / positive samples of a block.

    ``gpu``: the layout a GPU uses (every level, without reading the counts back), run here on the CPU.
    """
    if layout == "gpu":
        monkeypatch.setattr(T, "_levels_for", lambda count, n: int(T._depths(n).max()))
    n = 9216
    counts = np.concatenate([[0, 1, 7, 8, 128, 129, 4608, 8192, 8193, 9216], rng.integers(0, n + 1, 30)])
    rows = np.zeros((len(counts), n), np.float32)
    for r, c in zip(rows, counts):
        r[:c] = rng.standard_normal(c).astype(np.float32) ** 2
    want = np.array([np.add.reduce(r[:c]) for r, c in zip(rows, counts)])
    got = pairwise_sum(torch.from_numpy(rows), torch.from_numpy(counts))
    np.testing.assert_array_equal(got.numpy(), want)


def test_split_signs_is_boolean_indexing(rng):
    x = rng.standard_normal((3, 5, 300)).astype(np.float32)
    x[0, 0] = 0.0  # no sample of either sign
    x[1, 2, :150] = 0.0
    vals = x * 3
    packed, counts = split_signs(torch.from_numpy(vals), torch.from_numpy(x))
    for side, mask in enumerate((x < 0, x > 0)):
        for i in np.ndindex(x.shape[:-1]):
            k = int(mask[i].sum())
            assert counts[side][i] == k
            np.testing.assert_array_equal(packed[side][i][:k].numpy(), vals[i][mask[i]])
            assert not packed[side][i][k:].any()


def test_nearest_gam_is_numpy_argmin(rng):
    _, r_gam = _gam_table()
    table = _tables(CPU)["r_gam"]
    mids = ((r_gam[:-1] + r_gam[1:]) / 2)[rng.integers(0, len(r_gam) - 1, 200)]
    vals = np.concatenate([rng.uniform(r_gam[0] - 0.05, r_gam[-1] + 0.05, 3000), mids, r_gam[:50],
                           [np.nan, np.inf, -np.inf]]).astype(np.float32)
    with np.errstate(invalid="ignore"):
        want = np.array([np.argmin((r_gam - v) ** 2) for v in vals])  # BasicSR's expression, float64
    np.testing.assert_array_equal(nearest_gam(torch.from_numpy(vals), table).numpy(), want)


def test_aggd_is_basicsrs_per_block_fit(rng):
    """(alpha, beta_l, beta_r) of many blocks, including skewed, one-signed and sparse ones."""
    blocks = rng.standard_normal((40, 96, 96)).astype(np.float32)
    blocks[:10] *= rng.uniform(0.01, 3, (10, 1, 1)).astype(np.float32)
    blocks[10:15] = np.abs(blocks[10:15]) * np.float32(0.5)  # no negative sample: NaN ratio, alpha 0.2
    blocks[15:20] = blocks[15:20] ** 3
    blocks[20:25, :, :80] = 0.0
    idx, beta_l, beta_r = aggd(torch.from_numpy(blocks).flatten(-2), _tables(CPU))
    gam = _tables(CPU)["gam"]
    with np.errstate(invalid="ignore", divide="ignore"), pytest.warns(RuntimeWarning):
        want = np.array([_aggd(b) for b in blocks], dtype=np.float64)
    got = torch.stack([gam[idx], beta_l, beta_r], -1).numpy()
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("separable", [True, False])
def test_gauss_filter_is_scipy_convolve_stored_float32(separable, rng):
    """Integer images (full scale) and float32 ones (half scale), NIQE's Gaussian window and a non-separable one."""
    from scipy.ndimage import convolve

    from bench.metrics._matlab import fspecial_gaussian
    from bench.metrics._niqe_basicsr_torch import _factors, _gauss_filter

    window = fspecial_gaussian(7, 7 / 6)
    if not separable:
        window = window + rng.uniform(0, 0.01, (7, 7))
        window[0, 6] += 0.05  # not symmetric either: convolve flips it
    assert (_factors(window.tolist()) is not None) == separable
    ints = rng.integers(0, 256, (3, 1, 97, 130)).astype(np.float32)
    floats = (rng.random((3, 1, 48, 65)) * 255).astype(np.float32)
    for x in (ints, floats, floats * floats):
        got = _gauss_filter(torch.from_numpy(x), window.tolist()).numpy()
        want = np.stack([convolve(a[0], window, mode="nearest") for a in x])[:, None]
        assert got.dtype == want.dtype == np.float32
        np.testing.assert_array_equal(got, want)
