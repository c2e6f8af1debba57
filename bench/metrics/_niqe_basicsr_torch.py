"""BasicSR 1.4.2's float32 NIQE arithmetic, batched in torch on the tensor's device.

The steps of the per-image numpy reference (:mod:`bench.metrics._niqe_basicsr`) with the same
dtype at each step: the 7x7 replicate-border Gaussian filter summed in float64 and stored as
float32 (scipy ``convolve``); float32 MSCN; per-block float32 means summed in numpy's own
pairwise order (:func:`pairwise_sum` replays it exactly, also over the packed negative / positive
samples of ``x[x < 0]``); the nearest ``gam`` entry by float64 squared distance (first index on
ties, as ``argmin``); scipy's gamma ratios looked up per table entry; the float64 Gaussian fit and
distance (:mod:`bench.metrics._niqe_fit`). torch's CPU float32 ``sqrt`` is not always correctly
rounded, so square roots go through float64.

The half-scale image alone is made on the host by the reference's own ``imresize_half`` (torch
float32 ``mv`` per row and column, ~10% of the reference's time): its 8-tap float32 dot products
round in the BLAS's order, which no batched product reproduced, and a one-ulp change there moves
NIQE by up to 1.4e-4 (argmin flips), against <1e-12 with it. glibc ``powf`` (numpy's scalar
``**``, within 1 ulp) is replaced by the correctly rounded power.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import gamma

from bench.metrics._niqe_basicsr import BLOCK, _gam_table, imresize_half
from bench.metrics._niqe_fit import pristine_distance

#: np.roll shifts of the paired products (rows, cols), as BasicSR's compute_feature
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))
#: numpy's pairwise summation: leaves of at most PW_BLOCKSIZE items, 8 accumulators per leaf
_LEAF, _UNROLL_BITS = 128, 3
_UNROLL = 1 << _UNROLL_BITS


# ---- numpy's float32 pairwise sum --------------------------------------------------------------
def _split(length: int) -> int:
    """Where numpy's ``pairwise_sum`` splits a run of ``length`` items (> 128): half, down to a multiple of 8."""
    half = length // 2
    return half - half % _UNROLL


@lru_cache(maxsize=8)
def _depths(n: int) -> torch.Tensor:
    """How many halvings numpy's recursion makes for a run of 0, 1, ..., n items (its deepest leaf)."""
    depth = [0] * (n + 1)
    for length in range(_LEAF + 1, n + 1):
        h = _split(length)
        depth[length] = 1 + max(depth[h], depth[length - h])
    return torch.tensor(depth)


