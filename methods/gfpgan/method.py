"""The ``gfpgan`` method: GFPGAN v1.4 (or v1.3) with the official inference preprocessing, batched.

Official path (``GFPGANer.enhance`` on an aligned face): resize to 512 with cv2 INTER_LINEAR if
needed -> RGB / 255 -> ``x * 2 - 1`` -> net -> ``clamp(-1, 1)`` -> ``(y + 1) / 2``; the runner then
rounds ``* 255`` as ``tensor2img`` does. Parity with the official code is tested in
tests/methods/gfpgan/test_parity.py.

Two facts about the official code that this wrapper makes explicit:

* ``weight`` (0.5 by default in ``GFPGANer.enhance``) is passed to ``GFPGANv1Clean.forward`` and
  swallowed by its ``**kwargs``: it has no effect for v1.3/v1.4, so this method has no such parameter.
* The decoder injects fresh Gaussian noise at every call (``randomize_noise=True``), so the official
  output is random. ``noise="seeded"`` (default) draws that noise per image from a generator seeded
  with ``seed``, in the official order and shapes: results are reproducible, independent of batch
  size and sharding, and equal to the official CPU output after ``torch.manual_seed(seed)``.
  ``noise="stored"`` uses the checkpoint's fixed noise maps (the official ``randomize_noise=False``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench import weights as W
from bench.core.registry import METHODS
from methods.base import RestorationMethod, WeightsInfo, seeded_normal, state_dict_mismatch
from methods.codeformer_family import resize_like_cv2
from methods.gfpgan.arch import GFPGANv1Clean

#: checkpoint names in the weights catalogue (bench/weights/catalogue.py is the one source of URLs and hashes)
WEIGHT_NAMES = {"1.4": "gfpgan-v1.4", "1.3": "gfpgan-v1.3"}

NOISE_MODES = ("seeded", "stored")

#: the state dict a GFPGANv1Clean checkpoint must provide (a quick test that a file is a GFPGAN one)
_PROBE_KEY = "conv_body_first.weight"


def build_gfpgan(out_size: int = 512) -> GFPGANv1Clean:
    """The v1.3 / v1.4 release configuration of GFPGANv1Clean."""
    return GFPGANv1Clean(out_size=out_size, num_style_feat=512, channel_multiplier=2, num_mlp=8, different_w=True)


def extract_gfpgan_state(obj: Any, path: str | Path = "<checkpoint>") -> dict[str, torch.Tensor]:
    """Pick the weights from a loaded checkpoint: ``params_ema``, else ``params``, else a bare state dict."""
    if isinstance(obj, dict):
        for key in ("params_ema", "params"):
            if key in obj and isinstance(obj[key], dict):
                return obj[key]
        if _PROBE_KEY in obj:
            return obj
    keys = list(obj)[:6] if isinstance(obj, dict) else type(obj).__name__
    raise W.WeightsFileError(
        path, f"not a GFPGAN checkpoint (no 'params_ema' / 'params' entry and no {_PROBE_KEY!r}; top level: {keys})",
        "pass a GFPGANv1.3/v1.4 .pth file, or leave --weights out to use the managed one (`bfrbench fetch gfpgan-v1.4`)",
    )


def standin_state_dict(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic random GFPGAN weights with scales that keep outputs in range and non-constant.

    ``shapes`` maps names to shapes (from a model or a manifest). Convolutions get He-style scales,
    modulation biases sit around 1 (as the official init), RGB heads are damped so the 7-level RGB sum
    stays mostly inside [-1, 1], and noise strengths are small but non-zero so noise matters.
    """
    out: dict[str, torch.Tensor] = {}
    for name, shape in shapes.items():
        shape = tuple(shape)
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        if name.endswith("modulated_conv.weight"):  # (1, out, in, k, k)
            fan = shape[2] * shape[3] * shape[4]
            gain = 0.25 if ".to_rgb" in name else 1.0
            t = seeded_normal(name, shape, seed, gain / np.sqrt(fan))
        elif name.endswith("modulation.bias"):
            t = seeded_normal(name, shape, seed, 0.1, mean=1.0)
        elif name.endswith("modulation.weight") or ("style_mlp" in name and name.endswith("weight")):
            t = seeded_normal(name, shape, seed, 1.0 / np.sqrt(shape[1]))
        elif ".noises.noise" in name or name.endswith("constant_input.weight"):
            t = seeded_normal(name, shape, seed, 1.0)
        elif shape == (1,):  # StyleConv noise strength
            t = seeded_normal(name, shape, seed, 0.05, mean=0.1)
        elif name.startswith("condition_") and ".2." in name:  # SFT heads: scale ~ 1, shift ~ 0
            mean = 1.0 if name.startswith("condition_scale") and name.endswith("bias") else 0.0
            t = seeded_normal(name, shape, seed, 0.1 if name.endswith("bias") else 0.3 / np.sqrt(fan_in), mean)
        elif name.endswith("bias"):
            t = seeded_normal(name, shape, seed, 0.05)
        else:  # U-Net convolutions and the latent head, damped so residual sums do not grow per level
            gain = 0.8 if name.endswith("skip.weight") else 1.1
            t = seeded_normal(name, shape, seed, gain / np.sqrt(fan_in))
        out[name] = t
    return out


