"""The engine runs what is fastest where it runs, and says so: on a CPU a method gets one image per call
(batching is slower there), metrics with several equal implementations run the faster one (``impl='auto'``);
the results equal a whole-batch call, and the manifest records what ran."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from bench.config import RunConfig
from bench.core.registry import METHODS
from bench.engine.runner import Runner
from bench.engine.step import METHOD_BATCH, Engine
from methods.base import RestorationMethod, WeightsInfo
from tests._helpers.runner_helpers import make_folder, register


class CallSizes(RestorationMethod):
    """Upsamples to 512 and remembers the batch size of every call."""

    name = "test-call-sizes"

    def __init__(self, weights=None) -> None:
        super().__init__()
        self.weights_info = [WeightsInfo(name="none")]
        self.calls: list[int] = []

    def restore(self, lq):
        self.calls.append(lq.shape[0])
        return torch.nn.functional.interpolate(lq, size=(512, 512), mode="bilinear", align_corners=False)


@pytest.fixture
def call_sizes(registries) -> str:
    METHODS.add(CallSizes.name, CallSizes, takes_quality=False)  # gone after the test (registries)
    return CallSizes.name


def test_on_a_cpu_the_method_gets_one_image_per_call_with_the_same_output():
    assert METHOD_BATCH["cpu"] == 1
    lq = (torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 255).round().to(torch.uint8)
    split, whole = Engine("cpu"), Engine("cpu")
    whole.method_batch = None  # the whole batch in one call, as on a GPU
    a, b = CallSizes(), CallSizes()
    pa, pb = split.prepare(a, 3, 64), whole.prepare(b, 3, 64)
    assert pa.images_per_call(3) == 1 and pb.images_per_call(3) == 3
    assert any("1 image(s) per call on cpu" in n for n in pa.notes) and not pb.notes
    a.calls.clear(), b.calls.clear()
    out_a, out_b = split.restore(pa, lq), whole.restore(pb, lq)
    assert a.calls == [1, 1, 1] and b.calls == [3]
    assert torch.equal(out_a, out_b)


@pytest.mark.network
def test_the_run_records_images_per_call_and_each_metrics_implementation(tmp_path, call_sizes, monkeypatch):
    from bench.weights import fetch

    fetch("niqe-pris-params")  # a registry asset (BasicSR's sdist), fetched once per session
    ds = register(make_folder(tmp_path / "set", 3), "fastest")
    cfg = RunConfig(datasets=[ds], methods=[call_sizes], metrics=["test-mae", "niqe"], out=str(tmp_path / "run"),
                    device="cpu", batch_size=2, workers=0, quiet=True, report=False)
    outcome = Runner(cfg).run()
    manifest = json.loads((outcome.run_dir / "manifest.json").read_text())
    assert manifest["methods"][call_sizes]["images_per_call"] == 1
    assert manifest["metrics"]["niqe"]["impl"] == "reference"  # impl='auto' on a CPU
    assert "impl" not in manifest["metrics"]["test-mae"]  # one implementation: nothing to record

    # the same run with whole batches per call gives the same numbers
    monkeypatch.setitem(METHOD_BATCH, "cpu", 0)
    cfg.out = str(tmp_path / "whole")
    whole = Runner(cfg).run()
    assert json.loads((whole.run_dir / "manifest.json").read_text())["methods"][call_sizes]["images_per_call"] == 2
    cols = ["image", "test-mae", "niqe"]
    pd.testing.assert_frame_equal(pd.read_parquet(outcome.run_dir / "per_image.parquet")[cols],
                                  pd.read_parquet(whole.run_dir / "per_image.parquet")[cols])


def test_on_a_cpu_the_loader_decodes_in_the_main_process(monkeypatch, tmp_path):
    """No DataLoader worker by default where the device is the CPU (it would compete with the method's threads);
    elsewhere one per core but one; ``--workers`` always wins."""
    import os

    from bench.engine.loading import default_workers

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)), raising=False)
    assert (default_workers("cpu"), default_workers("cuda"), default_workers()) == (0, 3, 3)
    ds = register(make_folder(tmp_path / "set", 2), "loader-default")
    auto = Runner(RunConfig(datasets=[ds], methods=["lq"], metrics=["psnr"], out=str(tmp_path / "a"), device="cpu",
                            quiet=True, report=False))
    given = Runner(RunConfig(datasets=[ds], methods=["lq"], metrics=["psnr"], out=str(tmp_path / "b"), device="cpu",
                             workers=2, quiet=True, report=False))
    assert (auto.loader_workers, given.loader_workers) == (0, 2)
    assert auto.build_metrics(["psnr"], ds)["psnr"].active_impl == "reference"  # BasicSR's own arithmetic on a CPU


def test_a_unit_is_resumed_only_with_the_same_metric_arithmetic(tmp_path, monkeypatch):
    """The unit key records each metric's implementation: the same folder run again where ``ssim`` runs another
    path (as on a GPU) computes the unit afresh instead of reusing values from the other arithmetic."""
    from bench.metrics.psnr_ssim import SSIM

    ds = register(make_folder(tmp_path / "set", 2), "impl-key")
    cfg = RunConfig(datasets=[ds], methods=["lq"], metrics=["ssim"], out=str(tmp_path / "run"), device="cpu",
                    workers=0, quiet=True, report=False)
    first = Runner(cfg).run()
    assert json.loads((first.run_dir / "manifest.json").read_text())["metrics"]["ssim"]["impl"] == "reference"
    again = Runner(cfg).run()
    assert [u.status for u in again.units] == ["reused"]
    monkeypatch.setattr(SSIM, "fastest_impl", {})  # impl='auto' now picks the batched torch path on a CPU too
    other = Runner(cfg).run()
    assert [u.status for u in other.units] == ["computed"]
    assert json.loads((other.run_dir / "manifest.json").read_text())["metrics"]["ssim"]["impl"] == "device"
