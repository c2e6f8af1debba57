"""CodeFormer's code-prediction Transformer and IQP's quality-score conditioning.

* ``TransformerSALayer``: pre-norm self-attention layer (nn.MultiheadAttention, sequence-first,
  position embedding added to queries and keys only, GELU MLP), as in the released checkpoints.
  With ``cond_dim`` it becomes an AdaLN layer: shift / scale / gate per sub-block from the score,
  the residual kept intact (``x + gate * f(modulate(norm(x)))``).
* ``BinnedScoreEmbedding``: the released IQPIR conditioning, ``Embedding(bins, C*H*W)`` looked up
  at ``floor(bins * score)`` and added to the low-quality latent before the Transformer.
* ``MultiBinnedScoreEmbedding``: the multi-IQA variant, one table per IQA model, summed.
* ``AdaLNScoreEncoder``: continuous score(s) -> Fourier features -> MLP, the AdaLN condition.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def as_score_tensor(score: torch.Tensor | float, batch: int, device: torch.device, n_scores: int = 1) -> torch.Tensor:
    """Scores as float32 (B,) (or (B, K) for K IQA models), broadcasting one value to the batch."""
    s = torch.as_tensor(score, dtype=torch.float32, device=device)
    if n_scores == 1:
        s = s.reshape(-1)
        if s.numel() == 1:
            s = s.expand(batch)
        if s.shape != (batch,):
            raise ValueError(f"score must be one value or one per image ({batch}), got shape {tuple(s.shape)}")
        return s
    if s.numel() == 1:  # one quality asked of every IQA model
        s = s.reshape(1, 1).expand(1, n_scores)
    elif s.dim() <= 1 and s.numel() == n_scores:
        s = s.reshape(1, n_scores)
    if s.dim() != 2 or s.shape[1] != n_scores or s.shape[0] not in (1, batch):
        raise ValueError(f"score must have shape ({batch}, {n_scores}) (one value per IQA model), got {tuple(s.shape)}")
    return s.expand(batch, n_scores)


def score_bins(score: torch.Tensor, bins: int) -> torch.Tensor:
    """``floor(score * bins)`` computed in float32 as the reference does, clamped to the table.

    The clamp only matters at score >= 1.0 (or < 0), where the reference indexes out of range.
    """
    return (score.float() * bins).floor().long().clamp_(0, bins - 1)


class BinnedScoreEmbedding(nn.Embedding):
    """Released IQP conditioning: a learned latent-sized offset per score bin (``score_embed.weight``)."""

    def __init__(self, bins: int, latent_shape: tuple[int, int, int]) -> None:
        super().__init__(bins, math.prod(latent_shape))
        self.bins, self.latent_shape = bins, tuple(latent_shape)

    def embed(self, score: torch.Tensor) -> torch.Tensor:
        """Scores (B,) in [0, 1] -> offsets (B, C, H, W)."""
        return super().forward(score_bins(score, self.bins)).view(score.shape[0], *self.latent_shape)

    def add_to(self, feat: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        """``feat + offset(score)``; score (B,)."""
        return feat + self.embed(score).to(feat.dtype)


class MultiBinnedScoreEmbedding(nn.ModuleList):
    """Multi-IQA conditioning: one binned table per IQA model (``score_embed.K.weight``), added in turn."""

    def __init__(self, bins_list: tuple[int, ...], latent_shape: tuple[int, int, int]) -> None:
        super().__init__([BinnedScoreEmbedding(b, latent_shape) for b in bins_list])

    def add_to(self, feat: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        """``feat + sum_k offset_k(score[:, k])``; score (B, K)."""
        for k, table in enumerate(self):
            feat = table.add_to(feat, score[:, k])
        return feat


class AdaLNScoreEncoder(nn.Module):
    """Score(s) in [0, 1] -> condition vector: sin/cos features at octave frequencies, then an MLP."""

    def __init__(self, n_scores: int, cond_dim: int, n_freqs: int = 8) -> None:
        super().__init__()
        self.n_scores, self.n_freqs = n_scores, n_freqs
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(n_freqs, dtype=torch.float32), persistent=False)
        self.mlp = nn.Sequential(nn.Linear(2 * n_freqs * n_scores, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim))

    def forward(self, score: torch.Tensor) -> torch.Tensor:
        s = score.float().reshape(score.shape[0], self.n_scores, 1) * self.freqs  # (B, K, F)
        feats = torch.cat([s.sin(), s.cos()], dim=-1).flatten(1)
        return self.mlp(feats)


class TransformerSALayer(nn.Module):
    """Pre-norm Transformer layer; tensors are sequence-first (L, B, E) like the reference."""

    def __init__(
        self,
        embed_dim: int,
        nhead: int = 8,
        dim_mlp: int = 2048,
        dropout: float = 0.0,
        cond_dim: int | None = None,
        gate_offset: float = 0.0,
        need_weights: bool = False,
    ) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(embed_dim, nhead, dropout=dropout)
        self.linear1 = nn.Linear(embed_dim, dim_mlp)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_mlp, embed_dim)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.need_weights = need_weights
        self.gate_offset = gate_offset
        if cond_dim is not None:
            # shift1, scale1, gate1 (attention), shift2, scale2, gate2 (MLP); zero-initialised so the
            # modulation starts as a no-op and the gates start at ``gate_offset``
            self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 6 * embed_dim))
            nn.init.zeros_(self.adaLN_modulation[1].weight)
            nn.init.zeros_(self.adaLN_modulation[1].bias)
        else:
            self.adaLN_modulation = None

    def _attend(self, h: torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
        q = k = h if pos is None else h + pos
        return self.self_attn(q, k, value=h, need_weights=self.need_weights)[0]

    def _mlp(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.dropout(F.gelu(self.linear1(h))))

    def forward(
        self, x: torch.Tensor, query_pos: torch.Tensor | None = None, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.adaLN_modulation is None:
            x = x + self.dropout1(self._attend(self.norm1(x), query_pos))
            return x + self.dropout2(self._mlp(self.norm2(x)))
        if cond is None:
            raise ValueError("this Transformer layer is AdaLN-conditioned: pass cond (the encoded score)")
        # (B, 6E) -> six (1, B, E) tensors that broadcast over the sequence axis
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(cond).unsqueeze(0).chunk(6, dim=-1)
        h = self.norm1(x) * (1 + scale1) + shift1
        x = x + (self.gate_offset + gate1) * self.dropout1(self._attend(h, query_pos))
        h = self.norm2(x) * (1 + scale2) + shift2
        return x + (self.gate_offset + gate2) * self.dropout2(self._mlp(h))
