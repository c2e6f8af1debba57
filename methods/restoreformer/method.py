"""The ``restoreformer`` and ``restoreformer++`` methods, with the official inference preprocessing, batched.

Official path (``RestoreFormer.enhance`` on an aligned face): resize to 512 with cv2 INTER_LINEAR if
needed -> RGB / 255 -> ``x * 2 - 1`` -> net -> ``clamp(-1, 1)`` -> ``(y + 1) / 2``; the runner rounds
``* 255`` as ``tensor2img`` does. The network is deterministic (no noise, no sampling). Parity:
tests/methods/restoreformer/test_parity.py (RestoreFormer) and tests/methods/restoreformer/test_golden.py (RestoreFormer++).

Checkpoints: the releases are PyTorch-Lightning files whose ``state_dict`` holds the generator under
``vqvae.`` next to training-only modules (loss, discriminator). The official loader strips the prefix
and loads with ``strict=False``; here the ``vqvae.`` entries are selected, the known training-only
buffer ``quantize.utility_counter`` is dropped, and the rest must match exactly (``strict=True``).
A bare state dict, or GFPGAN's re-release (``params_ema`` / ``params``), loads the same way.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from bench import weights as W
from bench.core.registry import METHODS
from methods.base import RestorationMethod, WeightsInfo, seeded_normal, state_dict_mismatch
from methods.codeformer_family import resize_like_cv2
from methods.restoreformer.arch import VQVAEGANMultiHeadTransformer

#: checkpoint names in the weights catalogue (bench/weights/catalogue.py is the one source of URLs and hashes)
WEIGHT_NAMES = {"restoreformer": "restoreformer", "restoreformer++": "restoreformer++"}

#: architecture settings of the two releases (RestoreFormer/RestoreFormer.py in the official repo)
VARIANTS: dict[str, dict[str, int]] = {
    "restoreformer": {"head_size": 8, "ex_multi_scale_num": 0},
    "restoreformer++": {"head_size": 4, "ex_multi_scale_num": 1},
}
#: buffers of the released checkpoints that the inference network does not have
TRAINING_ONLY_KEYS = ("quantize.utility_counter",)
_PLUSPLUS_KEY = "decoder.up.4.attn.0.q.weight"  # decoder attention at 32x32 exists only in RestoreFormer++


def build_restoreformer(variant: str) -> VQVAEGANMultiHeadTransformer:
    """The released configuration of ``restoreformer`` or ``restoreformer++``."""
    return VQVAEGANMultiHeadTransformer(**VARIANTS[variant])


def extract_restoreformer_state(obj: Any, path: str | Path = "<checkpoint>") -> tuple[dict[str, torch.Tensor], list[str]]:
    """The generator's weights from a loaded checkpoint, and the names of the entries left out."""
    if not isinstance(obj, dict):
        raise W.WeightsFileError(path, f"not a RestoreFormer checkpoint (a {type(obj).__name__}, not a dict)",
                                 "pass RestoreFormer.ckpt / RestoreFormer++.ckpt")
    state = obj
    for key in ("state_dict", "params_ema", "params"):
        if isinstance(obj.get(key), dict):
            state = obj[key]
            break
    dropped: list[str] = []
    if any(k.startswith("vqvae.") for k in state):
        dropped = [k for k in state if not k.startswith("vqvae.")]
        state = {k[len("vqvae.") :]: v for k, v in state.items() if k.startswith("vqvae.")}
    for key in TRAINING_ONLY_KEYS:
        if key in state:
            dropped.append(f"vqvae.{key}")
            state = {k: v for k, v in state.items() if k != key}
    if "encoder.conv_in.weight" not in state:
        raise W.WeightsFileError(
            path, "not a RestoreFormer checkpoint (no 'encoder.conv_in.weight' under 'state_dict' with or "
            "without the 'vqvae.' prefix)",
            "pass RestoreFormer.ckpt / RestoreFormer++.ckpt, or leave --weights out to use the managed one "
            "(`bfrbench fetch restoreformer++`)",
        )
    return state, dropped


