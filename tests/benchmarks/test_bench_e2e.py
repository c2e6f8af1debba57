"""End to end on the CPU: the engine against the official-style loop for ``classical`` and a stand-in ``codeformer``.

Both methods are measured in one run, and each one's ratio ``official_over_engine`` (the official-style
loop's seconds over the engine's on the same faces; above 1.0 the engine is faster) goes into the
benchmark's ``extra_info`` with the machine's load, so a shared machine's slowdowns cancel out. Run with
``pytest tests/benchmarks/test_bench_e2e.py --benchmark-enable -m benchmark`` (4 synthetic 512 faces, batch 2,
psnr ssim niqe; about 3 minutes on 2 quiet cores); with benchmarks disabled (the default addopts) it runs
once on two 64-pixel faces with the tiny CodeFormer preset as a smoke test.
"""
from __future__ import annotations

import os

import pytest
import torch

import bench
from bench.engine.e2e import end_to_end
from bench.engine.profiling import synthetic_pairs


def _build(spec: str, size: int):
    def build() -> torch.nn.Module:
        name, _, opts = spec.partition(":")
        kwargs = dict(kv.split("=", 1) for kv in opts.split(",") if kv)
        method = bench.create_method(name, **kwargs)
        if getattr(method, "output_size", size) != size and name == "classical":
            method.output_size = size
        return method

    return build


@pytest.mark.benchmark
def test_engine_against_official_style_on_cpu(benchmark, tmp_path, bfrbench_home):
    full = not benchmark.disabled
    size, images, batch = (512, 4, 2) if full else (64, 2, 2)
    metrics = ["psnr", "ssim", "niqe"] if full else ["psnr", "ssim"]
    codeformer = "codeformer:weights=random" + ("" if full else ",config=tiny_codeformer")
    pairs = synthetic_pairs(tmp_path / "faces", images, size)
    if full:  # NIQE's parameters are a registry asset (fetched once into the session's cache)
        from bench.weights import fetch

        fetch("niqe-pris-params")
    entries: dict[str, dict] = {}

    def both() -> dict[str, dict]:
        for spec in ("classical", codeformer):
            entries[spec.split(":")[0]] = end_to_end(
                spec, _build(spec, size), metrics, pairs, tmp_path / spec.split(":")[0], device="cpu",
                batch_size=batch, size=size, workers=0)
        return entries

    benchmark.group = "e2e-cpu"
    benchmark.pedantic(both, rounds=1, iterations=1, warmup_rounds=0)
    benchmark.extra_info.update({"images": images, "size": size, "batch": batch, "metrics": metrics,
                                 "threads": torch.get_num_threads(), "load_1min": os.getloadavg()[0]})
    for name, e in entries.items():
        benchmark.extra_info[f"{name}_official_over_engine"] = round(e["official_over_engine"], 3)
        benchmark.extra_info[f"{name}_engine_over_floor"] = round(e["engine_over_floor"], 3)
        benchmark.extra_info[f"{name}_images_per_call"] = e["images_per_call"]
        # the engine and the official loop score the same images to the same numbers
        assert e["images"] == images and e["images_per_call"] == 1
        for metric, a in e["agreement"].items():
            assert a["abs_diff"] <= 1e-6 * max(1.0, abs(a["official"])), (name, metric, a)
        assert e["engine_s"] > 0 and e["official_style_s"] > 0
