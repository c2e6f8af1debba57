"""Data pipeline speed on CPU: degradation per 512x512 face, alignment + paste-back, detection.

Run with ``pytest tests/benchmarks/test_bench_data.py --benchmark-enable -m benchmark``; with
benchmarks disabled (the default addopts) each case runs once as a smoke test.
"""
from __future__ import annotations

import numpy as np
import pytest


def _astronaut() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


@pytest.mark.benchmark
@pytest.mark.parametrize("preset", ["celeba-test", "codeformer-large", "codeformer-small"])
def test_degrade_speed(benchmark, preset: str) -> None:
    from bench.data.degrade import degrade, rng_for

    hq = _astronaut()
    names = iter(range(10**9))
    out = benchmark(lambda: degrade(hq, preset, rng_for(0, str(next(names)))))
    assert out.shape == hq.shape


@pytest.mark.benchmark
def test_degrade_batch_torch_speed(benchmark) -> None:
    import torch

    from bench.data.degrade import degrade_batch

    x = torch.from_numpy(_astronaut()).permute(2, 0, 1)[None].float().div(255).repeat(8, 1, 1, 1)
    rng = np.random.default_rng(0)
    out = benchmark(lambda: degrade_batch(x, "celeba-test", rng))
    assert out.shape == x.shape


@pytest.mark.benchmark
def test_align_and_paste_speed(benchmark) -> None:
    from bench.data.align import align_face, paste_back

    img = _astronaut()
    pts = np.array([[204.8, 100.8], [247.4, 103.4], [223.6, 129.2], [202.5, 138.1], [244.2, 140.6]])

    def run():
        crop, affine = align_face(img, pts)
        return paste_back(img, crop, affine)

    assert benchmark(run).shape == img.shape


@pytest.mark.benchmark
@pytest.mark.network
def test_detect_speed(benchmark) -> None:
    from bench.data.detect import detect_faces

    img = _astronaut()
    detect_faces(img)  # fetch the model and build the session outside the timing
    assert len(benchmark(lambda: detect_faces(img))) == 1
