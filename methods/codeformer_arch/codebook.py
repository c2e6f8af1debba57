"""Codebooks: CodeFormer's nearest-neighbour vector quantizer and IQP's dual-branch pair.

IQP keeps two codebooks over the same encoder feature: the universal ("common") one, trained on
every image, and the HQ ("aesthetic") one, trained only on images whose quality score exceeds a
threshold. The decoder sees ``common + a * hq``. In checkpoints they are ``quantize`` and
``quantize_aesthetic``; the network owns both, and the functions here combine them.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


class VectorQuantizer(nn.Module):
    """Nearest-neighbour codebook with the VQ-VAE codebook + commitment loss and straight-through."""

    def __init__(self, codebook_size: int, emb_dim: int, beta: float = 0.25) -> None:
        super().__init__()
        self.codebook_size, self.emb_dim, self.beta = codebook_size, emb_dim, beta
        self.embedding = nn.Embedding(codebook_size, emb_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / codebook_size, 1.0 / codebook_size)

    def nearest(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, H, W) -> code indices (B, H*W) and the mean squared distance to all codes."""
        flat = z.permute(0, 2, 3, 1).reshape(-1, self.emb_dim)
        e = self.embedding.weight
        # |z - e|^2 = |z|^2 + |e|^2 - 2 z.e, the reference's formula (same argmin tie-breaking)
        d = (flat**2).sum(dim=1, keepdim=True) + (e**2).sum(1) - 2 * flat @ e.t()
        return d.argmin(dim=1).view(z.shape[0], -1), d.mean()

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Quantize z: (z_q with straight-through gradient, per-sample loss (B,), stats)."""
        idx, mean_distance = self.nearest(z)
        z_q = self.lookup(idx, z.shape[-2:])
        dims = tuple(range(1, z.dim()))
        loss = ((z_q.detach() - z) ** 2).mean(dim=dims) + self.beta * ((z_q - z.detach()) ** 2).mean(dim=dims)
        z_q = z + (z_q - z).detach()
        usage = torch.bincount(idx.flatten(), minlength=self.codebook_size).to(z.dtype) / idx.numel()
        perplexity = torch.exp(-torch.sum(usage * torch.log(usage + 1e-10)))
        stats = {
            "indices": idx,
            "min_encoding_indices": idx.reshape(-1, 1),
            "perplexity": perplexity,
            "mean_distance": mean_distance,
        }
        return z_q, loss, stats

    def lookup(self, indices: torch.Tensor, hw: tuple[int, int] | torch.Size | None = None) -> torch.Tensor:
        """Code indices (B, L) -> codebook vectors (B, C, H, W) (H = W = sqrt(L) unless hw given)."""
        b, n = indices.shape[0], indices[0].numel()
        if hw is None:
            side = int(round(n**0.5))
            hw = (side, side)
        z_q = self.embedding(indices.reshape(b, n))  # exact rows: same values as a one-hot matmul
        return z_q.view(b, hw[0], hw[1], self.emb_dim).permute(0, 3, 1, 2).contiguous()

    def get_codebook_feat(self, indices: torch.Tensor, shape: list[int] | None) -> torch.Tensor:
        """Reference-compatible lookup: ``shape`` is (B, H, W, C) as the official code passes it."""
        if shape is None:
            return self.embedding(indices.reshape(-1))
        return self.lookup(indices.reshape(shape[0], -1), (shape[1], shape[2]))


def score_gate(score: torch.Tensor | float | None, batch: int, threshold: float, device: torch.device) -> torch.Tensor:
    """Per-sample HQ-branch gate ``score > threshold`` (the reference compares with ``>``); None opens it."""
    if score is None:
        return torch.ones(batch, dtype=torch.bool, device=device)
    s = torch.as_tensor(score, dtype=torch.float32, device=device).reshape(-1)
    if s.numel() == 1:
        s = s.expand(batch)
    if s.numel() != batch:
        raise ValueError(f"score has {s.numel()} values for a batch of {batch}: give one per image (or one)")
    return s > threshold


def dual_quantize(
    common: VectorQuantizer, hq: VectorQuantizer, z: torch.Tensor, gate: torch.Tensor, weight: float
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Stage-1 dual quantization: ``common + weight * hq``, the HQ term and loss zeroed where gate is False.

    Returns (quant, codebook loss (scalar), stats of the common codebook with the HQ codebook's
    stats under ``"aesthetic"`` and the gate under ``"gate"``). With the whole batch gated this is
    the reference's batch-level rule; per-sample gating generalises it to mixed batches.
    """
    q_c, loss_c, stats = common(z)
    q_h, loss_h, stats_h = hq(z)
    m = gate.to(z.dtype)
    quant = q_c + weight * (q_h * m.view(-1, 1, 1, 1))
    loss = loss_c.mean() + weight * (loss_h * m).mean()
    stats = dict(stats, aesthetic=stats_h, gate=gate)
    return quant, loss, stats


def dual_lookup(
    common: VectorQuantizer, hq: VectorQuantizer, indices: torch.Tensor, weight: float, hw: tuple[int, int]
) -> torch.Tensor:
    """Stage-2 lookup of predicted codes (B, L, 2) (index 0: HQ code, 1: common): ``weight * hq + common``."""
    return weight * hq.lookup(indices[..., 0], hw) + common.lookup(indices[..., 1], hw)
