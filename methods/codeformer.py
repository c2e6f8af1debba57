"""The ``codeformer`` baseline: CodeFormer v0.1.0 (Zhou et al., NeurIPS 2022), official inference, batched.

Loads ``codeformer.pth`` (``params_ema``) strictly into the shared CodeFormer-family network
(methods/codeformer_arch) and runs the official aligned-face path: RGB [0, 1] -> ``* 2 - 1`` ->
``net(x, w, adain=True)`` -> ``clamp(-1, 1)`` -> ``(y + 1) / 2`` (the runner rounds ``* 255``).
``fidelity`` is CodeFormer's w (0.5 in the official script): 0 uses the codebook only, 1 follows
the input most closely.
"""
from __future__ import annotations

from typing import Any

from bench.core.registry import METHODS
from methods.codeformer_family import CodeLookupMethod


@METHODS.register
class CodeFormerMethod(CodeLookupMethod):
    """CodeFormer v0.1.0 restoring aligned 512x512 faces in batches."""

    name = "codeformer"
    takes_quality = False
    weights = ("codeformer",)
    family = "codeformer"
    description = "CodeFormer v0.1.0 (codebook lookup Transformer + CFT), official preprocessing, w 0.5, batched"
    config_name = "codeformer"
    weights_name = "codeformer"

    @classmethod
    def create(
        cls, weights: str | None = None, fidelity: float = 0.5, adain: bool = True, **options: Any
    ) -> CodeFormerMethod:
        """Factory: ``weights`` a path, None (managed ``codeformer`` checkpoint) or "random" (stand-in).

        ``options``: seed (stand-in weights), device, config (preset name, e.g. ``tiny_codeformer``).
        """
        return cls(weights, fidelity=fidelity, adain=adain, **options)


create_codeformer = CodeFormerMethod.create
