"""DAEFR: an LQ and an HQ encoder, cross-attention between them, a Transformer that predicts HQ code indices.

Written to reproduce ``DAEFRModel`` of LIAGM/DAEFR (DAEFR/models/daefr.py, VQVAEGANMERGE in
DAEFR/modules/vqvae/vqvae_arch.py) with the same parameter names, so the released ``DAEFR_model.ckpt``
``state_dict`` loads with ``strict=True``. Inference (the official ``forward`` with no ground truth):

1. ``z = quant_conv(encoder(x))`` (LQ branch) and ``z_hq = HQ_quant_conv(HQ_encoder(x))`` (HQ branch);
2. ``f = cross_attention(z_hq, z)``: queries from the LQ latent, keys/values and residual from the HQ one;
3. nine pre-norm Transformer layers over the 16x16 tokens predict logits over the 1024 HQ codes;
   the top code of the softmax is looked up in ``Fixed_quantize`` (the original HQ codebook);
4. ``decoder(post_quant_conv(f + (code - f)))`` (the official straight-through sum, kept for its rounding).

``Fixed_encoder``, ``Fixed_quant_conv``, ``HQ_quantize`` and ``LQ_quantize`` serve training only; they are
kept so the checkpoint loads strictly. The building blocks are RestoreFormer's (DAEFR derives from it)
and CodeFormer's Transformer layer, whose names and arithmetic DAEFR shares.
"""
from __future__ import annotations

import torch
from torch import nn

from methods.codeformer_arch.transformer import TransformerSALayer
from methods.restoreformer.arch import (
    MultiHeadAttnBlock,
    MultiHeadDecoderTransformer,
    MultiHeadEncoder,
    VectorQuantizer,
    _swish,
)

#: token grid of the association Transformer; the official forward hard-codes (B, 16, 16, 256)
LATENT_SIDE = 16


class PlainDecoder(MultiHeadDecoderTransformer):
    """The VQ decoder with self-attention only (DAEFR's ``MultiHeadDecoder``; same layout as RestoreFormer's)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        h = self.conv_in(z)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        for i in reversed(range(len(self.up))):
            level = self.up[i]
            for j, block in enumerate(level.block):
                h = block(h)
                if len(level.attn):
                    h = level.attn[j](h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(_swish(self.norm_out(h)))


class DualVQ(nn.Module):
    """The ``vqvae`` of DAEFR (``VQVAEGANMERGE``): LQ, HQ and fixed-HQ encoders, three codebooks, one decoder."""

    def __init__(self, ch: int, ch_mult: tuple[int, ...], num_res_blocks: int, attn_resolutions: tuple[int, ...],
                 resolution: int, n_embed: int, embed_dim: int, z_channels: int, head_size: int) -> None:
        super().__init__()
        enc = (ch, ch_mult, num_res_blocks, attn_resolutions, 3, resolution, z_channels, head_size)
        self.encoder = MultiHeadEncoder(*enc)  # LQ branch
        self.HQ_encoder = MultiHeadEncoder(*enc)
        self.Fixed_encoder = MultiHeadEncoder(*enc)  # training only (ground-truth codes)
        self.decoder = PlainDecoder(ch, 3, ch_mult, num_res_blocks, attn_resolutions, resolution, z_channels,
                                    head_size)
        self.Fixed_quantize = VectorQuantizer(n_embed, embed_dim)  # the original HQ codebook: used for lookup
        self.HQ_quantize = VectorQuantizer(n_embed, embed_dim)  # training only
        self.LQ_quantize = VectorQuantizer(n_embed, embed_dim)  # training only
        self.quant_conv = nn.Conv2d(z_channels, embed_dim, 1)
        self.HQ_quant_conv = nn.Conv2d(z_channels, embed_dim, 1)
        self.Fixed_quant_conv = nn.Conv2d(z_channels, embed_dim, 1)  # training only
        self.post_quant_conv = nn.Conv2d(embed_dim, z_channels, 1)


class DAEFRNet(nn.Module):
    """DAEFR generator. Input (B, 3, S, S) in [-1, 1] with S = 16 * 2**(len(ch_mult) - 1) (512 as released)."""

    def __init__(
        self,
        ch: int = 64,
        ch_mult: tuple[int, ...] = (1, 2, 2, 4, 4, 8),
        num_res_blocks: int = 2,
        attn_resolutions: tuple[int, ...] = (16,),
        resolution: int = 512,
        n_embed: int = 1024,
        embed_dim: int = 256,
        head_size: int = 1,
        cross_heads: int = 8,
        dim_embd: int = 512,
        n_head: int = 8,
        n_layers: int = 9,
    ) -> None:
        super().__init__()
        self.size = LATENT_SIDE * 2 ** (len(ch_mult) - 1)
        self.vqvae = DualVQ(ch, tuple(ch_mult), num_res_blocks, tuple(attn_resolutions), resolution, n_embed,
                            embed_dim, embed_dim, head_size)
        self.cross_attention = MultiHeadAttnBlock(embed_dim, cross_heads)
        self.position_emb = nn.Parameter(torch.zeros(LATENT_SIDE * LATENT_SIDE, dim_embd))
        self.feat_emb = nn.Linear(embed_dim, dim_embd)
        self.ft_layers = nn.Sequential(
            *[TransformerSALayer(dim_embd, n_head, dim_mlp=2 * dim_embd) for _ in range(n_layers)])
        self.idx_pred_layer = nn.Sequential(nn.LayerNorm(dim_embd), nn.Linear(dim_embd, n_embed, bias=False))

    def code_indices(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, 3, S, S) -> (associated feature f (B, C, 16, 16), predicted HQ code per token (B, 256))."""
        if tuple(x.shape[-2:]) != (self.size, self.size):
            raise ValueError(f"DAEFR takes {self.size}x{self.size} inputs (a 16x16 token grid), "
                             f"got {tuple(x.shape[-2:])}")
        vq = self.vqvae
        z = vq.quant_conv(vq.encoder(x)[0])
        z_hq = vq.HQ_quant_conv(vq.HQ_encoder(x)[0])
        f = self.cross_attention(z_hq, z)
        q = self.feat_emb(f.flatten(2).permute(2, 0, 1))  # (L, B, E)
        pos = self.position_emb.unsqueeze(1)
        for layer in self.ft_layers:
            q = layer(q, query_pos=pos)
        logits = self.idx_pred_layer(q).permute(1, 0, 2)  # (B, L, N)
        # the official top-1 of the softmax (not of the logits): identical except where softmax rounding ties
        return f, torch.topk(torch.softmax(logits, dim=2), 1, dim=2).indices[..., 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, S, S) in [-1, 1] -> restored (B, 3, S, S), unclamped."""
        f, idx = self.code_indices(x)
        b, c = f.shape[:2]
        code = self.vqvae.Fixed_quantize.embedding.weight[idx]  # exact rows, as the one-hot matmul
        code = code.to(f.dtype).view(b, LATENT_SIDE, LATENT_SIDE, c).permute(0, 3, 1, 2)
        quant = f + (code - f)  # the official straight-through sum (its rounding, no gradient role here)
        return self.vqvae.decoder(self.vqvae.post_quant_conv(quant))
