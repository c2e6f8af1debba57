"""Neighbourhood attention in plain torch, with NATTEN's 2-D window rule (dilation 1, no causal mask, no bias).

Each query (i, j) attends to a ``k x k`` window of keys centred on it where it fits, shifted inwards at the
borders so it always holds ``k x k`` keys: rows ``clamp(i - k//2, 0, H - k) ... + k - 1`` (NATTEN's
``get_window_start``), columns likewise. NATTEN needs a compiled extension; this runs anywhere (CPU
included) and loops over the ``k*k`` window slots, so memory stays O(H W k^2) per head, not O(H W e k^2).
"""
from __future__ import annotations

import torch


def window_starts(length: int, kernel_size: int, device: torch.device | None = None) -> torch.Tensor:
    """First index of each position's window along one axis (NATTEN's rule): ``clamp(i - k//2, 0, L - k)``."""
    if length < kernel_size:
        raise ValueError(f"neighbourhood attention: a side of {length} is smaller than the kernel {kernel_size}")
    idx = torch.arange(length, device=device)
    return (idx - kernel_size // 2).clamp(0, length - kernel_size)


def neighborhood_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel_size: int,
                           scale: float = 1.0) -> torch.Tensor:
    """softmax(q . k_window * scale) @ v_window for (..., H, W, e) tensors; returns (..., H, W, e)."""
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
