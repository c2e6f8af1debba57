"""The ``gpen`` method: GPEN-BFR-512 with the official aligned-face preprocessing, batched.

Official path (``FaceGAN.process`` of yangxy/GPEN on an aligned face): ``cv2.resize`` to 512
(INTER_LINEAR) -> ``/ 255`` -> ``(x - 0.5) / 0.5`` -> BGR to RGB -> ``FullGenerator`` -> ``* 0.5 + 0.5``
-> clip to [0, 1]. GPEN is deterministic (its "noise" inputs are encoder features), so it needs no seed.
One difference is deliberate: the official ``tensor2img`` truncates (``astype(uint8)`` after ``* 255``),
which darkens every value by half a grey level on average; the runner rounds, as for every method.
Parity with the official code: tests/methods/gpen/test_golden.py.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bench import weights as W
from bench.core.registry import METHODS
from methods.base import RestorationMethod, load_release_or_standin, seeded_normal
from methods.codeformer_family import resize_like_cv2
from methods.gpen.arch import GPEN, fir_kernel

WEIGHT_NAME = "gpen-bfr-512"
#: a tensor every GPEN FullGenerator checkpoint has (tells a GPEN file from another one)
_PROBE_KEY = "final_linear.0.weight"


def build_gpen(size: int = 512) -> GPEN:
    """The GPEN-BFR-512 release configuration (FaceGAN: style 512, 8 MLP layers, multiplier 2, narrow 1)."""
    return GPEN(size=size, style_dim=512, n_mlp=8, channel_multiplier=2, narrow=1)


def extract_gpen_state(obj: Any, path: str | Path = "<checkpoint>") -> dict[str, torch.Tensor]:
    """The weights of a loaded GPEN checkpoint: the released files are bare state dicts."""
    if isinstance(obj, dict) and _PROBE_KEY in obj:
        return obj
    keys = list(obj)[:6] if isinstance(obj, dict) else type(obj).__name__
    raise W.WeightsFileError(
        path, f"not a GPEN checkpoint (no {_PROBE_KEY!r}; top level: {keys})",
        "pass GPEN-BFR-512.pth, or leave --weights out to use the managed one (`bfrbench fetch gpen-bfr-512`)",
    )


def standin_state_dict(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic random GPEN weights that keep activations O(1) and the output mostly inside [-1, 1].

    Weights are stored unscaled (equalised learning rate), so N(0, 1) is the natural scale; the mapping
    MLP's are N(0, 100) (its ``lr_mul`` 0.01), modulation biases sit near 1 as the official init, the
    concatenated-feature strengths are clearly non-zero so the encoder matters, and the RGB heads are
    damped so the seven-level RGB sum stays in range. Blur kernels are the fixed FIR filters.
    """
    out: dict[str, torch.Tensor] = {}
    for name, shape in shapes.items():
        shape = tuple(shape)
        if name.endswith("kernel"):  # x4 gain on the up-sampling filters, as the official buffers
            up = name.endswith("upsample.kernel") or name.endswith("conv.blur.kernel")
            t = fir_kernel(gain=4.0 if up else 1.0)
        elif name.startswith("generator.style.") and name.endswith("weight"):
            t = seeded_normal(name, shape, seed, 100.0)
        elif name.startswith("generator.style."):
            t = seeded_normal(name, shape, seed, 10.0)
        elif name.endswith("modulation.bias"):
            t = seeded_normal(name, shape, seed, 0.1, mean=1.0)
        elif name.endswith("noise.weight"):
            t = seeded_normal(name, shape, seed, 0.1, mean=0.5)
        elif ".to_rgb" in name and name.endswith("conv.weight"):
            t = seeded_normal(name, shape, seed, 0.12)
        elif name.endswith("bias"):
            t = seeded_normal(name, shape, seed, 0.05)
        else:
            t = seeded_normal(name, shape, seed, 1.0)
        out[name] = t
    return out


@METHODS.register
class GPENMethod(RestorationMethod):
    """GPEN-BFR-512 restoring aligned 512x512 faces in batches."""

    name = "gpen"
    takes_quality = False
    weights = (WEIGHT_NAME,)
    family = "gpen"
    description = "GPEN (CVPR 2021, yangxy/GPEN; no licence file) GPEN-BFR-512, GAN prior, official preprocessing"

    def __init__(self, weights: str | None = None) -> None:
        super().__init__()
        self.net, self.weights_info = load_release_or_standin(
            WEIGHT_NAME, weights, self.build_net, extract_gpen_state, standin_state_dict, "GPEN FullGenerator",
            "pass the official GPEN-BFR-512.pth, or leave --weights out to use the managed one "
            "(`bfrbench fetch gpen-bfr-512`)",
        )

    def build_net(self) -> GPEN:
        """The network this method runs: the release configuration at ``input_size``."""
        return build_gpen(self.input_size)

    @torch.no_grad()
    def restore(self, lq: torch.Tensor) -> torch.Tensor:
        x = (resize_like_cv2(lq.to(self.device, torch.float32), self.input_size).contiguous() - 0.5) / 0.5
        y = self.net(x)  # in the engine's precision (its autocast)
        return (y.float() * 0.5 + 0.5).clamp(0, 1)
