"""Engine pieces' speed (CPU): device-side grey-128 and heatmap decoding against their reference paths,
the batch step, and decoding from the loader against the decoded-set cache.

Run with ``pytest tests/benchmarks/test_bench_engine.py --benchmark-enable -m benchmark``; with
benchmarks disabled (the default addopts) each case runs once on small inputs as a smoke test.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests._helpers.learned_helpers import random_faces


@pytest.mark.benchmark
@pytest.mark.parametrize("impl", ["device", "reference"])
def test_grey128_speed(benchmark, impl):
    from bench.metrics.identity import grey128

    batch = 1 if benchmark.disabled else 16
    img = random_faces(batch, 128 if benchmark.disabled else 512, seed=1)
    benchmark.group = "engine-grey128"
    benchmark.extra_info.update({"impl": impl, "batch": batch})
    out = benchmark(grey128, img, "png", impl)
    assert out.shape == (batch, 1, 128, 128)


@pytest.mark.benchmark
@pytest.mark.parametrize("impl", ["torch", "numpy"])
def test_heatmap_decoding_speed(benchmark, impl):
    from bench.metrics.awing_arch import heatmap_points, heatmap_points_torch

    batch = 2 if benchmark.disabled else 16
    heat = np.random.default_rng(0).random((batch, 98, 64, 64)).astype(np.float32)
    tensor = torch.from_numpy(heat)

    def numpy_per_image():
        return np.concatenate([heatmap_points(heat[i:i + 1]) for i in range(batch)])

    benchmark.group = "engine-heatmap-decoding"
    benchmark.extra_info.update({"impl": impl, "batch": batch})
    out = benchmark(heatmap_points_torch, tensor) if impl == "torch" else benchmark(numpy_per_image)
    assert tuple(out.shape) == (batch, 98, 2)


@pytest.mark.benchmark
def test_batch_step_speed(benchmark):
    """restore (lq) -> uint8 levels -> psnr + ssim update, one batch, on the CPU."""
    import bench
    from bench.engine.step import Engine

    batch, size = (1, 64) if benchmark.disabled else (16, 512)
    engine = Engine("cpu", "fp32", channels_last="off")
    method = bench.create_method("lq")
    method.output_size = size
    prepared = engine.prepare(method, batch, size)
    metrics = {n: bench.create_metric(n) for n in ("psnr", "ssim")}
    lq = (random_faces(batch, size, seed=2) * 255).round().to(torch.uint8)
    gt = (random_faces(batch, size, seed=3) * 255).round().to(torch.uint8)

    def step():
        for m in metrics.values():
            m.reset()
        return engine.step(prepared, metrics, lq, gt)

    benchmark.group = "engine-step"
    benchmark.extra_info.update({"batch": batch, "size": size, "threads": torch.get_num_threads()})
    result = benchmark(step)
    assert set(result.values) == {"psnr", "ssim"}


@pytest.mark.benchmark
@pytest.mark.parametrize("source", ["loader", "cache"])
def test_decoding_vs_cache_speed(benchmark, tmp_path, source):
    from bench.engine.loading import DecodedCache, iter_batches
    from tests._helpers.runner_helpers import FolderSet, make_folder

    n = 2 if benchmark.disabled else 16
    pairs = FolderSet(make_folder(tmp_path / "set", n, size=512)).pairs()
    cache = DecodedCache(2**30)
    for _ in iter_batches(pairs, 4, 0, cache=cache):
        pass

    def read_all():
        return sum(len(b.names) for b in iter_batches(pairs, 4, 0, cache=cache if source == "cache" else None))

    benchmark.group = "engine-input"
    benchmark.extra_info.update({"source": source, "images": n})
    assert benchmark(read_all) == n
