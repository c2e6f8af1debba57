"""bfrbench profile on CPU: methods, metrics, fallbacks, output files, official-style comparison."""
from __future__ import annotations

import csv
import json

import pytest
import torch

from bench.engine import profiling as P
from bench.cli import main
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
    row = P.profile_method(net, "tiny", pairs, batch_size=bs, device=CPU, size=SIZE, iters=3, warmup=1)
    assert row.status == "ok" and row.note == ""
    assert row.images == 3 * bs
    assert 0 <= row.data_wait_share <= 1 and 0 < row.device_busy_share <= 1
    assert row.latency_p50_ms <= row.latency_p95_ms
    assert row.compute_images_per_s >= row.images_per_s > 0
    assert row.mem_kind == "cpu_rss_delta" and row.peak_mem_mb >= 0


def test_channels_last_failure_falls_back_to_contiguous(pairs):
    row = P.profile_method(ViewNet(), "view", pairs, batch_size=2, device=CPU, size=SIZE, iters=2, warmup=1,
                           channels_last="on")
    assert row.status == "ok" and not row.channels_last
    assert "channels_last failed" in row.note


def test_compile_failure_falls_back_to_eager(pairs, monkeypatch):
    def broken_compile(module, **kwargs):
        def run(*a, **k):
            raise RuntimeError("no C++ compiler")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    row = P.profile_method(TinyNet(), "tiny", pairs, batch_size=1, device=CPU, size=SIZE, iters=2, warmup=0,
                           compile=True)
    assert row.status == "ok" and row.compile is False and "torch.compile failed" in row.note
    assert row.images == 2


def test_fp16_on_cpu_is_skipped_with_the_reason(pairs):
    row = P.profile_method(TinyNet(), "tiny", pairs, batch_size=1, dtype="fp16", device=CPU, size=SIZE, iters=1)
    assert row.status == "skipped" and "fp16" in row.note and row.images == 0


def test_metric_needing_gt_is_skipped_without_gt(pairs):
    import bench
    from bench.data.datasets import ImagePair

    no_gt = [ImagePair(name=p.name, lq_path=p.lq_path) for p in pairs]
    psnr = bench.create_metric("psnr")
    row = P.profile_metric(psnr, "psnr", no_gt, batch_size=2, device=CPU, size=SIZE, iters=2)
    assert row.status == "skipped" and "ground truth" in row.note
    ok = P.profile_metric(psnr, "psnr", pairs, batch_size=2, device=CPU, size=SIZE, iters=2, warmup=0)
    assert ok.status == "ok" and ok.images == 4


def test_official_style_and_fast_agree(pairs, tmp_path):
    import bench

    cmp = P.compare_official(TinyNet, {"psnr": lambda: bench.create_metric("psnr")}, pairs, tmp_path / "official",
                             device=CPU, batch_size=2, size=SIZE)
    written = sorted(p.name for p in (tmp_path / "official").glob("*.png"))
    assert written == sorted(f"{p.name}.png" for p in pairs)
    # the fast path skips only the PNG round trip of uint8-level images: identical numbers in fp32
    assert cmp["metrics"]["psnr"]["max_abs_diff_per_image"] == 0.0
    assert cmp["metrics"]["psnr"]["official"] == cmp["metrics"]["psnr"]["fast"]
    assert cmp["images"] == 3 and cmp["ratio"] == pytest.approx(cmp["official_s"] / cmp["fast_s"])


def test_cli_writes_csv_and_json(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["profile", "--methods", "lq", "--metrics", "psnr", "--batch-sizes", "1,2", "--size", str(SIZE),
               "--iters", "2", "--warmup", "1", "--workers", "0", "--images", "3", "--out", str(out),
               "--compare-official"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "img/s" in printed and "official-style vs fast (lq, 3 images)" in printed
    with open(out / "profile.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == P.COLUMNS
    data = json.loads((out / "profile.json").read_text())
    assert len(data["rows"]) == len(rows)
    kinds = [(r["kind"], r["name"], r["batch_size"]) for r in rows]
    assert kinds == [("method", "lq", "1"), ("method", "lq", "2"), ("metric", "psnr", "1"), ("metric", "psnr", "2"),
                     ("official-style", "lq", "1"), ("fast-e2e", "lq", "2")]
    assert all(r["status"] == "ok" for r in rows)
    assert data["compare_official"][0]["metrics"]["psnr"]["max_abs_diff_per_image"] == 0.0
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
