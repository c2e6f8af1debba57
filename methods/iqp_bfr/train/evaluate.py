"""Checks of a trained IQP network: what the quality condition does, measured on real outputs."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from methods.iqp_bfr.train.losses import split_logits


def load_lookup(path: str | Path, key: str = "params_ema", device: str | torch.device = "cpu") -> Any:
    """A CodeLookupNet from a trainer export (``net_g_latest.pth``), in eval mode."""
    from methods.codeformer_arch.config import config_from_dict
    from methods.codeformer_arch.network import CodeLookupNet

    obj = torch.load(path, map_location="cpu", weights_only=True)
    if "net_config" not in obj:
        raise ValueError(f"{path}: no net_config (not a bfrbench training export)")
    net = CodeLookupNet(config_from_dict(obj["net_config"]))
    net.load_state_dict(obj[key] if key in obj else obj["params"], strict=True)
    return net.eval().to(device)


def codes(logits: torch.Tensor) -> torch.Tensor:
    """Argmax codes of every codebook, stacked on the last axis (B, L, n_codebooks)."""
    return torch.stack([lg.argmax(-1) for lg in split_logits(logits).values()], -1)


@torch.no_grad()
def condition_sweep(
    net: Any,
    lq: torch.Tensor,
    scores: tuple[float, ...] = (0.1, 0.9),
    quality: Callable[[torch.Tensor], torch.Tensor] | None = None,
    w: float = 0.0,
    adain: bool = False,
) -> dict[str, Any]:
    """Outputs of ``net`` on ``lq`` ([-1, 1]) at several quality conditions.

    Returns per condition the mean ``quality`` of the outputs (images in [0, 1]), and the fraction
    of tokens whose code differs from the first condition's.
    """
    out: dict[str, Any] = {"scores": list(scores), "quality": [], "changed_vs_first": [], "images": []}
    first = None
    for s in scores:
        y, logits, _ = net(lq, w=w, score=float(s), adain=adain)
        img = (y.clamp(-1, 1) + 1) / 2
        c = codes(logits)
        first = c if first is None else first
        out["changed_vs_first"].append(float((c != first).float().mean()))
        out["quality"].append(float(quality(img).mean()) if quality is not None else float("nan"))
        out["images"].append(img)
    return out
