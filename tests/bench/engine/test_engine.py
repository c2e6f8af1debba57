"""The engine: one decode per set for several methods, metrics built once per run, the precision policy."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from bench.config import RunConfig
from bench.core.registry import METRICS
from bench.engine import loading
from bench.engine.runner import Runner
from bench.engine.step import Engine, values_to_host
from methods.base import RestorationMethod
from tests._helpers.runner_helpers import make_folder, register


def _cfg(datasets, out, **kw) -> RunConfig:
    base = dict(datasets=datasets, methods=["lq", "classical"], metrics=["test-mae", "test-setmean"], out=str(out),
                device="cpu", batch_size=2, workers=0, quiet=True, report=False)
    base.update(kw)
    return RunConfig(**base)


def _count_decodes(monkeypatch) -> list[str]:
    seen: list[str] = []
    real = loading._load

    def counting(path, size):
        seen.append(str(path))
        return real(path, size)

    monkeypatch.setattr(loading, "_load", counting)
    return seen


def test_a_set_is_decoded_once_for_several_methods_with_the_same_results(tmp_path, monkeypatch):
    ds = register(make_folder(tmp_path / "setC", 5), "C")
    seen = _count_decodes(monkeypatch)
    cached = Runner(_cfg([ds], tmp_path / "cached")).run()
    assert len(seen) == 10  # 5 LQ + 5 GT, for two methods
    seen.clear()
    monkeypatch.setenv("BFRBENCH_DECODE_CACHE_MB", "0")
    plain = Runner(_cfg([ds], tmp_path / "plain")).run()
    assert len(seen) == 20  # no cache: each method decodes the set again
    a = pd.read_parquet(cached.run_dir / "per_image.parquet").drop(columns=["config_hash"], errors="ignore")
    b = pd.read_parquet(plain.run_dir / "per_image.parquet").drop(columns=["config_hash"], errors="ignore")
    pd.testing.assert_frame_equal(a[["method", "image", "test-mae"]], b[["method", "image", "test-mae"]])
    assert cached.summary["value"].tolist() == plain.summary["value"].tolist()


def test_cache_over_budget_falls_back_to_decoding(tmp_path, monkeypatch):
    ds = register(make_folder(tmp_path / "setD", 4), "D")
    seen = _count_decodes(monkeypatch)
    monkeypatch.setenv("BFRBENCH_DECODE_CACHE_MB", "1")  # one 512x512 pair is 1.5 MB: nothing fits
    Runner(_cfg([ds], tmp_path / "run")).run()
    assert len(seen) == 16


def test_metrics_are_built_once_per_run(tmp_path, monkeypatch):
    a = register(make_folder(tmp_path / "setE", 3), "E")
    b = register(make_folder(tmp_path / "setG", 3, seed=1), "G")
    built: list[str] = []
    real = METRICS.create

    def counting(name, **kw):
        built.append(name)
        return real(name, **kw)

    monkeypatch.setattr(METRICS, "create", counting)
    outcome = Runner(_cfg([a, b], tmp_path / "run")).run()
    assert sorted(built) == ["test-mae", "test-setmean"]  # 2 datasets x 2 methods, one build each
    assert len(outcome.units) == 4
    # shared instances still give each unit its own numbers
    values = outcome.summary[(outcome.summary.metric == "test-mae")].set_index(["dataset", "method"])["value"]
    assert values.nunique() == 4


class NeedsFp32(RestorationMethod):
    name = "test-fp32"
    needs_fp32 = True

    def restore(self, lq):
        return lq * 1.0


class Plain(RestorationMethod):
    name = "test-plain"

    def restore(self, lq):
        return torch.nn.functional.conv2d(lq, torch.ones(3, 3, 1, 1) / 3)


def test_the_engine_dtype_is_the_one_knob_unless_a_method_needs_fp32():
    engine = Engine("cpu", "bf16", channels_last="off")
    strict, plain = engine.prepare(NeedsFp32(), 1, 8), engine.prepare(Plain(), 1, 8)
    assert strict.dtype == "fp32" and any("needs fp32" in n for n in strict.notes)
    assert plain.dtype == "bf16"
    x = (torch.rand(1, 3, 8, 8) * 255).round().to(torch.uint8)
    out = engine.restore(plain, x)
    assert out.dtype == torch.float32 and torch.equal(out, (out * 255).round() / 255)  # uint8 levels


def test_values_to_host_keeps_names_and_order():
    values = {"a": torch.tensor([1.0, 2.0]), "b": torch.tensor([3.0, 4.0], dtype=torch.float64)}
    assert values_to_host(values) == {"a": [1.0, 2.0], "b": [3.0, 4.0]}
    assert values_to_host({}) == {}


@pytest.mark.slow
def test_gfpgan_profile_with_channels_last_on_cpu_completes(tmp_path):
    """Issue #9 acceptance: GFPGAN's rank-5 weights are skipped by channels_last instead of crashing."""
    from bench.cli import main

    rc = main(["profile", "--methods", "gfpgan", "--weights", "random", "--channels-last", "on", "--device", "cpu",
               "--batch-sizes", "1", "--images", "1", "--iters", "1", "--warmup", "0", "--metrics",
               "--out", str(tmp_path / "p"), "--quiet"])
    assert rc == 0
    rows = pd.read_csv(tmp_path / "p" / "profile.csv")
    (row,) = rows.itertuples()
    assert row.status == "ok" and bool(row.channels_last) and "rank 5+" in row.note
