"""Test doubles for runner tests: a folder dataset, a slow method and simple metrics.

They register under unique names so they never clash with the real registries.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from bench.core.registry import DATASETS, METHODS, METRICS
from bench.metrics.base import MeanOfImages, Metric
from methods.base import RestorationMethod, WeightsInfo


@dataclass
class Pair:
    name: str
    lq_path: Path
    gt_path: Path | None


class FolderSet:
    def __init__(self, root: Path, has_gt: bool = True) -> None:
        self.root = Path(root)
        self.name = self.root.name
        self.has_gt = has_gt

    def pairs(self) -> list[Pair]:
        out = []
        for p in sorted((self.root / "lq").iterdir()):
            gt = self.root / "gt" / (p.stem + ".png")
            out.append(Pair(p.stem, p, gt if self.has_gt and gt.exists() else None))
        return out


def make_folder(root: Path, n: int, seed: int = 0, size: int = 64) -> Path:
    rng = np.random.default_rng(seed)
    (root / "lq").mkdir(parents=True, exist_ok=True)
    (root / "gt").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        gt = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        gt = cv2.GaussianBlur(gt, (5, 5), 2)
        lq = np.clip(gt.astype(int) + rng.integers(-30, 30, gt.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(root / "gt" / f"img{i:03d}.png"), gt)
        cv2.imwrite(str(root / "lq" / f"img{i:03d}.png"), lq)
    return root


class MAE(MeanOfImages):
    name = "test-mae"
    higher_better = False
    needs_gt = True
    protocol = "test"

    def score(self, pred, gt):
        return (pred - gt).abs().flatten(1).mean(1) * 255


class SetMean(Metric):
    """A set-level metric with a 'cat' state, like FID's features."""

    name = "test-setmean"
    per_image = False
    protocol = "test-set"

    def __init__(self) -> None:
        super().__init__()
        self.add_state("feats", [], "cat")

    def update(self, pred, gt=None):
        self.feats.append(pred.flatten(1).mean(1, keepdim=True).double())
        return None

    def compute(self) -> float:
        f = torch.cat(self.feats)
        return float(f.var(unbiased=False) * 1e4 + f.mean())


class SlowMethod(RestorationMethod):
    name = "test-slow"

    def __init__(self, weights=None, delay: float = 0.0) -> None:
        super().__init__(delay=delay)
        self.delay = delay
        self.weights_info = [WeightsInfo(name="none")]

    def restore(self, lq):
        time.sleep(self.delay)
        return torch.nn.functional.interpolate(lq, size=(512, 512), mode="bilinear", align_corners=False)


def register(root: Path, tag: str, has_gt: bool = True) -> str:
    name = f"testset-{tag}"
    # a tag used again (by another test) points at THIS test's folder: a stale entry made earlier
    # tests' folders leak into later ones, depending on the order the tests ran in
    DATASETS.add(name, lambda: FolderSet(root, has_gt), has_gt=has_gt, replace=True)
    for n, f, meta in [
        ("test-mae", MAE, dict(higher_better=False, needs_gt=True, protocol="test")),
        ("test-setmean", SetMean, dict(higher_better=True, needs_gt=False, protocol="test-set")),
        ("test-slow", SlowMethod, dict(takes_quality=False)),
    ]:
        reg = METHODS if n == "test-slow" else METRICS
        if n not in reg:
            reg.add(n, f, **meta)
    return name


class GreenMethod(RestorationMethod):
    """Restores every face to plain green (512x512): where a whole-image paste lands is visible."""

    name = "test-green"

    def __init__(self, weights=None) -> None:
        super().__init__()
        self.weights_info = [WeightsInfo(name="none")]

    def restore(self, lq: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(lq.shape[0], 3, 512, 512)
        out[:, 1] = 1.0
        return out
