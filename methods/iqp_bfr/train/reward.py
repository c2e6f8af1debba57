"""Differentiable NR-IQA rewards for stage-3 discrete quality optimisation.

NIQE, BRISQUE and PIQE (the offline metrics) are not differentiable, and the deep metrics
the paper optimises (MUSIQ, TOPIQ-face, MANIQA) need weights these machines cannot download.
So the reward is configurable (``reward.type``):

- ``sharpness``: a closed-form, differentiable proxy: luminance gradient energy,
  ``1 - exp(-mean|grad Y| / tau)``. No weights. It rewards crisp edges, which is what the
  NR-IQA metrics mostly respond to on faces, and is blind to everything else, which is why
  stage 3 measures code drift against stage 2 instead of trusting it.
- ``regressor``: a small CNN fit to a :class:`~methods.iqp_bfr.quality.QualityScorer`
  (e.g. NIQE + BRISQUE) on clean and degraded faces (:func:`fit_regressor`): a learned,
  differentiable stand-in for the offline metric.
- ``pyiqa``: any pyiqa metric with ``as_loss=True`` (MUSIQ as in the paper), normalised
  with ``lo`` / ``hi`` and its direction; needs its weights.

Every reward maps (B, 3, H, W) in [0, 1] to (B,), higher is better, about [0, 1]; the stage-3
loss is ``weight * relu(1 - reward).mean()`` (the paper's ``relu(1 - q) * w``).
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def luminance(x: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 luma of an RGB batch in [0, 1] -> (B, 1, H, W)."""
    w = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


class SharpnessReward(nn.Module):
    """Differentiable sharpness proxy: ``1 - exp(-mean_pixels |Sobel(Y)| / tau)``."""

    def __init__(self, tau: float = 0.05) -> None:
        super().__init__()
        k = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]) / 8.0
        self.register_buffer("kx", k.view(1, 1, 3, 3), persistent=False)
        self.register_buffer("ky", k.t().contiguous().view(1, 1, 3, 3), persistent=False)
        self.tau = float(tau)

    def gradient_energy(self, x: torch.Tensor) -> torch.Tensor:
        """Mean Sobel gradient magnitude of the luminance, (B,), always in float32.

        (Under fp16 autocast the 1e-8 inside the square root would flush to zero and make the
        gradient infinite on flat regions.)
        """
        with torch.autocast(x.device.type, enabled=False):
            y = F.pad(luminance(x.float()), (1, 1, 1, 1), mode="replicate")
            gx, gy = F.conv2d(y, self.kx.float()), F.conv2d(y, self.ky.float())
            return torch.sqrt(gx**2 + gy**2 + 1e-8).flatten(1).mean(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.0 - torch.exp(-self.gradient_energy(x) / self.tau)


class QualityRegressor(nn.Module):
    """A small CNN predicting a [0, 1] quality score from an image in [0, 1] (any size >= 16)."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c in (width, width * 2, width * 4, width * 4):
            layers += [nn.Conv2d(c_in, c, 3, 2, 1), nn.LeakyReLU(0.2, True)]
            c_in = c
        self.features = nn.Sequential(*layers)
        # mean and std pooling keep texture statistics (NIQE/BRISQUE are statistics of local structure)
        self.head = nn.Linear(2 * c_in, 1)
        self.width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x.float() * 2.0 - 1.0).flatten(2)
        pooled = torch.cat([f.mean(-1), f.std(-1)], 1)
        return torch.sigmoid(self.head(pooled)).squeeze(1)


class RegressorReward(nn.Module):
    """A frozen :class:`QualityRegressor` used as the reward."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        from bench.weights import load_state_dict

        state = load_state_dict(path)
        width = int(state.pop("_width").item()) if "_width" in state else 16
        self.net = QualityRegressor(width)
        self.net.load_state_dict(state, strict=True)
        self.net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return self.net(x.float())


class PyiqaReward(nn.Module):
    """A pyiqa metric as a differentiable reward, mapped to [0, 1] with ``lo`` / ``hi`` and its direction."""

    def __init__(self, name: str, lo: float = 0.0, hi: float = 1.0, device: str | None = None) -> None:
        super().__init__()
        import pyiqa

        self.metric = pyiqa.create_metric(name, as_loss=True, device=device or "cpu")
        self.lower_better = bool(getattr(self.metric, "lower_better", False))
        self.lo, self.hi = float(lo), float(hi)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            s = self.metric(x.float().clamp(0, 1)).reshape(-1)
        r = (s - self.lo) / (self.hi - self.lo)
        return 1.0 - r if self.lower_better else r


def build_reward(cfg: dict[str, Any] | None, device: torch.device | str = "cpu") -> nn.Module:
    """Build the stage-3 reward from the ``reward:`` config section."""
    cfg = dict(cfg or {"type": "sharpness"})
    kind = str(cfg.pop("type", "sharpness")).lower()
    cfg.pop("weight", None)
    if kind == "sharpness":
        return SharpnessReward(**cfg).to(device)
    if kind == "regressor":
        if "path" not in cfg:
            raise ValueError("reward.type regressor needs reward.path (a file written by fit_regressor)")
        return RegressorReward(cfg["path"]).to(device)
    if kind == "pyiqa":
        return PyiqaReward(device=str(device), **cfg)
    raise ValueError(f"unknown reward type {kind!r}: use sharpness, regressor or pyiqa")


def reward_loss(reward: torch.Tensor, weight: float) -> torch.Tensor:
    """The paper's reward loss ``weight * relu(1 - q)``, averaged over the batch."""
    return weight * F.relu(1.0 - reward).mean()


def fit_regressor(
    images: torch.Tensor,
    targets: torch.Tensor,
    steps: int = 300,
    lr: float = 2e-3,
    batch_size: int = 16,
    width: int = 16,
    seed: int = 0,
) -> QualityRegressor:
    """Fit a :class:`QualityRegressor` to target scores (e.g. ``QualityScorer.score``) by MSE.

    ``images`` (N, 3, H, W) in [0, 1] should span the quality range the reward will see
    (clean faces and faces degraded to different degrees).
    """
    if images.shape[0] != targets.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {targets.shape[0]} target scores")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = QualityRegressor(width)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    n = images.shape[0]
    for _ in range(steps):
        idx = torch.randint(0, n, (min(batch_size, n),), generator=gen)
        loss = F.mse_loss(net(images[idx]), targets[idx].float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval()


def spearman(a: Iterable[float], b: Iterable[float]) -> float:
    """Spearman rank correlation with tied ranks averaged (NaN when either side is constant)."""
    from scipy.stats import spearmanr

    x, y = list(a), list(b)
    if len(set(x)) < 2 or len(set(y)) < 2:
        return float("nan")
    return float(spearmanr(x, y).statistic)
