"""The CodeFormer-family networks: the stage-1 VQ autoencoder and the code-lookup network.

``CodeLookupNet`` covers CodeFormer (one codebook, no score) and IQPIR (dual codebook, additive
score embedding), plus the multi-IQA and AdaLN variants, from one ``NetConfig``. Module names
follow the released checkpoints (``encoder``, ``quantize``, ``quantize_aesthetic``, ``generator``,
``position_emb``, ``feat_emb``, ``score_embed``, ``ft_layers``, ``idx_pred_layer``,
``fuse_convs_dict``), so they load with ``strict=True``. Inputs are RGB in [-1, 1].
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from methods.codeformer_arch.cft import FuseSFTBlock
from methods.codeformer_arch.codebook import VectorQuantizer, dual_lookup, dual_quantize, score_gate
from methods.codeformer_arch.config import NetConfig, get_config
from methods.codeformer_arch.transformer import (
    AdaLNScoreEncoder,
    BinnedScoreEmbedding,
    MultiBinnedScoreEmbedding,
    TransformerSALayer,
    as_score_tensor,
)
from methods.codeformer_arch.vqgan import Encoder, Generator


def calc_mean_std(feat: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and std (unbiased variance + eps), as the reference AdaIN."""
    b, c = feat.shape[:2]
    flat = feat.reshape(b, c, -1)
    std = (flat.var(dim=2) + eps).sqrt().view(b, c, 1, 1)
    return flat.mean(dim=2).view(b, c, 1, 1), std