def standin_state_dict(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic random RestoreFormer(++) weights whose outputs are in range and not constant.

    GroupNorm affines sit around (1, 0), convolutions get 1/sqrt(fan_in) scales, attention output
    projections and the final conv are damped, and the codebook matches the latent's scale so
    quantisation picks many different entries.
    """
    out: dict[str, torch.Tensor] = {}
    for name, shape in shapes.items():
        shape = tuple(shape)
        leaf = name.rsplit(".", 2)[-2] if name.count(".") else name
        if name == "quantize.embedding.weight":
            t = seeded_normal(name, shape, seed, 0.5)
        elif leaf.startswith("norm"):
            t = seeded_normal(name, shape, seed, 0.1, mean=1.0 if name.endswith("weight") else 0.0)
        elif name.endswith("bias"):
            t = seeded_normal(name, shape, seed, 0.05)
        else:
            gain = 0.5 if leaf == "proj_out" or name == "decoder.conv_out.weight" else 1.0
            t = seeded_normal(name, shape, seed, gain / np.sqrt(np.prod(shape[1:])))
        out[name] = t
    return out


class _RestoreFormerBase(RestorationMethod):
    """RestoreFormer(++) restoring aligned 512x512 faces in batches."""

    variant: ClassVar[str] = ""
    takes_quality = False

    def __init__(self, weights: str | None = None) -> None:
        super().__init__()
        spec = W.WEIGHTS[WEIGHT_NAMES[self.variant]]
        path = None if weights == "random" else W.resolve(spec.name, weights)  # fail fast, before building
        self.net = self.build_net()
        if path is None:
            shapes = {k: tuple(v.shape) for k, v in self.net.state_dict().items()}
            self.net.load_state_dict(standin_state_dict(shapes), strict=True)
            self.weights_info = [WeightsInfo(name=spec.name, standin=True, note="deterministic random stand-in weights")]
        else:
            state, dropped = extract_restoreformer_state(W.load_state_dict(path), path)
            self._load_strict(state, path)
            note = f"left out {len(dropped)} training-only entries" if dropped else ""
            self.weights_info = [WeightsInfo(name=spec.name, path=str(path), sha256=W.sha256_file(path), note=note)]
        self.net.eval()

    def build_net(self) -> VQVAEGANMultiHeadTransformer:
        """The network this method runs: the released configuration of this variant."""
        return build_restoreformer(self.variant)

    def _load_strict(self, state: dict[str, torch.Tensor], path: str | Path) -> None:
        """``strict=True`` load; a mismatch names the file, and the other variant when that is the cause."""
        try:
            self.net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            other = "restoreformer++" if _PLUSPLUS_KEY in state else "restoreformer"
            hint = (
                f"it looks like a {other} checkpoint: use the method {other!r}"
                if other != self.variant
                else "pass an official checkpoint or fetch it again with `bfrbench fetch " + self.variant + "`"
            )
            raise W.WeightsFileError(
                path, f"does not match the {self.variant} architecture ({state_dict_mismatch(self.net, state)})", hint
            ) from exc

    @torch.no_grad()
    def restore(self, lq: torch.Tensor) -> torch.Tensor:
        x = resize_like_cv2(lq.to(self.device, torch.float32), self.input_size).contiguous() * 2 - 1
        y = self.net(x)  # in the engine's precision (its autocast), which the method does not choose
        return (y.float().clamp(-1, 1) + 1) / 2


@METHODS.register
class RestoreFormerMethod(_RestoreFormerBase):
    """RestoreFormer (8 heads, decoder cross-attention at 16x16)."""

    name = "restoreformer"
    weights = ("restoreformer",)
    family = "restoreformer"
    description = "RestoreFormer (VQ codebook prior + multi-head cross-attention), official preprocessing, batched"
    variant = "restoreformer"


@METHODS.register
class RestoreFormerPlusPlusMethod(_RestoreFormerBase):
    """RestoreFormer++ (4 heads, decoder cross-attention at 16x16 and 32x32)."""

    name = "restoreformer++"
    weights = ("restoreformer++",)
    family = "restoreformer"
    description = "RestoreFormer++ (multi-scale cross-attention to a VQ codebook prior), official preprocessing, batched"
    variant = "restoreformer++"


def create_restoreformer_plusplus(weights: str | None = None, **params: Any) -> RestoreFormerPlusPlusMethod:
    """Factory: ``weights`` is a path, None (managed checkpoint) or "random"."""
    return RestoreFormerPlusPlusMethod(weights=weights, **params)

