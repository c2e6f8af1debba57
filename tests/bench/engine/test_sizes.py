"""Honest sizes: a method whose outputs are smaller than the benchmark is compared at the benchmark's size.

Before the fix a 64-pixel method's PSNR failed ("pred and gt shapes differ") and the method was still
ranked on the metrics that remained.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from bench.config import RunConfig
from bench.core.registry import METHODS
from bench.engine.ranking import rank
from bench.engine.runner import Runner
from methods.base import RestorationMethod, WeightsInfo
from tests._helpers.runner_helpers import make_folder, register

SMALL = 64


class SmallOutput(RestorationMethod):
    """Declares 64-pixel outputs, like a tiny trained checkpoint: the input shrunk with area averaging."""

    name = "test-small-out"
    output_size = SMALL

    def __init__(self, weights=None) -> None:
        super().__init__()
        self.weights_info = [WeightsInfo(name="none")]

    def restore(self, lq):
        return torch.nn.functional.interpolate(lq, size=(SMALL, SMALL), mode="area")


def _register_small() -> str:
    """Registers the small-output method for one test (which uses the ``registries`` fixture)."""
    METHODS.add("test-small-out", SmallOutput, takes_quality=False)
    return "test-small-out"


def test_small_outputs_are_compared_at_the_benchmark_size_and_recorded(tmp_path, registries):
    root = make_folder(tmp_path / "faces", 3, size=512)
    ds = register(root, "sizes512")
    cfg = RunConfig(datasets=[ds], methods=[_register_small(), "lq"], metrics=["psnr", "ssim"], out=str(tmp_path / "run"),
                    device="cpu", batch_size=2, workers=0, quiet=True, report=False)
    outcome = Runner(cfg).run()
    summary = pd.read_csv(outcome.run_dir / "summary.csv")
    small = summary[summary.method == "test-small-out"]
    assert set(small.status) == {"ok"} and set(small.metric) == {"psnr", "ssim"} and (small.n == 3).all()
    manifest = json.loads((outcome.run_dir / "manifest.json").read_text())
    assert manifest["methods"]["test-small-out"]["resize"] == "64 -> 512 bicubic"
    assert manifest["methods"]["lq"]["resize"] is None and manifest["methods"]["lq"]["compared_at"] == 512
    # reference: the 64-pixel output made and upsampled with OpenCV (area down, cubic up), PSNR in numpy
    lq = cv2.imread(str(root / "lq" / "img000.png"))[:, :, ::-1].astype(np.float64) / 255
    gt = cv2.imread(str(root / "gt" / "img000.png"))[:, :, ::-1].astype(np.float64)
    down = np.round(cv2.resize(lq, (SMALL, SMALL), interpolation=cv2.INTER_AREA) * 255) / 255
    up = np.round(np.clip(cv2.resize(down, (512, 512), interpolation=cv2.INTER_CUBIC), 0, 1) * 255)
    expect = 10 * np.log10(255.0**2 / np.mean((up - gt) ** 2))
    per_image = pd.read_parquet(outcome.run_dir / "per_image.parquet")
    got = per_image[(per_image.method == "test-small-out") & (per_image.image == "img000")]["psnr"].iloc[0]
    assert got == pytest.approx(expect, abs=0.05)


def test_a_method_missing_a_metric_is_ranked_after_every_complete_one():
    rows = [("a", "psnr", 20.0), ("a", "niqe", 9.0), ("b", "psnr", 30.0), ("b", "niqe", 3.0), ("c", "psnr", 40.0)]
    df = pd.DataFrame([{"dataset": "d", "method": m, "metric": k, "value": v, "n": 3, "higher_better": k == "psnr"}
                       for m, k, v in rows])
    ranking = rank(df).methods
    assert list(ranking["method"]) == ["b", "a", "c"]  # c ranks first on psnr alone, but lacks niqe
    assert ranking["complete"].tolist() == [True, True, False] and ranking["position"].tolist() == [1, 2, 0]
