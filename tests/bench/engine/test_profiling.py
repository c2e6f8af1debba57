"""bfrbench profile on CPU: methods, metrics, fallbacks, output files, official-style comparison."""
from __future__ import annotations

import csv
import json

import pytest
import torch

from bench.cli import main
from bench.engine import profiling as P
from bench.engine import timing as T
from methods.base import RestorationMethod

CPU = torch.device("cpu")
SIZE = 32


class TinyNet(RestorationMethod):
    """A small residual conv net: a stand-in for a learned method."""

    name = "tiny"
    output_size = SIZE

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                        torch.nn.Conv2d(8, 3, 3, padding=1))

    def restore(self, lq):
        return (lq + 0.1 * self.body(lq)).clamp(0, 1)


class ViewNet(TinyNet):
    """Reshapes with .view, which fails on a channels_last input: the fast path must fall back."""

    def restore(self, lq):
        b, c, h, w = lq.shape
        flat = lq.view(b, c * h * w)
        return super().restore(flat.view(b, c, h, w))


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return P.synthetic_pairs(tmp_path_factory.mktemp("synth"), 3, SIZE, seed=1)


@pytest.mark.parametrize("bs", [1, 2])
def test_tiny_network_profile(pairs, bs):
    net = TinyNet()
    row = T.profile_method(net, "tiny", pairs, batch_size=bs, device=CPU, size=SIZE, iters=3, warmup=1)
    assert row.status == "ok"
    # on a CPU the network gets one image per call, and the row says so (bfrbench run does the same)
    assert row.note == ("" if bs == 1 else "restores 1 image(s) per call on cpu, batch 2 split (batching is slower "
                                           "there; the results do not depend on it)")
    assert row.images == 3 * bs
    assert 0 <= row.data_wait_share <= 1 and 0 < row.device_busy_share <= 1
    assert row.latency_p50_ms <= row.latency_p95_ms
    assert row.compute_images_per_s >= row.images_per_s > 0
    assert row.mem_kind == "cpu_rss_delta" and row.peak_mem_mb >= 0


def test_channels_last_failure_falls_back_to_contiguous(pairs):
    row = T.profile_method(ViewNet(), "view", pairs, batch_size=2, device=CPU, size=SIZE, iters=2, warmup=1,
                           channels_last="on")
    assert row.status == "ok" and not row.channels_last
    assert "channels_last failed" in row.note


def test_compile_failure_falls_back_to_eager(pairs, monkeypatch):
    def broken_compile(module, **kwargs):
        def run(*a, **k):
            raise RuntimeError("no C++ compiler")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    row = T.profile_method(TinyNet(), "tiny", pairs, batch_size=1, device=CPU, size=SIZE, iters=2, warmup=0,
                           compile=True)
    assert row.status == "ok" and row.compile is False and "torch.compile failed" in row.note
    assert row.images == 2


def test_fp16_on_cpu_is_skipped_with_the_reason(pairs):
    row = T.profile_method(TinyNet(), "tiny", pairs, batch_size=1, dtype="fp16", device=CPU, size=SIZE, iters=1)
    assert row.status == "skipped" and "fp16" in row.note and row.images == 0


def test_metric_needing_gt_is_skipped_without_gt(pairs):
    import bench
    from bench.data.datasets import ImagePair

    no_gt = [ImagePair(name=p.name, lq_path=p.lq_path) for p in pairs]
    psnr = bench.create_metric("psnr")
    row = T.profile_metric(psnr, "psnr", no_gt, batch_size=2, device=CPU, size=SIZE, iters=2)
    assert row.status == "skipped" and "ground truth" in row.note
    ok = T.profile_metric(psnr, "psnr", pairs, batch_size=2, device=CPU, size=SIZE, iters=2, warmup=0)
    assert ok.status == "ok" and ok.images == 4


class Rank5(TinyNet):
    """Holds a rank-5 weight (as GFPGAN's modulated convs do): channels_last must skip it, not crash."""

    def __init__(self) -> None:
        super().__init__()
        self.modulated = torch.nn.Parameter(torch.randn(1, 3, 3, 1, 1))