def adaptive_instance_normalization(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Give ``content`` the channel statistics of ``style`` (colour / illumination of the input).

    Computed in float32 (under autocast too) and returned in ``content``'s dtype.
    """
    dtype = content.dtype
    content, style = content.float(), style.float()
    style_mean, style_std = calc_mean_std(style)
    content_mean, content_std = calc_mean_std(content)
    return ((content - content_mean) / content_std * style_std + style_mean).to(dtype)


def _resolve(config: NetConfig | str) -> NetConfig:
    return get_config(config) if isinstance(config, str) else config


class VQAutoEncoder(nn.Module):
    """Stage-1 VQGAN: encoder -> codebook(s) -> generator (``vqgan_code1024.pth`` layout)."""

    def __init__(self, config: NetConfig | str = "vqgan_stage1") -> None:
        super().__init__()
        cfg = _resolve(config)
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.quantize = VectorQuantizer(cfg.codebook_size, cfg.emb_dim, cfg.beta)
        if cfg.quantizer == "dual":
            self.quantize_aesthetic = VectorQuantizer(cfg.codebook_size, cfg.emb_dim, cfg.beta)
        self.generator = Generator(cfg)

    @property
    def is_dual(self) -> bool:
        return self.config.quantizer == "dual"

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a clear error unless x is (B, C, img_size, img_size)."""
        s, c = self.config.img_size, self.config.in_channels
        if x.dim() != 4 or x.shape[1] != c or tuple(x.shape[-2:]) != (s, s):
            raise ValueError(
                f"{self.config.name}: expected input of shape (B, {c}, {s}, {s}) in [-1, 1], got {tuple(x.shape)}; "
                f"resize aligned faces to {s}x{s} first"
            )

    def quantize_latent(
        self, z: torch.Tensor, score: torch.Tensor | float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Encoder latent -> (quantized latent, codebook loss, stats) with the dual-codebook gate."""
        if not self.is_dual:
            quant, loss, stats = self.quantize(z)
            return quant, loss.mean(), stats
        if score is None and self.training:
            raise ValueError(
                f"{self.config.name}: the dual codebook needs the quality score of each training image "
                "(score=...) to gate the HQ branch"
            )
        gate = score_gate(score, z.shape[0], self.config.aesthetic_threshold, z.device)
        return dual_quantize(self.quantize, self.quantize_aesthetic, z, gate, self.config.aesthetic_weight)

    def forward(
        self, x: torch.Tensor, score: torch.Tensor | float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        """x in [-1, 1] -> (reconstruction, codebook loss, quant stats).

        For the dual codebook, ``score`` (one per image, normalised to [0, 1]) opens the HQ branch
        where it exceeds ``aesthetic_threshold``; in eval mode None opens it for every image.
        """
        self.check_input(x)
        quant, loss, stats = self.quantize_latent(self.encoder(x), score)
        return self.generator(quant), loss, stats

    @torch.no_grad()
    def code_indices(self, x: torch.Tensor) -> torch.Tensor:
        """Nearest codes of x's latent: (B, L), or (B, L, 2) [HQ, common] for the dual codebook.

        These are the stage-2 cross-entropy targets (same layout as CodeLookupNet's logits).
        """
        z = self.encoder(x)
        common, _ = self.quantize.nearest(z)
        if not self.is_dual:
            return common
        hq, _ = self.quantize_aesthetic.nearest(z)
        return torch.stack([hq, common], dim=-1)


class CodeLookupNet(VQAutoEncoder):
    """Stage 2/3: LQ encoder + Transformer predicting codebook indices + frozen generator + CFT."""

    def __init__(self, config: NetConfig | str = "codeformer") -> None:
        cfg = _resolve(config)
        super().__init__(cfg)
        latent_shape = (cfg.emb_dim, cfg.latent_res, cfg.latent_res)
        self.position_emb = nn.Parameter(torch.zeros(cfg.latent_size, cfg.dim_embd))
        self.feat_emb = nn.Linear(cfg.emb_dim, cfg.dim_embd)
        cond_dim = None
        if cfg.score_cond == "add":
            self.score_embed = BinnedScoreEmbedding(cfg.score_bins, latent_shape)
        elif cfg.score_cond == "add_multi":
            self.score_embed = MultiBinnedScoreEmbedding(cfg.score_bins_list, latent_shape)
        elif cfg.score_cond == "adaln":
            self.score_embed = AdaLNScoreEncoder(self.n_scores, cfg.adaln_cond_dim)
            cond_dim = cfg.adaln_cond_dim
        self.ft_layers = nn.Sequential(
            *[
                TransformerSALayer(
                    cfg.dim_embd,
                    cfg.n_head,
                    cfg.dim_mlp,
                    dropout=0.0,
                    cond_dim=cond_dim,
                    gate_offset=cfg.adaln_gate_offset,
                    need_weights=cfg.exact_ops,
                )
                for _ in range(cfg.n_layers)
            ]
        )
        self.idx_pred_layer = nn.Sequential(
            nn.LayerNorm(cfg.dim_embd), nn.Linear(cfg.dim_embd, cfg.codebook_size * cfg.n_codebooks, bias=False)
        )
        self.fuse_convs_dict = nn.ModuleDict(
            {
                s: FuseSFTBlock(cfg.channels[int(s)], cfg.channels[int(s)], cfg.norm_groups, cfg.norm_eps, cfg.exact_ops)
                for s in cfg.connect_list
            }
        )
        self._enc_taps = {self.encoder.fuse_index[int(s)]: s for s in cfg.connect_list}
        self._dec_taps = {self.generator.fuse_index[int(s)]: s for s in cfg.connect_list}

    # --- aliases used by training code ---
    @property
    def fuse_convs(self) -> nn.ModuleDict:
        """The CFT blocks (checkpoint name ``fuse_convs_dict``)."""
        return self.fuse_convs_dict

    @property
    def transformer(self) -> nn.Sequential:
        """The Transformer layers (checkpoint name ``ft_layers``)."""
        return self.ft_layers

    @property
    def n_scores(self) -> int:
        """Number of score values per image the network is conditioned on (0: none)."""
        cfg = self.config
        if cfg.score_cond == "none":
            return 0
        return len(cfg.score_bins_list) if cfg.score_bins_list else 1

    # --- pieces of the forward pass ---
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x -> (LQ latent, encoder features tapped for the CFT blocks, by size key)."""
        taps: dict[str, torch.Tensor] = {}
        for i, block in enumerate(self.encoder.blocks):
            x = block(x)
            if i in self._enc_taps:
                taps[self._enc_taps[i]] = x
        return x, taps

    def condition(
        self, lq_feat: torch.Tensor, score: torch.Tensor | float | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Apply the quality condition: (latent with the score offset added, AdaLN condition or None)."""
        if self.n_scores == 0:
            if score is not None:
                raise ValueError(f"{self.config.name} has no quality conditioning: call it with score=None")
            return lq_feat, None
        if score is None:
            raise ValueError(
                f"{self.config.name} is quality-conditioned: pass score in [0, 1] "
                f"({'one per image' if self.n_scores == 1 else f'{self.n_scores} per image'}); 0.9 asks for the best quality"
            )
        s = as_score_tensor(score, lq_feat.shape[0], lq_feat.device, self.n_scores)
        if self.config.score_cond == "adaln":
            return lq_feat, self.score_embed(s)
        return self.score_embed.add_to(lq_feat, s), None

    def predict_logits(self, lq_feat: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Latent (B, C, H, W) -> code logits (B, L, N), or (B, L, N, 2) [HQ, common] for the dual codebook."""
        pos = self.position_emb.unsqueeze(1)  # (L, 1, E), broadcast over the batch
        q = self.feat_emb(lq_feat.flatten(2).permute(2, 0, 1))  # (L, B, E)
        for layer in self.ft_layers:
            q = layer(q, query_pos=pos, cond=cond)
        logits = self.idx_pred_layer(q)  # (L, B, N * k)
        if self.is_dual:
            return logits.reshape(logits.shape[0], logits.shape[1], -1, 2).permute(1, 0, 2, 3)
        return logits.permute(1, 0, 2)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Code indices (B, L) or (B, L, 2) -> quantized latent (B, C, H, W) (dual: common + a * HQ)."""
        hw = (self.config.latent_res, self.config.latent_res)
        if self.is_dual:
            return dual_lookup(self.quantize, self.quantize_aesthetic, indices, self.config.aesthetic_weight, hw)
        return self.quantize.lookup(indices, hw)

    def decode(self, quant: torch.Tensor, enc_feats: dict[str, torch.Tensor], w: float = 0.0) -> torch.Tensor:
        """Quantized latent -> image, CFT-fusing the (detached) encoder features with fidelity weight w."""
        x = quant
        for i, block in enumerate(self.generator.blocks):
            x = block(x)
            if w > 0 and i in self._dec_taps:
                key = self._dec_taps[i]
                x = self.fuse_convs_dict[key](enc_feats[key].detach(), x, w)
        return x

    def forward(
        self,
        x: torch.Tensor,
        w: float = 0.0,
        score: torch.Tensor | float | None = None,
        adain: bool = False,
        return_logits: bool = False,
        detach_16: bool = True,
    ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """x in [-1, 1] -> (out, logits, lq_feat).

        ``w``: CFT fidelity weight (0 = codebook only). ``score``: quality condition in [0, 1]
        (required by quality-conditioned configs). ``adain``: match the looked-up latent's channel
        statistics to the LQ latent (the released inference does). ``return_logits``: stage-II
        training, stop after the Transformer and return ``(None, logits, lq_feat)``.
        ``detach_16``: no gradient through the looked-up latent (stage III); with False and a
        ``straight_through`` config the gradient reaches ``lq_feat`` (IQP discrete quality
        optimisation), without it the codebook (as in CodeFormer's code).
        ``lq_feat`` includes the additive score offset, as in the reference.
        """
        self.check_input(x)
        lq_feat, enc_feats = self.encode(x)
        lq_feat, cond = self.condition(lq_feat, score)
        logits = self.predict_logits(lq_feat, cond)
        if return_logits:
            return None, logits, lq_feat
        quant = self.lookup(logits.argmax(dim=2))
        if self.config.straight_through:
            quant = lq_feat + (quant - lq_feat).detach()
        if detach_16:
            quant = quant.detach()
        if adain:
            quant = adaptive_instance_normalization(quant, lq_feat)
        return self.decode(quant, enc_feats, w), logits, lq_feat

    # --- weights ---
    def load_stage1(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load a stage-1 VQGAN (encoder, codebook(s), generator) strictly; the rest is left as is."""
        prefixes = ("encoder.", "quantize.", "quantize_aesthetic.", "generator.")
        own = {k for k in self.state_dict() if k.startswith(prefixes)}
        given = {k for k in state_dict if k.startswith(prefixes)}
        missing, unexpected = sorted(own - given), sorted(given - own)
        if missing or unexpected:
            raise ValueError(
                f"stage-1 checkpoint does not match {self.config.name}: missing {missing[:5]} "
                f"unexpected {unexpected[:5]} (is it the right codebook type?)"
            )
        self.load_state_dict({k: state_dict[k] for k in given}, strict=False)

    def freeze(self, *modules: str) -> None:
        """Stop gradients for the named submodules (e.g. ``"quantize", "generator"`` in stage 2)."""
        for name in modules:
            for p in getattr(self, name).parameters():
                p.requires_grad_(False)


def build_network(config: NetConfig | str) -> VQAutoEncoder:
    """A VQAutoEncoder (``arch="vqgan"``) or CodeLookupNet (``arch="lookup"``) from a config or its name."""
    cfg = _resolve(config)
    return VQAutoEncoder(cfg) if cfg.arch == "vqgan" else CodeLookupNet(cfg)
