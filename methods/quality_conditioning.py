"""Plug-and-play IQP quality conditioning for an existing codebook-lookup network.

IQP adds a binned quality-score embedding, ``Embedding(bins, C*H*W)`` looked up at
``floor(bins * score)`` and reshaped to the latent, to the encoder latent before the code
lookup. Because it is an addition, it can be bolted onto a trained network without changing
its structure: :class:`QualityConditioned` registers a forward hook on the module that emits
the latent (CodeFormer's last encoder layer, RestoreFormer++'s ``quant_conv``) and adds the
offset there. The embedding starts at zero, so the wrapped network is bit-identical to the
original until the embedding is fine-tuned, and the original checkpoint still loads with
``strict=True`` into ``wrapper.base``.

Methods ``codeformer+iqp``, ``restoreformer+++iqp`` and ``vqfr+iqp`` (base name + ``+iqp``; VQFR's
latent is its encoder output, read by the code-prediction head ``feat2index``) load the base
checkpoint and an optional embedding file written by the fine-tuning stage
(``bfrbench train methods/iqp_bfr/configs/finetune_*.yaml``).
"""
from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from bench.core.atomic import atomic_open
from methods.base import RestorationMethod, WeightsInfo, check_quality


def score_bins(score: torch.Tensor, bins: int) -> torch.Tensor:
    """IQP's bin of a [0, 1] score, ``floor(bins * s)``, clamped to the table."""
    return (score.float() * bins).floor().long().clamp(0, bins - 1)


def find_latent_module(net: nn.Module) -> nn.Module:
    """The submodule whose output is the latent that gets quantized."""
    quant_conv = getattr(net, "quant_conv", None)
    if isinstance(quant_conv, nn.Module):  # RestoreFormer(++) / taming VQGAN: encoder -> quant_conv -> quantize
        return quant_conv
    enc = getattr(net, "encoder", None)
    blocks = getattr(enc, "blocks", None)
    if isinstance(blocks, nn.ModuleList) and len(blocks):  # CodeFormer: encoder.blocks[-1] emits lq_feat
        return blocks[-1]
    raise ValueError(
        f"cannot find the encoder latent of {type(net).__name__}: pass latent_module= (the layer whose "
        "output is quantized)"
    )