def test_channels_last_skips_tensors_it_cannot_convert(pairs):
    net = Rank5()
    row = T.profile_method(net, "rank5", pairs, batch_size=1, device=CPU, size=SIZE, iters=1, warmup=0,
                           channels_last="on")
    assert row.status == "ok" and row.channels_last and "1 tensor(s) of rank 5+" in row.note
    assert net.body[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert net.modulated.is_contiguous()


def test_e2e_model_engine_and_official_agree_in_fp32(pairs, tmp_path):
    from bench.engine.e2e import end_to_end

    entry = end_to_end("lq", lambda: _lq(SIZE), ["psnr", "ssim"], pairs, tmp_path / "e2e", device=CPU, batch_size=2,
                       size=SIZE)
    for key in ("model_only_s", "floor_s", "engine_s", "official_style_s"):
        assert entry[key] > 0
    assert entry["engine_over_model"] == pytest.approx(entry["engine_s"] / entry["model_only_s"])
    assert entry["engine_over_floor"] == pytest.approx(entry["engine_s"] / entry["floor_s"])
    assert entry["official_over_engine"] == pytest.approx(entry["official_style_s"] / entry["engine_s"])
    written = sorted(p.name for p in (tmp_path / "e2e" / "official_style").glob("*.png"))
    assert written == sorted(f"{p.name}.png" for p in pairs)
    # the engine skips only the PNG round trip of uint8-level images: identical numbers in fp32
    for name in ("psnr", "ssim"):
        agree = entry["agreement"][name]
        assert agree["max_abs_diff_per_image"] == pytest.approx(0.0, abs=1e-9)
        assert agree["engine"] == pytest.approx(agree["official"], abs=1e-9)
    assert entry["images"] == 3 and entry["method"] == "lq"
    # short rounds are repeated (up to 3), each side's figure is its fastest round
    assert len(entry["engine_rounds_s"]) == len(entry["official_rounds_s"]) == 3
    assert entry["engine_s"] == min(entry["engine_rounds_s"]) and entry["official_style_s"] == min(entry["official_rounds_s"])
    # the same scratch folder again (a second `profile --e2e --out DIR`), two rounds: every engine round computes,
    # none resumes an earlier one's results
    again = end_to_end("lq", lambda: _lq(SIZE), ["psnr", "ssim"], pairs, tmp_path / "e2e", device=CPU, batch_size=2,
                       size=SIZE, rounds=2)
    assert entry["engine_rounds_status"] == ["computed"] * 3 and again["engine_rounds_status"] == ["computed"] * 2
    assert again["phases"].get("restore", 0) > 0, again["phases"]
    assert not list((tmp_path / "e2e").glob("engine-*"))  # the engine's scratch run folders are gone


def test_e2e_official_loop_uses_the_reference_paths(tmp_path, bfrbench_home, monkeypatch, caplog):
    """The official-style loop builds niqe and psnr with BasicSR's numpy (impl=reference); the engine's paths agree.
    No path feeds the metrics wrong images (uint8 read as [0, 1] floats makes them black: niqe NaN, a warning)."""
    from bench.engine.e2e import end_to_end
    from bench.weights import fetch

    monkeypatch.setenv("BFRBENCH_HOME", str(bfrbench_home))
    spec = f"niqe:weights={fetch('niqe-pris-params', quiet=True)}"
    faces = P.synthetic_pairs(tmp_path / "faces", 2, 192, seed=3)
    entry = end_to_end("lq", lambda: _lq(192), [spec, "psnr"], faces, tmp_path / "e2e", device=CPU, batch_size=2,
                       size=192)
    assert entry["official_options"] == {spec: {"impl": "reference"}, "psnr": {"impl": "reference"}}
    assert entry["metric_impls"] == {spec: "reference", "psnr": "reference"}  # a CPU's faster paths
    agree = entry["agreement"][spec]
    assert agree["engine"] > 0 and agree["max_abs_diff_per_image"] <= 1e-10 * agree["engine"]
    assert not [r.message for r in caplog.records if "failed on image" in r.getMessage()]


def _lq(size):
    import bench

    method = bench.create_method("lq")
    method.output_size = size
    return method


def test_cli_writes_csv_and_json(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["profile", "--methods", "lq", "--metrics", "psnr", "--batch-sizes", "1,2", "--size", str(SIZE),
               "--iters", "2", "--warmup", "1", "--workers", "0", "--images", "3", "--out", str(out),
               "--e2e"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "img/s" in printed and "end to end (lq, 3 images)" in printed and "model + metrics alone" in printed and "engine phases: " in printed
    with open(out / "profile.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == P.COLUMNS
    data = json.loads((out / "profile.json").read_text())
    assert len(data["rows"]) == len(rows)
    kinds = [(r["kind"], r["name"], r["batch_size"]) for r in rows]
    assert kinds == [("method", "lq", "1"), ("method", "lq", "2"), ("metric", "psnr", "1"), ("metric", "psnr", "2"),
                     ("model-only", "lq", "2"), ("engine-e2e", "lq", "2"), ("official-style", "lq", "1")]
    assert all(r["status"] == "ok" for r in rows)
    (entry,) = data["e2e"]
    assert {"method", "images", "model_only_s", "floor_s", "engine_s", "official_style_s", "engine_over_model",
            "engine_over_floor", "official_over_engine"} <= set(entry)
    assert entry["method"] == "lq" and entry["images"] == 3
    assert entry["agreement"]["psnr"]["max_abs_diff_per_image"] == 0.0
    assert {"data_wait", "restore", "metric:psnr", "shard_write", "compute:psnr", "other"} <= set(entry["phases"])
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporaries


def test_cli_rejects_bad_batch_sizes(capsys):
    assert main(["profile", "--batch-sizes", "4,x"]) == 2
    assert "--batch-sizes" in capsys.readouterr().err


def test_missing_weights_become_a_skipped_row(tmp_path, monkeypatch):
    import bench
    from bench.weights import MissingWeightsError

    def missing(name, **kw):
        raise MissingWeightsError("codeformer", tmp_path / "codeformer.pth")

    monkeypatch.setattr(bench, "create_method", missing)
    res = P.run_profile(P.ProfileConfig(methods=["codeformer"], metrics=[], batch_sizes=[1], size=SIZE, iters=1,
                                        images=1, workers=0, out=str(tmp_path / "r"), quiet=True))
    (row,) = res["rows"]
    assert row["status"] == "skipped" and "bfrbench fetch codeformer" in row["note"]
