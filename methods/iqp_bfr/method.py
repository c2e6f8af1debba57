"""The ``iqp-bfr`` method (IQPIR: CodeFormer with dual codebook + quality-score embedding).

Inference is the CodeFormer family's (:mod:`methods.codeformer_family`): aligned face, resized to
512 with cv2 INTER_LINEAR if needed -> ``net(x, w, [score], adain=True)``. IQPIR's release asks for
quality 0.85-0.9 (the top bins) and w = 0 with the dual-codebook fusion weight 0.5.
"""
from __future__ import annotations

from typing import Any

from bench.core.registry import METHODS
from methods.codeformer_family import CodeLookupMethod


@METHODS.register
class IQPMethod(CodeLookupMethod):
    """IQPIR (CVPR 2026): dual codebook + quality-score embedding, asked for the top quality bin."""

    name = "iqp-bfr"
    takes_quality = True
    weights = ("iqpir",)
    family = "iqp"
    description = "IQP (IQPIR release): CodeFormer + dual codebook + additive quality embedding, quality 0.9, w 0"
    config_name = "iqpir"
    weights_name = "iqpir"

    @classmethod
    def create(
        cls,
        weights: str | None = None,
        quality: float = 0.9,
        fidelity: float = 0.0,
        fusion: float = 0.5,
        adain: bool = True,
        **options: Any,
    ) -> IQPMethod:
        """Factory: ``weights`` a path, None (managed ``iqpir`` checkpoint) or "random" (stand-in).

        ``options``: seed (stand-in weights), device, config (a preset name for a
        checkpoint without a saved ``net_config``, e.g. ``tiny``).
        """
        return cls(weights, quality=quality, fidelity=fidelity, fusion=fusion, adain=adain, **options)

