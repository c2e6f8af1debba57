"""The ``vqfr`` method: VQFR v2 with the official aligned-face preprocessing, batched.

Official path (``VQFR_Demo.enhance`` of TencentARC/VQFR with ``has_aligned=True``): ``cv2.resize`` to
512 (INTER_LINEAR) -> ``/ 255`` -> BGR to RGB -> ``(x - 0.5) / 0.5`` -> ``VQFRv2(x, fidelity_ratio)
['main_dec']`` -> ``tensor2img(min_max=(-1, 1))``: clamp, ``(y + 1) / 2``, ``* 255`` rounded (the
runner's rounding). ``fidelity_ratio`` is demo.py's ``-f`` (default 0.0: best quality, 1: best
fidelity). VQFR is deterministic. Parity with the official code: tests/methods/vqfr/test_golden.py.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from bench import weights as W
from bench.core.registry import METHODS
from methods.base import RestorationMethod, check_unit, load_release_or_standin, seeded_normal
from methods.codeformer_family import resize_like_cv2
from methods.vqfr.arch import VQFRConfig, VQFRv2

WEIGHT_NAME = "vqfr-v2"
#: a tensor every VQFR v2 checkpoint has (tells a VQFR v2 file from another one)
_PROBE_KEY = "main_branch.align_func_dict.Level_1.dcn.conv_offset.weight"
_FETCH = "pass VQFR_v2.pth, or leave --weights out to use the managed one (`bfrbench fetch vqfr-v2`)"


def check_fidelity(fidelity_ratio: Any) -> float:
    """VQFR v2's ``fidelity_ratio`` as a float in [0, 1]; else one ValueError naming the fix."""
    return check_unit("vqfr", "fidelity_ratio", fidelity_ratio, "0 best quality, 1 best fidelity")


def extract_vqfr_state(obj: Any, path: str | Path = "<checkpoint>") -> dict[str, torch.Tensor]:
    """The weights of a loaded VQFR checkpoint: ``params_ema`` (as the official demo loads), else ``params``."""
    if isinstance(obj, dict):
        for key in ("params_ema", "params"):
            if isinstance(obj.get(key), dict):
                return obj[key]
        if _PROBE_KEY in obj:
            return obj
    keys = list(obj)[:6] if isinstance(obj, dict) else type(obj).__name__
    raise W.WeightsFileError(path, f"not a VQFR v2 checkpoint (no 'params_ema' / 'params'; top level: {keys})", _FETCH)


def standin_state_dict(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic random VQFR weights whose activations stay O(1), the output mostly inside [-1, 1].

    Norm scales near 1, biases near 0, convs and linears ``N(0, 1) / sqrt(fan_in)``; the deformable
    offset convs are damped so offsets are a pixel or two (every sampling path runs, none leaves
    the image), the code table is N(0, 1) and the two RGB heads are damped.
    """
    out: dict[str, torch.Tensor] = {}
    for name, shape in shapes.items():
        shape = tuple(shape)
        fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
        if len(shape) == 1:
            is_scale = name.endswith(".weight")  # GroupNorm / LayerNorm scales
            t = seeded_normal(name, shape, seed, 0.1, mean=1.0) if is_scale else seeded_normal(name, shape, seed, 0.02)
        elif name.startswith("quantizer."):
            t = seeded_normal(name, shape, seed, 1.0)
        elif name.endswith("conv_offset.weight"):
            t = seeded_normal(name, shape, seed, 0.3 / math.sqrt(fan_in))
        elif name.endswith("conv_out.2.weight") and name.startswith("decoder."):
            t = seeded_normal(name, shape, seed, 0.3 / math.sqrt(fan_in))
        else:
            t = seeded_normal(name, shape, seed, 1.0 / math.sqrt(fan_in))
        out[name] = t
    return out


@METHODS.register
class VQFRMethod(RestorationMethod):
    """VQFR v2 restoring aligned 512x512 faces in batches."""

    name = "vqfr"
    takes_quality = False
    weights = (WEIGHT_NAME,)
    family = "vqfr"
    description = "VQFR v2 (ECCV 2022, TencentARC/VQFR, Apache-2.0): codebook + parallel decoder, fidelity_ratio 0"

    def __init__(self, weights: str | None = None, fidelity_ratio: float = 0.0) -> None:
        fidelity_ratio = check_fidelity(fidelity_ratio)
        super().__init__(fidelity_ratio=fidelity_ratio)
        self.fidelity_ratio = fidelity_ratio
        self.net, self.weights_info = load_release_or_standin(
            WEIGHT_NAME, weights, self.build_net, extract_vqfr_state, standin_state_dict, "VQFR v2 network", _FETCH)

    def build_net(self) -> VQFRv2:
        """The network this method runs: the release configuration."""
        return VQFRv2(VQFRConfig())

    @torch.no_grad()
    def restore(self, lq: torch.Tensor) -> torch.Tensor:
        x = (resize_like_cv2(lq.to(self.device, torch.float32), self.input_size).contiguous() - 0.5) / 0.5
        y = self.net(x, fidelity_ratio=self.fidelity_ratio)  # in the engine's precision (its autocast)
        return (y.float().clamp(-1, 1) + 1) / 2
