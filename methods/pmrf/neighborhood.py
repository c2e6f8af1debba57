"""Neighbourhood attention in plain torch, with NATTEN's 2-D window rule (dilation 1, no causal mask, no bias).

Each query (i, j) attends to a ``k x k`` window of keys centred on it where it fits, shifted inwards at the
borders so it always holds ``k x k`` keys: rows ``clamp(i - k//2, 0, H - k) ... + k - 1`` (NATTEN's
``get_window_start``), columns likewise. NATTEN needs a compiled extension; this runs anywhere (CPU
included): tiles of queries against the key region that holds their windows, masked (matrix products), or,
for sides that are no multiple of the tile, a loop over the ``k*k`` window slots.
"""
from __future__ import annotations

import torch


def window_starts(length: int, kernel_size: int, device: torch.device | None = None) -> torch.Tensor:
    """First index of each position's window along one axis (NATTEN's rule): ``clamp(i - k//2, 0, L - k)``."""
    if length < kernel_size:
        raise ValueError(f"neighbourhood attention: a side of {length} is smaller than the kernel {kernel_size}")
    idx = torch.arange(length, device=device)
    return (idx - kernel_size // 2).clamp(0, length - kernel_size)


#: queries per tile side in the tiled form: each 8 x 8 tile attends to the (8 + k - 1)^2 keys that hold all its
#: windows, with a mask (four times NATTEN's FLOPs here, as matrix products, and one gather instead of k^2)
TILE = 8


def neighborhood_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel_size: int,
                           scale: float = 1.0) -> torch.Tensor:
    """softmax(q . k_window * scale) @ v_window for (..., H, W, e) tensors; returns (..., H, W, e).

    Tiled (masked attention over each tile's key region) where both sides are multiples of :data:`TILE`, else
    the per-slot loop; both equal masked full attention (tests/methods/pmrf/test_method.py)."""
    h, w = q.shape[-3], q.shape[-2]
    if h % TILE == 0 and w % TILE == 0:
        return _tiled(q, k, v, kernel_size, scale)
    return _slots(q, k, v, kernel_size, scale)


def _regions(length: int, kernel_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per tile along one axis: the key region's indices (tiles, R) and which of them each query may see (tiles, TILE, R)."""
    r = min(TILE + kernel_size - 1, length)
    starts = torch.arange(0, length, TILE, device=device)
    region0 = (starts - kernel_size // 2).clamp(0, length - r)
    idx = region0[:, None] + torch.arange(r, device=device)
    first = window_starts(length, kernel_size, device).view(-1, TILE)  # (tiles, TILE) window starts
    allowed = (idx[:, None, :] >= first[:, :, None]) & (idx[:, None, :] < first[:, :, None] + kernel_size)
    return idx, allowed


def _tiled(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel_size: int, scale: float) -> torch.Tensor:
    *lead, h, w, e = q.shape
    idx_h, ok_h = _regions(h, kernel_size, q.device)
    idx_w, ok_w = _regions(w, kernel_size, q.device)
    th, rh = idx_h.shape
    tw, rw = idx_w.shape
    nl = len(lead)

    def regions(t: torch.Tensor) -> torch.Tensor:  # (..., H, W, e) -> (..., th, tw, rh * rw, e)
        t = t[..., idx_h.reshape(-1), :, :].reshape(*lead, th, rh, w, e)
        t = t[..., idx_w.reshape(-1), :].reshape(*lead, th, rh, tw, rw, e)
        return t.permute(*range(nl), nl, nl + 2, nl + 1, nl + 3, nl + 4).reshape(*lead, th, tw, rh * rw, e)

    tiles = q.reshape(*lead, th, TILE, tw, TILE, e).permute(*range(nl), nl, nl + 2, nl + 1, nl + 3, nl + 4)
    tiles = tiles.reshape(*lead, th, tw, TILE * TILE, e)
    mask = (ok_h[:, None, :, None, :, None] & ok_w[None, :, None, :, None, :])  # (th, tw, T, T, rh, rw)
    mask = mask.reshape(1, th * tw, TILE * TILE, rh * rw)
    n = 1
    for d in lead:
        n *= d

    def flat(t: torch.Tensor) -> torch.Tensor:  # 4-D, as the fused SDPA kernels take it (tiles as the head axis)
        return t.reshape(n, th * tw, t.shape[-2], t.shape[-1])

    out = torch.nn.functional.scaled_dot_product_attention(flat(tiles), flat(regions(k)), flat(regions(v)),
                                                           attn_mask=mask, scale=scale)
    out = out.reshape(*lead, th, tw, TILE, TILE, -1).permute(*range(nl), nl, nl + 2, nl + 1, nl + 3, nl + 4)
    return out.reshape(*lead, h, w, -1)


def _slots(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel_size: int, scale: float) -> torch.Tensor:
    """The per-window-slot form: k^2 gathers, memory O(H W k^2) per head."""
    h, w = q.shape[-3], q.shape[-2]
    rows = window_starts(h, kernel_size, q.device)
    cols = window_starts(w, kernel_size, q.device)
    logits = []
    for a in range(kernel_size):
        k_rows = k.index_select(-3, rows + a)
        for b in range(kernel_size):
            kk = k_rows.index_select(-2, cols + b)
            logits.append((q * kk).sum(-1))
    attn = torch.softmax(torch.stack(logits, dim=-1) * scale, dim=-1).to(v.dtype)
    out = torch.zeros_like(q if q.shape[-1] == v.shape[-1] else v)
    n = 0
    for a in range(kernel_size):
        v_rows = v.index_select(-3, rows + a)
        for b in range(kernel_size):
            out = out + attn[..., n, None] * v_rows.index_select(-2, cols + b)
            n += 1
    return out


def neighborhood_mask(h: int, w: int, kernel_size: int, device: torch.device | None = None) -> torch.Tensor:
    """(H*W, H*W) boolean mask: True where key (row-major) lies in the query's NATTEN window (the brute-force form)."""
    rows, cols = window_starts(h, kernel_size, device), window_starts(w, kernel_size, device)
    ki = torch.arange(h, device=device)
    kj = torch.arange(w, device=device)
    in_rows = (ki[None, :] >= rows[:, None]) & (ki[None, :] < rows[:, None] + kernel_size)  # (Hq, Hk)
    in_cols = (kj[None, :] >= cols[:, None]) & (kj[None, :] < cols[:, None] + kernel_size)  # (Wq, Wk)
    return (in_rows[:, None, :, None] & in_cols[None, :, None, :]).reshape(h * w, h * w)