def _runs(length: torch.Tensor, levels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(start, length) of numpy's leaf runs, (..., 2**levels) with siblings adjacent.

    A run that is a leaf before the last level is carried down beside an empty sibling.
    """
    length = length.unsqueeze(-1)
    start = torch.zeros_like(length)
    for _ in range(levels):
        left = torch.where(length > _LEAF, (length >> 1) & -_UNROLL, length)  # n // 2 down to a multiple of 8
        start = torch.stack([start, start + left], -1).flatten(-2)
        length = torch.stack([left, length - left], -1).flatten(-2)
    return start, length


def _lanes(body: torch.Tensor, rest: list[torch.Tensor]) -> torch.Tensor:
    """A leaf run's sum from its (..., steps, 8) items and the items past them: r[k] += a[i + k], lanes, rest."""
    r = body[..., 0, :]
    for j in range(1, body.shape[-2]):
        r = r + body[..., j, :]
    res = ((r[..., 0] + r[..., 1]) + (r[..., 2] + r[..., 3])) + ((r[..., 4] + r[..., 5]) + (r[..., 6] + r[..., 7]))
    for item in rest:
        res = res + item
    return res


def _fold(sums: torch.Tensor, levels: int) -> torch.Tensor:
    """Sum adjacent siblings back up the run tree: (..., 2**levels) -> (...)."""
    for _ in range(levels):
        sums = sums[..., 0::2] + sums[..., 1::2]
    return sums.squeeze(-1)


def pairwise_sum(values: torch.Tensor, count: torch.Tensor | None = None) -> torch.Tensor:
    """``np.add.reduce`` of the first ``count`` items of each float32 row of ``values`` (..., N), in numpy's order.

    Items past ``count`` must be zero (``count=None``: whole rows). numpy splits a run of n > 128
    items at ``n // 2`` rounded down to a multiple of 8 and sums each leaf run in 8 lanes (item i
    into lane i % 8, the last n % 8 items one by one); that tree is replayed for all rows at once.
    """
    n = values.shape[-1]
    levels = int(_depths(n).max())
    if count is None:
        whole = _whole_rows(n)
        if whole is not None:  # every leaf run equally long and in order: a plain reshape
            leaf, levels = whole
            runs = values.unflatten(-1, (n // leaf, leaf))
            main = leaf - leaf % _UNROLL
            body = runs[..., :main].unflatten(-1, (main // _UNROLL, _UNROLL))
            return _fold(_lanes(body, [runs[..., i] for i in range(main, leaf)]), levels)
        count = torch.full(values.shape[:-1], n, dtype=torch.long, device=values.device)
    else:
        levels = _levels_for(count, n)
    start, length = _runs(count, levels)
    # runs start at multiples of 8 and only a row's last run has a length that is not: gather whole
    # groups of 8 (one per lane) and the up to 7 items past a run's last whole group
    zero = -(-n // _UNROLL)  # the index of an all-zero group after the (zero-padded) items
    flat = F.pad(values, (0, (zero + 1) * _UNROLL - n))
    steps = torch.arange(_LEAF // _UNROLL, device=values.device)
    whole, part = length >> _UNROLL_BITS, length & (_UNROLL - 1)  # whole groups of 8, items past them
    at = torch.where(steps < whole.unsqueeze(-1), (start >> _UNROLL_BITS).unsqueeze(-1) + steps, zero)
    rows = torch.arange(at[..., 0, 0].numel(), device=values.device).view(*at.shape[:-2], 1, 1) * (zero + 1)
    body = flat.reshape(-1, _UNROLL)[(at + rows).flatten()].view(*at.shape, _UNROLL)
    tail = start + (whole << _UNROLL_BITS)
    rest = []
    for t in range(_UNROLL - 1):  # at most 7 items past the lanes, one by one
        rest.append(flat.gather(-1, torch.where(t < part, tail + t, zero * _UNROLL)))
    return _fold(_lanes(body, rest), levels)


def _levels_for(count: torch.Tensor, n: int) -> int:
    """Levels of runs to lay out for rows of ``count`` items out of ``n``.

    On the CPU only as many as the longest row needs (fewer empty runs; the same sums, as an empty
    run adds an exact 0); on a GPU all that ``n`` items may need, since reading ``count`` back
    would wait for the device.
    """
    depths = _depths(n)
    return int(depths[count].max()) if count.device.type == "cpu" and count.numel() else int(depths.max())


@lru_cache(maxsize=8)
def _whole_rows(n: int) -> tuple[int, int] | None:
    """(leaf length, levels) when numpy's tree over n >= 8 items is perfect (equal leaves): 9216 and 2304 are."""
    length, levels = n, 0
    while length > _LEAF:
        if _split(length) * 2 != length:
            return None
        length, levels = length // 2, levels + 1
    return (length, levels) if length >= _UNROLL else None


def split_signs(values: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """numpy's ``values[x < 0]`` and ``values[x > 0]`` of each row (..., N), packed to the front: (2, ..., N), counts.

    ``values`` must be 0 where ``x`` is (as ``x * x`` is): such an item is added, as an exact 0, onto
    the slot of the last positive item before it, which saves a pass over the rows.
    """
    n = x.shape[-1]
    neg, pos = x < 0, x > 0
    rank_neg = neg.cumsum(-1, dtype=torch.int32)
    rank_pos = pos.cumsum(-1, dtype=torch.int32)
    slot = torch.where(neg, rank_neg - 1, rank_pos + (n - 1))
    packed = values.new_zeros(*values.shape[:-1], 2 * n).scatter_add_(-1, slot.long(), values)
    counts = torch.stack([rank_neg[..., -1], rank_pos[..., -1]]).long()
    return packed.unflatten(-1, (2, n)).movedim(-2, 0), counts


# ---- AGGD fit ----------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _tables_np() -> dict[str, np.ndarray]:
    """BasicSR's ``gam`` grid and moment ratio, and scipy's gamma ratios at every grid point (float64)."""
    gam, r_gam = _gam_table()
    return {"gam": gam, "r_gam": r_gam,
            "beta_scale": np.sqrt(gamma(1 / gam) / gamma(3 / gam)),  # the scalar expressions, elementwise
            "gamma21": gamma(2 / gam) / gamma(1 / gam)}


@lru_cache(maxsize=8)
def _tables(device: torch.device) -> dict[str, torch.Tensor]:
    """:func:`_tables_np` on ``device`` (copied once per device)."""
    return {k: torch.from_numpy(v).to(device) for k, v in _tables_np().items()}


def _sqrtf(x: torch.Tensor) -> torch.Tensor:
    """float32 square root, correctly rounded as numpy's (torch's vectorised CPU float32 sqrt is not always)."""
    return x.double().sqrt().float()


def _powf(x: torch.Tensor, k: int) -> torch.Tensor:
    """numpy float32 scalar ``x ** k``: the float64 power rounded to float32 (glibc powf is within 1 ulp of it)."""
    return (x.double() ** k).float()


def _mean(values: torch.Tensor, count: torch.Tensor | None = None) -> torch.Tensor:
    """``np.mean`` in float32: numpy's pairwise sum divided by the count (NaN for no item)."""
    n = values.new_tensor(values.shape[-1]) if count is None else count.to(values.dtype)
    return pairwise_sum(values, count) / n


def nearest_gam(rhatnorm: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """``argmin((r_gam - v) ** 2)`` in float64 for each float32 v: first index on ties, 0 for NaN / inf."""
    v = rhatnorm.double()
    n = table.numel()
    hi = torch.searchsorted(table, v.nan_to_num(0.0).contiguous()).clamp_(1, n - 1)
    lo = hi - 1
    d_lo, d_hi = table[lo] - v, table[hi] - v
    idx = torch.where(d_hi * d_hi < d_lo * d_lo, hi, lo)
    return torch.where(torch.isfinite(v), idx, torch.zeros_like(idx))


def aggd(x: torch.Tensor, tables: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """BasicSR ``estimate_aggd_param`` of each float32 row of ``x`` (..., N): (gam index, beta_l, beta_r)."""
    sq = x * x
    sides, counts = split_signs(sq, x)
    left_std, right_std = _sqrtf(pairwise_sum(sides, counts) / counts.to(sq.dtype))  # NaN for no sample
    ratio = left_std / right_std
    rhat = _powf(_mean(x.abs()), 2) / _mean(sq)
    rhatnorm = (rhat * (_powf(ratio, 3) + 1) * (ratio + 1)) / _powf(_powf(ratio, 2) + 1, 2)
    idx = nearest_gam(rhatnorm, tables["r_gam"])
    scale = tables["beta_scale"][idx]
    return idx, left_std.double() * scale, right_std.double() * scale


def block_features(mscn: torch.Tensor, size: int, tables: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, 1, nh*size, nw*size) float32 MSCN -> (B, nh*nw, 18) float64, blocks in BasicSR's column-major order."""
    b, _, h, w = mscn.shape
    nh, nw = h // size, w // size
    blocks = mscn.reshape(b, nh, size, nw, size).permute(0, 3, 1, 2, 4).reshape(b, nw * nh, size, size)
    idx, beta_l, beta_r = aggd(blocks.flatten(-2), tables)
    feats = [tables["gam"][idx], (beta_l + beta_r) / 2]
    for shift in _SHIFTS:
        idx, beta_l, beta_r = aggd((blocks * torch.roll(blocks, shift, dims=(-2, -1))).flatten(-2), tables)
        feats += [tables["gam"][idx], (beta_r - beta_l) * tables["gamma21"][idx], beta_l, beta_r]
    return torch.stack(feats, dim=-1)


# ---- MSCN and the half-scale image -------------------------------------------------------------
def _factors(taps: list[list[float]]) -> tuple[list[float], list[float]] | None:
    """(column, row) taps whose outer product is the window to 1e-15 relative (a Gaussian's is), else None."""
    w = np.asarray(taps, dtype=np.float64)
    col, row = w.sum(1), w.sum(0) / w.sum()
    if np.abs(np.outer(col, row) - w).max() > 1e-15 * np.abs(w).max():
        return None
    return col.tolist(), row.tolist()


def _gauss_filter(x: torch.Tensor, taps: list[list[float]]) -> torch.Tensor:
    """scipy ``convolve(x, taps, mode='nearest')`` of float32 (B, 1, H, W): summed in float64, stored float32.

    A separable window is applied as a row then a column pass (14 shifted products instead of 49);
    the float64 sums differ from scipy's by ~1e-16 relative, far below the float32 they are stored in.
    """
    k = len(taps)
    h, w = x.shape[-2:]
    padded = F.pad(x.double(), (k // 2,) * 4, mode="replicate")
    factors = _factors(taps)
    if factors is None:
        out = torch.zeros(x.shape, dtype=torch.float64, device=x.device)
        for i in range(k):
            for j in range(k):
                out.add_(padded[..., i:i + h, j:j + w], alpha=taps[k - 1 - i][k - 1 - j])  # convolve: flipped
        return out.float()
    col, row = factors
    rows = torch.zeros(*x.shape[:-2], h + k - 1, w, dtype=torch.float64, device=x.device)
    for j in range(k):
        rows.add_(padded[..., j:j + w], alpha=row[k - 1 - j])
    out = torch.zeros(x.shape, dtype=torch.float64, device=x.device)
    for i in range(k):
        out.add_(rows[..., i:i + h, :], alpha=col[k - 1 - i])
    return out.float()


def mscn(img: torch.Tensor, taps: list[list[float]]) -> torch.Tensor:
    """BasicSR's float32 ``(img - mu) / (sigma + 1)`` of float32 (B, 1, H, W), ``taps`` the Gaussian window."""
    mu = _gauss_filter(img, taps)
    sigma = _sqrtf((_gauss_filter(img * img, taps) - mu * mu).abs())
    return (img - mu) / (sigma + 1)


# ---- NIQE ------------------------------------------------------------------------------------
@torch.no_grad()
def niqe_basicsr_batched(y: torch.Tensor, mu_pris: torch.Tensor, cov_pris: torch.Tensor,
                         window: torch.Tensor) -> torch.Tensor:
    """NIQE of (B, 1, H, W) integer-valued luma (0-255) with BasicSR's float32 arithmetic: (B,) float64.

    An image without any block free of NaN features (flat) gets NaN; the others are unaffected.
    """
    h, w = y.shape[-2:]
    nh, nw = h // BLOCK, w // BLOCK
    if nh * nw < 2:
        raise ValueError(f"NIQE needs at least two {BLOCK}x{BLOCK} blocks; the image is {h}x{w}")
    tables = _tables(y.device)
    taps = window.detach().double().cpu().tolist()
    img = y[..., : nh * BLOCK, : nw * BLOCK].float()
    on_host = (img / 255.0).squeeze(1).cpu().numpy()  # only the resize runs on the host (see the module doc)
    feats = [block_features(mscn(img, taps), BLOCK, tables)]  # queued on the device meanwhile
    half = torch.from_numpy(np.stack([imresize_half(a) for a in on_host])).to(y.device).unsqueeze(1) * 255.0
    feats.append(block_features(mscn(half, taps), BLOCK // 2, tables))
    return pristine_distance(torch.cat(feats, dim=-1), mu_pris, cov_pris)


__all__ = ["niqe_basicsr_batched", "pairwise_sum", "split_signs", "aggd", "nearest_gam", "block_features", "mscn"]
