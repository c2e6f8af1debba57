"""The CodeFormer family's shared inference: batched official inference of a CodeLookupNet checkpoint
(``codeformer`` and ``iqp-bfr``), stand-in weights, checkpoint extraction and the cv2-exact resize
(also used by ``gfpgan`` and ``restoreformer``). Baselines import this, never the IQP method.

Official inference (inference_codeformer.py of both projects), which ``restore`` reproduces on
batches: aligned face, resized to 512 with cv2 INTER_LINEAR if needed -> RGB / 255 -> ``* 2 - 1``
-> ``net(x, w, [score], adain=True)`` -> ``clamp(-1, 1)`` -> ``(y + 1) / 2``; the runner rounds
``* 255`` as ``tensor2img`` does. IQPIR's release asks for quality 0.85-0.9 (the top bins) and
w = 0 with the dual-codebook fusion weight 0.5.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import torch

from bench import weights as W
from methods.base import RestorationMethod, WeightsInfo, check_quality
from methods.codeformer_arch.config import NetConfig, config_from_dict, get_config
from methods.codeformer_arch.network import CodeLookupNet


def standin_state_dict(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic random weights whose activations stay O(1): outputs neither constant nor saturated.

    Norm scales ~1, biases ~0, convs / linears ``0.5 / sqrt(fan_in)``, codebooks, score tables and
    the position embedding ``0.5 * N(0, 1)``; one generator, tensors drawn in state-dict order.
    """
    gen = torch.Generator().manual_seed(int(seed))
    out: dict[str, torch.Tensor] = {}
    for name, shape in shapes.items():
        t = torch.randn(tuple(shape), generator=gen, dtype=torch.float32)
        if len(shape) == 1:
            t = 1.0 + 0.1 * t if name.endswith(".weight") else 0.02 * t
        elif "embedding" in name or name.startswith(("score_embed", "position_emb")):
            t = 0.5 * t
        else:
            t = t * (0.5 / math.sqrt(math.prod(shape[1:])))
        out[name] = t
    return out


def extract_state(obj: Any, path: str | Path) -> tuple[dict[str, torch.Tensor], dict | None]:
    """(weights, saved NetConfig dict or None) from a release checkpoint or a trainer export."""
    if isinstance(obj, dict):
        cfg = obj.get("net_config") if isinstance(obj.get("net_config"), dict) else None
        for key in ("params_ema", "params"):
            if isinstance(obj.get(key), dict):
                return obj[key], cfg
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj, cfg
    keys = list(obj)[:6] if isinstance(obj, dict) else type(obj).__name__
    raise W.WeightsFileError(
        path, f"not a CodeFormer-family checkpoint (no 'params_ema' / 'params' entry; top level: {keys})",
        "pass the released .pth file or a bfrbench training export",
    )


