"""The ``daefr`` method: DAEFR with the official aligned-face preprocessing, batched.

Official path (scripts/test.py ``--aligned``): ``cv2.resize`` to 512 (INTER_LINEAR) -> ``/ 255`` -> BGR to
RGB -> ``(x - 0.5) / 0.5`` -> ``DAEFRModel`` -> ``tensor2img(min_max=(-1, 1))`` (clamp, ``(y + 1) / 2``,
``* 255``, round; the runner rounds the same way). DAEFR is deterministic (argmax code prediction).
Parity with the official code: tests/methods/daefr/test_golden.py.

Checkpoint: ``DAEFR_model.ckpt`` is a PyTorch-Lightning file; the network is its ``state_dict``
(scripts/test.py copies the entries the model has and ignores the rest). Here every tensor of the model
must be present with its shape (``strict=True``); entries the model lacks are named and refused, except
Lightning's training-only ``loss.`` modules. A file that holds Python objects besides tensors (Lightning
callbacks) is refused by ``bench.weights.load_state_dict`` with the one-time conversion command
(bench/weights/lightning.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench import weights as W
from bench.core.registry import METHODS
from methods.base import RestorationMethod, load_release_or_standin, seeded_normal
from methods.codeformer_family import resize_like_cv2
from methods.daefr.arch import DAEFRNet

WEIGHT_NAME = "daefr"
#: a tensor every DAEFR checkpoint has (tells a DAEFR file from another one)
_PROBE_KEY = "vqvae.HQ_encoder.conv_in.weight"
#: training-only entries a Lightning checkpoint may carry beside the network (losses, discriminators)
TRAINING_ONLY_PREFIXES = ("loss.",)
_FIX = "pass DAEFR_model.ckpt, or leave --weights out to use the managed one (`bfrbench fetch daefr`)"


def build_daefr() -> DAEFRNet:
    """The released configuration (configs/DAEFR.yaml: ch 64, ch_mult 1-2-2-4-4-8, attention at 16)."""
    return DAEFRNet()


def extract_daefr_state(obj: Any, path: str | Path = "<checkpoint>") -> dict[str, torch.Tensor]:
    """The network's weights from a loaded checkpoint, without the training-only ``loss.`` entries."""
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or _PROBE_KEY not in state:
        top = list(obj)[:6] if isinstance(obj, dict) else type(obj).__name__
        raise W.WeightsFileError(path, f"not a DAEFR checkpoint (no {_PROBE_KEY!r} under 'state_dict'; top level: "
                                       f"{top})", _FIX)
    return {k: v for k, v in state.items() if not k.startswith(TRAINING_ONLY_PREFIXES)}


def standin_state_dict(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic random DAEFR weights whose outputs are in range, input-dependent and use many codes.

    Norm affines sit around (1, 0), convolutions and linear maps get 1/sqrt(fan_in) scales, attention
    output projections and the last conv are damped, the codebooks are N(0, 0.5) and the position
    embedding small, so the Transformer's argmax picks many different codes.
    """
    out: dict[str, torch.Tensor] = {}
    for name, shape in shapes.items():
        shape = tuple(shape)
        leaf = name.rsplit(".", 2)[-2] if name.count(".") else name
        if name.endswith("quantize.embedding.weight"):
            t = seeded_normal(name, shape, seed, 0.5)
        elif name == "position_emb":
            t = seeded_normal(name, shape, seed, 0.1)
        elif leaf.startswith("norm") or name.startswith("idx_pred_layer.0"):
            t = seeded_normal(name, shape, seed, 0.1, mean=1.0 if name.endswith("weight") else 0.0)
        elif name.endswith("bias"):
            t = seeded_normal(name, shape, seed, 0.05)
        else:
            damped = leaf in ("proj_out", "out_proj", "linear2") or name == "vqvae.decoder.conv_out.weight"
            t = seeded_normal(name, shape, seed, (0.5 if damped else 1.0) / np.sqrt(np.prod(shape[1:])))
        out[name] = t
    return out


@METHODS.register
class DAEFRMethod(RestorationMethod):
    """DAEFR restoring aligned 512x512 faces in batches."""

    name = "daefr"
    takes_quality = False
    weights = (WEIGHT_NAME,)
    family = "daefr"
    description = "DAEFR (ICLR 2024, LIAGM/DAEFR, MIT) dual-branch encoders with codebook association, one pass"

    def __init__(self, weights: str | None = None) -> None:
        super().__init__()
        self.net, self.weights_info = load_release_or_standin(
            WEIGHT_NAME, weights, self.build_net, extract_daefr_state, standin_state_dict, "DAEFR network", _FIX)

    def build_net(self) -> DAEFRNet:
        """The network this method runs: the released configuration."""
        return build_daefr()

    @torch.no_grad()
    def restore(self, lq: torch.Tensor) -> torch.Tensor:
        x = (resize_like_cv2(lq.to(self.device, torch.float32), self.input_size).contiguous() - 0.5) / 0.5
        y = self.net(x)  # in the engine's precision (its autocast)
        return ((y.float().clamp(-1, 1) + 1) / 2).clamp(0, 1)