def make_noise(shapes: list[tuple[int, int]], seed: int, device: torch.device) -> list[torch.Tensor]:
    """Decoder noise drawn as the official code draws it for one image after ``torch.manual_seed(seed)`` (CPU).

    The (1, 1, H, W) maps broadcast over the batch: every image gets the same noise, so a result does
    not depend on batch size or composition.
    """
    gen = torch.Generator().manual_seed(seed)
    return [torch.empty(1, 1, h, w).normal_(generator=gen).to(device) for h, w in shapes]


@METHODS.register
class GFPGANMethod(RestorationMethod):
    """GFPGAN v1.4 / v1.3 restoring aligned 512x512 faces in batches."""

    name = "gfpgan"
    takes_quality = False
    weights = ("gfpgan-v1.4",)
    family = "gfpgan"
    description = "GFPGAN v1.4 (GFPGANv1Clean, StyleGAN2 prior + SFT), official preprocessing, batched"

    def __init__(
        self,
        weights: str | None = None,
        version: str = "1.4",
        noise: str = "seeded",
        seed: int = 0,
    ) -> None:
        version = str(version)
        if version not in WEIGHT_NAMES:
            raise ValueError(f"gfpgan: unknown version {version!r}; choose one of {sorted(WEIGHT_NAMES)}")
        if noise not in NOISE_MODES:
            raise ValueError(f"gfpgan: noise must be one of {NOISE_MODES}, got {noise!r}")
        super().__init__(version=version, noise=noise, seed=int(seed))
        self.noise_mode, self.seed = noise, int(seed)
        self._noise_cache: dict[str, list[torch.Tensor]] = {}
        spec = W.WEIGHTS[WEIGHT_NAMES[version]]
        path = None if weights == "random" else W.resolve(spec.name, weights)  # fail fast, before building
        self.net = self.build_net()
        if path is None:
            shapes = {k: tuple(v.shape) for k, v in self.net.state_dict().items()}
            self.net.load_state_dict(standin_state_dict(shapes, seed=int(seed)), strict=True)
            self.weights_info = [
                WeightsInfo(name=spec.name, standin=True, note=f"deterministic random stand-in weights (seed {seed})")
            ]
        else:
            state = extract_gfpgan_state(W.load_state_dict(path), path)
            _load_strict(self.net, state, path)
            self.weights_info = [WeightsInfo(name=spec.name, path=str(path), sha256=W.sha256_file(path))]
        self.net.eval()

    def build_net(self) -> GFPGANv1Clean:
        """The network this method runs: the v1.3 / v1.4 release configuration at ``input_size``."""
        return build_gfpgan(self.input_size)

    def _seeded_noise(self, device: torch.device) -> list[torch.Tensor]:
        """The seeded noise maps on ``device``, drawn once per device (every batch uses the same maps)."""
        key = str(device)
        if key not in self._noise_cache:
            self._noise_cache[key] = make_noise(self.net.noise_shapes(), self.seed, device)
        return self._noise_cache[key]

    @torch.no_grad()
    def restore(self, lq: torch.Tensor) -> torch.Tensor:
        x = resize_like_cv2(lq.to(self.device, torch.float32), self.input_size).contiguous() * 2 - 1
        noise = self._seeded_noise(x.device) if self.noise_mode == "seeded" else None
        y = self.net(x, noise)  # in the engine's precision (its autocast), which the method does not choose
        return (y.float().clamp(-1, 1) + 1) / 2


def _load_strict(net: torch.nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    """``load_state_dict(strict=True)`` with an error that names the file and the fix."""
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise W.WeightsFileError(
            path, f"does not match the {type(net).__name__} architecture ({state_dict_mismatch(net, state)})",
            "pass an official GFPGAN v1.3 / v1.4 checkpoint, or leave --weights out to use the managed one "
            "(`bfrbench fetch gfpgan-v1.4`)",
        ) from exc