class QualityConditioned(nn.Module):
    """``base_net`` with IQP's zero-initialised binned score embedding added to its encoder latent."""

    def __init__(
        self,
        base_net: nn.Module,
        num_bins: int = 10,
        latent_module: nn.Module | None = None,
        latent_shape: tuple[int, int, int] | None = None,
        input_size: int | None = None,
        straight_through: bool = True,
    ) -> None:
        super().__init__()
        self.base = base_net
        self.num_bins = int(num_bins)
        # kept out of the module tree (it already lives inside ``base``): no duplicate state-dict entries
        self.__dict__["_latent_module"] = latent_module if latent_module is not None else find_latent_module(base_net)
        self.latent_shape = tuple(latent_shape) if latent_shape else self._probe_latent_shape(input_size)
        self.score_embed = nn.Embedding(self.num_bins, math.prod(self.latent_shape))
        nn.init.zeros_(self.score_embed.weight)
        self._score: torch.Tensor | None = None
        self._st_active = False
        self._latent_module.register_forward_hook(self._add_offset)
        # RestoreFormer's quantizer passes no gradient to its input; while training, a hook gives it the
        # straight-through gradient ``z + (z_q - z).detach()`` so image losses reach the embedding
        quantizer = getattr(base_net, "quantize", None)
        if straight_through and isinstance(quantizer, nn.Module) and hasattr(base_net, "quant_conv"):
            quantizer.register_forward_hook(self._straight_through)

    def _probe_latent_shape(self, input_size: int | None) -> tuple[int, int, int]:
        """Latent (C, H, W): from the config when the base has one, else one forward on zeros."""
        cfg = getattr(self.base, "config", None)
        if cfg is not None and hasattr(cfg, "latent_res") and hasattr(cfg, "emb_dim"):
            return (cfg.emb_dim, cfg.latent_res, cfg.latent_res)
        size = input_size or getattr(cfg, "img_size", None) or 512
        seen: list[tuple[int, ...]] = []
        h = self._latent_module.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape[1:])))
        try:
            param = next(self.base.parameters())
            with torch.no_grad():
                self.base(torch.zeros(1, 3, size, size, device=param.device, dtype=param.dtype))
        finally:
            h.remove()
        if not seen or len(seen[0]) != 3:
            raise ValueError("could not measure the latent shape of the base network; pass latent_shape=(C, H, W)")
        return seen[0]  # type: ignore[return-value]

    def _add_offset(self, module: nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor | None:
        if self._score is None:
            return None  # unconditioned call: the base network exactly
        if output.shape[1:] != torch.Size(self.latent_shape):
            raise ValueError(f"latent of shape {tuple(output.shape[1:])} but the embedding was built for {self.latent_shape}")
        score = self._score.to(output.device)
        if score.numel() == 1:
            score = score.expand(output.shape[0])
        offset = self.score_embed(score_bins(score, self.num_bins))
        return output + offset.view(output.shape[0], *self.latent_shape).to(output.dtype)

    def _straight_through(self, module: nn.Module, inputs: Any, output: Any) -> Any:
        if not self._st_active:
            return None
        z = inputs[0]
        z_q, *rest = output if isinstance(output, tuple) else (output,)
        z_q = z + (z_q - z).detach()
        return (z_q, *rest) if isinstance(output, tuple) else z_q

    def embed(self, score: torch.Tensor) -> torch.Tensor:
        """The latent offsets (B, C, H, W) of scores (B,)."""
        return self.score_embed(score_bins(score, self.num_bins)).view(score.shape[0], *self.latent_shape)

    @contextlib.contextmanager
    def conditioned(self, score: torch.Tensor | float | None) -> Iterator[None]:
        """Within the block, every call of the base network is conditioned on ``score`` (one value or (B,))."""
        prev = self._score
        self._score = None if score is None else torch.as_tensor(score, dtype=torch.float32).reshape(-1)
        try:
            yield
        finally:
            self._score = prev

    def forward(self, x: torch.Tensor, score: torch.Tensor | float | None = None, **kwargs: Any) -> Any:
        """The base network's forward on x with the quality condition ``score``.

        ``score=None`` keeps the condition of an enclosing ``conditioned`` block (else: unconditioned);
        the condition in force before the call is restored after it.
        """
        prev = self._score, self._st_active
        if score is not None:
            s = torch.as_tensor(score, dtype=torch.float32, device=x.device).reshape(-1)
            if s.numel() == 1:
                s = s.expand(x.shape[0])
            if s.numel() != x.shape[0]:
                raise ValueError(f"score has {s.numel()} values for a batch of {x.shape[0]}")
            self._score = s
        self._st_active = self.training and torch.is_grad_enabled()
        try:
            return self.base(x, **kwargs)
        finally:
            self._score, self._st_active = prev

    # -- the embedding file --------------------------------------------------------------------
    def embedding_state(self, base_params: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
        """What a fine-tuning run saves: the table, its latent shape and any fine-tuned base tensors."""
        out: dict[str, Any] = {
            "score_embed.weight": self.score_embed.weight.detach().cpu(),
            "latent_shape": torch.tensor(self.latent_shape),
        }
        base_state = self.base.state_dict()
        for name in base_params:
            out[f"base.{name}"] = base_state[name].detach().cpu()
        return out

    def save_embedding(self, path: str | os.PathLike[str], base_params: list[str] | tuple[str, ...] = ()) -> None:
        with atomic_open(path, "wb") as fh:
            torch.save(self.embedding_state(base_params), fh)

    def load_embedding(self, source: str | os.PathLike[str] | dict[str, Any]) -> None:
        """Load an embedding file (or its dict); the latent shape and bin count must match."""
        state = source if isinstance(source, dict) else torch.load(source, map_location="cpu", weights_only=True)
        w = state.get("score_embed.weight")
        if w is None:
            raise ValueError(f"{source if not isinstance(source, dict) else 'embedding'}: no 'score_embed.weight' entry")
        if tuple(w.shape) != tuple(self.score_embed.weight.shape):
            raise ValueError(
                f"embedding table {tuple(w.shape)} does not fit this network ({self.num_bins} bins x latent "
                f"{self.latent_shape}); it was trained for another base network"
            )
        base_part = {k[len("base."):]: v for k, v in state.items() if k.startswith("base.")}
        unknown = sorted(set(base_part) - set(self.base.state_dict()))
        if unknown:
            raise ValueError(f"embedding file carries base tensors this network lacks: {unknown[:5]}")
        with torch.no_grad():
            self.score_embed.weight.copy_(w)
        if base_part:  # fine-tuned Transformer weights saved with the embedding
            self.base.load_state_dict(base_part, strict=False)


# -- the ``+iqp`` methods ------------------------------------------------------------------------
class PlugAndPlayIQP(RestorationMethod):
    """A registered base method whose network carries IQP's score embedding, asked for ``quality``."""

    takes_quality = True

    def __init__(self, base: RestorationMethod, name: str, quality: float = 0.9, embedding: str | None = None,
                 num_bins: int = 10, latent_module: nn.Module | None = None,
                 latent_shape: tuple[int, int, int] | None = None) -> None:
        quality = check_quality(name, quality)
        super().__init__(**base.params, quality=quality)
        self.name = name  # type: ignore[misc]
        self.base_method = base
        self.quality = float(quality)
        self.wrapper = QualityConditioned(base.net, num_bins=num_bins, latent_module=latent_module,
                                          latent_shape=latent_shape)
        self.input_size, self.output_size = base.input_size, base.output_size
        if embedding:
            from bench.weights import sha256_file

            self.wrapper.load_embedding(embedding)
            emb_info = WeightsInfo(name="iqp-embedding", path=str(embedding), sha256=sha256_file(embedding),
                                   note="IQP score embedding from `bfrbench train` (stage finetune)")
        else:
            emb_info = WeightsInfo(name="iqp-embedding", standin=True,
                                   note="zero (untrained) score embedding: outputs equal the base method's")
        self.weights_info = list(base.weights_info) + [emb_info]

    @torch.no_grad()
    def restore(self, lq: torch.Tensor) -> torch.Tensor:
        with self.wrapper.conditioned(self.quality):
            return self.base_method.restore(lq)


def create_codeformer_iqp(weights: str | None = None, quality: float = 0.9, embedding: str | None = None,
                          fidelity: float = 0.5, **options: Any) -> PlugAndPlayIQP:
    """CodeFormer + plug-and-play IQP conditioning (``weights``: the CodeFormer checkpoint; ``embedding``: the table)."""
    from methods.codeformer import create_codeformer

    return PlugAndPlayIQP(create_codeformer(weights, fidelity=fidelity, **options), "codeformer+iqp", quality, embedding)


def create_restoreformerpp_iqp(weights: str | None = None, quality: float = 0.9, embedding: str | None = None,
                               **options: Any) -> PlugAndPlayIQP:
    """RestoreFormer++ + plug-and-play IQP conditioning (score embedding on the latent before quantization)."""
    from methods.restoreformer.method import create_restoreformer_plusplus

    return PlugAndPlayIQP(create_restoreformer_plusplus(weights, **options), "restoreformer+++iqp", quality, embedding)


def vqfr_with_iqp(base: RestorationMethod, quality: float = 0.9, embedding: str | None = None) -> PlugAndPlayIQP:
    """A built VQFR method with IQP's score embedding added to the encoder latent (B, code_dim, S/32, S/32).

    That latent is what VQFR's code-prediction head (``feat2index``) reads: the codes decide the texture
    decoder's features, which every ``fidelity_ratio`` uses (at 0, the default, they are the whole output).
    """
    net = base.net
    side = base.input_size // 2 ** (net.cfg.levels - 1)
    return PlugAndPlayIQP(base, "vqfr+iqp", quality, embedding, latent_module=net.encoder,
                          latent_shape=(net.cfg.code_dim, side, side))


def create_vqfr_iqp(weights: str | None = None, quality: float = 0.9, embedding: str | None = None,
                    fidelity_ratio: float = 0.0) -> PlugAndPlayIQP:
    """VQFR v2 + plug-and-play IQP conditioning (``weights``: the VQFR v2 checkpoint; ``embedding``: the table)."""
    from methods.vqfr.method import VQFRMethod

    return vqfr_with_iqp(VQFRMethod(weights, fidelity_ratio=fidelity_ratio), quality, embedding)


def _register() -> None:
    from bench.core.registry import METHODS

    if "codeformer+iqp" not in METHODS:
        METHODS.add(
            "codeformer+iqp", create_codeformer_iqp, takes_quality=True, base="codeformer",
            weights=["codeformer"], family="codeformer",
            description="CodeFormer with IQP's binned quality embedding added to its encoder latent (plug-and-play)",
        )
    if "restoreformer+++iqp" not in METHODS:
        METHODS.add(
            "restoreformer+++iqp", create_restoreformerpp_iqp, takes_quality=True, base="restoreformer++",
            weights=["restoreformer++"], family="restoreformer",
            description="RestoreFormer++ with IQP's binned quality embedding added before quantization (plug-and-play)",
        )
    if "vqfr+iqp" not in METHODS:
        METHODS.add(
            "vqfr+iqp", create_vqfr_iqp, takes_quality=True, base="vqfr", weights=["vqfr-v2"], family="vqfr",
            description="VQFR v2 with IQP's binned quality embedding added to the latent its code predictor reads "
                        "(plug-and-play)",
        )


_register()
