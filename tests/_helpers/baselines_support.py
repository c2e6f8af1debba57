"""Shared helpers of the GFPGAN / RestoreFormer(++) tests: inputs, the official pre/post-processing,
official reference modules from the ``gfpgan`` wheel, checkpoints in release containers, comparisons.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from tests._helpers.official_refs import FIXTURES, StubRegistry, load_official_module

GFPGAN_WHEEL = "gfpgan==1.3.8"


def manifest_shapes(name: str) -> dict[str, tuple[int, ...]]:
    """Name -> shape, in checkpoint order, from tests/fixtures/manifests/<name>.json."""
    tensors = json.loads((FIXTURES / "manifests" / f"{name}.json").read_text())["tensors"]
    return {k: tuple(v) for k, v in tensors.items()}


def astronaut(size: int = 512) -> np.ndarray:
    """scikit-image's astronaut photo (512x512 RGB uint8, public domain), INTER_AREA-resized to ``size``."""
    from skimage import data

    rgb = data.astronaut()
    return rgb if size == rgb.shape[0] else cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)


def official_forward(net_call: Callable[[torch.Tensor], torch.Tensor], rgb: np.ndarray) -> np.ndarray:
    """The official scripts on an aligned face: BGR uint8 -> net -> uint8, returned as RGB.

    ``img2tensor(bgr / 255., bgr2rgb=True, float32=True)``, ``normalize(0.5, 0.5)``, the network,
    ``tensor2img(rgb2bgr=True, min_max=(-1, 1))`` (clamp, ``(x + 1) / 2``, ``* 255``, round).
    """
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    img = cv2.cvtColor((bgr / 255.0).astype(np.float32), cv2.COLOR_BGR2RGB)
    x = (torch.from_numpy(img.transpose(2, 0, 1)).float() - 0.5) / 0.5
    with torch.no_grad():
        out = net_call(x.unsqueeze(0))
    out = (out.squeeze(0).float().clamp(-1, 1) + 1) / 2
    out_bgr = cv2.cvtColor(out.numpy().transpose(1, 2, 0), cv2.COLOR_RGB2BGR)
    return cv2.cvtColor((out_bgr * 255.0).round().astype(np.uint8), cv2.COLOR_BGR2RGB)


def to_batch(*rgbs: np.ndarray) -> torch.Tensor:
    """RGB uint8 images -> the (B, 3, H, W) float [0, 1] batch the runner gives a method."""
    return torch.stack([torch.from_numpy(r).permute(2, 0, 1) for r in rgbs]).float().div_(255.0)


def to_uint8(out: torch.Tensor) -> np.ndarray:
    """A method's (B, 3, H, W) [0, 1] output -> (B, H, W, 3) uint8, rounded as the runner does."""
    return (out.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def assert_matches(ours: np.ndarray, ref: np.ndarray, tol: int = 1, frac: float = 0.99) -> None:
    """At least ``frac`` of the values within ``tol`` grey levels of the reference."""
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    diff = np.abs(ours.astype(np.int16) - ref.astype(np.int16))
    ok = float((diff <= tol).mean())
    assert ok >= frac, f"only {ok:.4%} of values within {tol} level(s); max diff {diff.max()}, mean {diff.mean():.3f}"


def assert_informative(img: np.ndarray) -> None:
    """The reference is a real test: neither constant nor saturated."""
    assert img.std() > 10, f"output nearly constant (std {img.std():.2f})"
    assert len(np.unique(img)) > 100, "output uses few grey levels"
    assert float(((img == 0) | (img == 255)).mean()) < 0.05, "output mostly saturated"


def load_golden(stem: str) -> dict[str, np.ndarray]:
    """The arrays of tests/fixtures/golden/<stem>.npz (a golden made once from the official code)."""
    with np.load(FIXTURES / "golden" / f"{stem}.npz") as z:
        return {k: z[k] for k in z.files}


def assert_golden_weights(net: torch.nn.Module, golden: dict[str, np.ndarray]) -> None:
    """``net`` holds the golden's stand-in weights: the same names and per-tensor sums (``weight_names/_sums``)."""
    state = net.state_dict()
    names = [str(n) for n in golden["weight_names"]]
    assert sorted(state) == names
    sums = np.array([float(state[n].double().sum()) for n in names])
    bad = [n for n, a, b in zip(names, sums, golden["weight_sums"]) if not np.isclose(a, b, rtol=1e-6, atol=1e-6)]
    assert not bad, f"stand-in weights differ from the golden's (regenerate per the .md note): {bad[:3]}"


def assert_batch_independent(method: Any, x: torch.Tensor, atol: float = 1e-5) -> torch.Tensor:
    """``method.restore(x)`` is a float32 batch in [0, 1] that varies with the input and equals (``atol``) the
    images restored one by one; returns it."""
    out = method.restore(x)
    assert out.shape == (x.shape[0], 3, method.output_size, method.output_size) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1 and out.std() > 0.05
    one = torch.cat([method.restore(x[i : i + 1]) for i in range(x.shape[0])])
    assert torch.allclose(out, one, atol=atol)
    assert (out[0] - out[1]).abs().mean() > 0.01  # the output depends on the input
    return out


def write_checkpoint(path: Path, state: dict[str, torch.Tensor], container: str) -> Path:
    """Save ``state`` as a release would: ``params_ema``, ``params``, ``lightning`` (state_dict with
    ``vqvae.`` keys, a training-only buffer and loss weights beside them) or ``bare``."""
    if container in ("params_ema", "params"):
        obj: Any = {container: state}
    elif container == "lightning":
        sd = {f"vqvae.{k}": v for k, v in state.items()}
        sd["vqvae.quantize.utility_counter"] = torch.zeros(1024)
        sd["loss.discriminator.main.0.weight"] = torch.zeros(4, 3, 4, 4)
        obj = {"epoch": 3, "global_step": 100, "state_dict": sd}
    elif container == "bare":
        obj = state
    else:
        raise ValueError(container)
    torch.save(obj, path)
    return path


def official_gfpgan_module() -> Any:
    """``gfpgan/archs/gfpganv1_clean_arch.py`` from the PyPI wheel, BasicSR imports stubbed."""
    stubs = {
        "basicsr": {},
        "basicsr.archs": {},
        "basicsr.archs.arch_util": {"default_init_weights": lambda *a, **k: None},
        "basicsr.utils": {},
        "basicsr.utils.registry": {"ARCH_REGISTRY": StubRegistry()},
    }
    return load_official_module(GFPGAN_WHEEL, "gfpgan/archs/gfpganv1_clean_arch.py", stubs)


def official_restoreformer_module() -> Any:
    """GFPGAN's copy of RestoreFormer (``gfpgan/archs/restoreformer_arch.py``) from the PyPI wheel."""
    return load_official_module(GFPGAN_WHEEL, "gfpgan/archs/restoreformer_arch.py", {})