def resize_like_cv2(lq: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (B, 3, H, W) [0, 1] to size x size as the official scripts do: cv2 INTER_LINEAR on uint8.

    The official code resizes the uint8 image it read; the runner's inputs are uint8 levels, so
    rounding to levels first reproduces it exactly. A no-op (no rounding) when already size x size.
    """
    if tuple(lq.shape[-2:]) == (size, size):
        return lq
    u8 = (lq.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = np.stack([cv2.resize(np.ascontiguousarray(im), (size, size), interpolation=cv2.INTER_LINEAR) for im in u8])
    return torch.from_numpy(out).to(lq.device).permute(0, 3, 1, 2).float() / 255.0


class CodeLookupMethod(RestorationMethod):
    """Batched official inference of a CodeLookupNet checkpoint (CodeFormer, IQPIR)."""

    #: preset of the released checkpoint, and the managed weights name
    config_name: ClassVar[str] = "codeformer"
    weights_name: ClassVar[str] = "codeformer"

    def __init__(
        self,
        weights: str | None = None,
        *,
        fidelity: float,
        quality: float | None = None,
        fusion: float | None = None,
        adain: bool = True,
        seed: int = 0,
        device: str | None = None,
        config: str | None = None,
    ) -> None:
        if not 0.0 <= float(fidelity) <= 1.0:
            raise ValueError(f"{self.name}: fidelity (CFT weight w) must be in [0, 1], got {fidelity}")
        quality = None if quality is None else check_quality(self.name, quality)
        super().__init__(fidelity=float(fidelity), adain=bool(adain))
        if quality is not None:
            self.params["quality"] = float(quality)
        if fusion is not None:
            self.params["fusion"] = float(fusion)
        if config is not None:
            self.params["config"] = config
        if weights == "random":
            self.params["seed"] = int(seed)
        self.fidelity, self.quality, self.adain = float(fidelity), quality, bool(adain)

        state, saved_cfg, info = self._load_weights(weights, int(seed))
        cfg = config_from_dict(saved_cfg) if saved_cfg else get_config(config or self.config_name)
        cfg = self._adapt_config(cfg, fusion)
        self.net = CodeLookupNet(cfg)
        if state is None:
            shapes = {k: tuple(v.shape) for k, v in self.net.state_dict().items()}
            state = standin_state_dict(shapes, int(seed))
        try:
            self.net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise W.WeightsFileError(
                info.path, f"does not match the {cfg.name} architecture ({str(exc).splitlines()[0]} ...)",
                f"pass a {self.name} checkpoint, or leave --weights out to use the managed one "
                f"(`bfrbench fetch {self.weights_name}`)",
            ) from exc
        self.net.eval().requires_grad_(False)
        self.weights_info = [info]
        self.input_size = self.output_size = cfg.img_size
        if self.net.n_scores and quality is None:
            raise ValueError(f"{self.name}: this network is quality-conditioned; pass quality in [0, 1]")
        if not self.net.n_scores and quality is not None:
            if not self.takes_quality:
                raise ValueError(f"{self.name}: {cfg.name} has no quality conditioning; leave quality unset")
            self.params.pop("quality")  # an unconditioned export run as iqp-bfr: the default does not apply
        if device is not None:
            self.to(device)

    def _adapt_config(self, cfg: NetConfig, fusion: float | None) -> NetConfig:
        changes: dict[str, Any] = {}
        if fusion is not None and cfg.quantizer == "dual":
            changes["aesthetic_weight"] = float(fusion)
        else:  # one codebook (e.g. a trained single-codebook export): the fusion weight does not apply
            self.params.pop("fusion", None)
        return cfg.replace(**changes) if changes else cfg

    def _load_weights(self, weights: str | None, seed: int) -> tuple[dict | None, dict | None, WeightsInfo]:
        if weights == "random":
            note = f"deterministic random stand-in weights (seed {seed})"
            return None, None, WeightsInfo(name=self.weights_name, standin=True, note=note)
        path = W.resolve(self.weights_name, weights)
        state, cfg = extract_state(W.load_state_dict(path), path)
        return state, cfg, WeightsInfo(name=self.weights_name, path=str(path), sha256=W.sha256_file(path))

    def _use_exact_ops(self, exact: bool) -> None:
        """The reference's exact float ops in fp32; the fused kernels under the engine's autocast.

        Under reduced precision bit-exactness is gone anyway; a checkpoint whose config asks for
        fused ops keeps them in fp32 too.
        """
        exact = exact and self.net.config.exact_ops
        if getattr(self, "_exact_now", None) == exact:
            return
        for module in self.net.modules():
            if isinstance(getattr(module, "exact", None), bool):
                module.exact = exact
            if isinstance(getattr(module, "need_weights", None), bool):
                module.need_weights = exact
        self._exact_now = exact

    @torch.no_grad()
    def restore(self, lq: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> (B, 3, S, S) in [0, 1] (S = 512 for the released networks)."""
        if lq.dim() != 4 or lq.shape[1] != 3:
            raise ValueError(f"{self.name}: expected a (B, 3, H, W) RGB batch, got shape {tuple(lq.shape)}")
        device = self.device
        x = resize_like_cv2(lq.to(device, torch.float32), self.input_size) * 2 - 1
        score = self.quality if self.net.n_scores else None
        # precision is the engine's (its autocast), never the method's
        self._use_exact_ops(not torch.is_autocast_enabled(device.type))
        out = self.net(x, w=self.fidelity, score=score, adain=self.adain)[0]
        return (out.float().clamp(-1, 1) + 1) / 2
