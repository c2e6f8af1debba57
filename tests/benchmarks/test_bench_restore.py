"""Restore speed at batch 1 and 16 (512x512, CPU): lq, classical and a tiny conv network.

Run with ``pytest tests/benchmarks/test_bench_restore.py --benchmark-enable -m benchmark``; with
benchmarks disabled (the default addopts) each case runs once as a smoke test.
"""
from __future__ import annotations

import pytest
import torch

import bench
from bench.core.device import to_uint8_levels
from methods.base import RestorationMethod

SIZE = 512


class TinyNet(RestorationMethod):
    """Three 3x3 convolutions (3-32-32-3) with a residual: the cost floor of a learned restorer."""

    name = "tiny-net"

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(32, 3, 3, padding=1),
        )
        with torch.no_grad():
            for p in self.body.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)

    def restore(self, lq: torch.Tensor) -> torch.Tensor:
        return (lq + self.body(lq)).clamp(0, 1)


def build(name: str) -> torch.nn.Module:
    return TinyNet().eval() if name == "tiny-net" else bench.create_method(name)


@pytest.mark.benchmark
@pytest.mark.parametrize("batch", [1, 16])
@pytest.mark.parametrize("method_name", ["lq", "classical", "tiny-net"])
def test_restore_speed(benchmark, method_name, batch):
    method = build(method_name)
    lq = torch.rand(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))

    @torch.no_grad()
    def restore() -> torch.Tensor:
        return to_uint8_levels(method.restore(lq))

    benchmark.group = f"restore-batch{batch}"
    benchmark.extra_info.update({"method": method_name, "batch": batch, "size": SIZE,
                                 "threads": torch.get_num_threads()})
    rounds = 5 if batch == 1 else 3
    out = benchmark.pedantic(restore, rounds=rounds, iterations=1, warmup_rounds=1)
    assert out.shape == (batch, 3, SIZE, SIZE)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # only when benchmarking is enabled
        benchmark.extra_info["images_per_s"] = batch / stats.stats.median
