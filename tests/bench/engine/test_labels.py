"""Labels are right everywhere: stand-in / standard flags from their sources on every row and file,
failure reasons in the CSV, strict JSON (null, not NaN), zero-by-construction gains named.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import torch

from bench.cli import main
from bench.config import RunConfig
from bench.core.atomic import atomic_write_json
from bench.engine.results import ZERO_EMBEDDING_NOTE, build_gains, build_summary
from bench.engine.runner import Runner
from methods.base import RestorationMethod, WeightsInfo
from tests._helpers.runner_helpers import make_folder, register


def _strict_json(path: Path):
    def refuse(name):
        raise ValueError(f"{path}: {name} is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def _unit(label, name, values, metric_values, errors=None):
    per_image = [{"image": f"i{k}", "status": "ok", "values": v, "metric_errors": (errors or {}).get(k, {})}
                 for k, v in enumerate(values)]
    return SimpleNamespace(dataset="d", label=label, method_name=name, config_hash="h", metric_values=metric_values,
                           metric_n={m: len(values) for m in metric_values}, per_image=per_image)


def test_gain_flags_come_from_the_methods_and_metrics():
    from bench.core import plugins

    plugins.load_all()
    base = _unit("codeformer", "codeformer", [{"fid-mobilenet": math.nan, "psnr": 20.0}] * 2,
                 {"psnr": 20.0, "fid-mobilenet": 50.0})
    cond = _unit("codeformer+iqp", "codeformer+iqp", [{"fid-mobilenet": math.nan, "psnr": 21.0}] * 2,
                 {"psnr": 21.0, "fid-mobilenet": 40.0})
    metrics = {"psnr": {"standard": True, "protocol": "p"}, "fid-mobilenet": {"standard": False, "protocol": "f"}}
    methods = {"codeformer": {"standin": True, "weights": [{"name": "codeformer", "standin": True}]},
               "codeformer+iqp": {"standin": False, "weights": [{"name": "iqp-embedding", "standin": False}]}}
    gains = build_gains([base, cond], metrics, methods).set_index("metric")
    assert gains.loc["psnr", "standard"] and not gains.loc["fid-mobilenet", "standard"]
    assert gains["standin"].all()  # the base ran on random weights: every delta is a stand-in's
    assert (gains["note"] == "").all()  # a real difference


def test_zero_embedding_gain_says_zero_by_construction():
    same = [{"psnr": 20.0}, {"psnr": 22.0}]
    base = _unit("codeformer", "codeformer", same, {"psnr": 21.0})
    cond = _unit("codeformer+iqp", "codeformer+iqp", same, {"psnr": 21.0})
    methods = {"codeformer": {"standin": False, "weights": [{"name": "codeformer", "standin": False}]},
               "codeformer+iqp": {"standin": True, "weights": [{"name": "codeformer", "standin": False},
                                                               {"name": "iqp-embedding", "standin": True}]}}
    g = build_gains([base, cond], {"psnr": {"standard": True}}, methods).iloc[0]
    assert g.delta_mean == 0 and g.note == ZERO_EMBEDDING_NOTE and g.standin


def test_failed_metric_row_carries_the_reason():
    unit = _unit("m", "m", [{"psnr": math.nan}] * 3, {"psnr": math.nan},
                 errors={0: {"psnr": "ValueError: pred and gt shapes differ"}, 2: {"psnr": "ValueError: x"}})
    row = build_summary([unit], {"m": {}}, {"psnr": {}}, []).iloc[0]
    assert row.status == "failed"
    assert row.reason == "failed on 2 of 3 images: ValueError: pred and gt shapes differ"


def test_json_is_strict_null_not_nan(tmp_path):
    atomic_write_json(tmp_path / "x.json", {"a": float("nan"), "b": [float("inf"), 1.5], "c": torch.tensor(float("nan"))})
    assert _strict_json(tmp_path / "x.json") == {"a": None, "b": [None, 1.5], "c": None}


def test_run_with_an_untrained_embedding_labels_every_file(tmp_path):
    """codeformer vs codeformer+iqp on a tiny CodeFormer checkpoint: the zero embedding is a stand-in."""
    from methods.codeformer_arch.config import get_config
    from methods.codeformer_arch.network import CodeLookupNet

    cfg = get_config("tiny_codeformer")
    torch.manual_seed(0)
    ckpt = tmp_path / "tiny_cf.pth"
    torch.save({"params_ema": CodeLookupNet(cfg).state_dict(), "net_config": dataclasses.asdict(cfg)}, ckpt)
    ds = register(make_folder(tmp_path / "faces", 2, size=64), "labels")
    run = Runner(RunConfig(datasets=[ds], methods=["codeformer", "codeformer+iqp"], metrics=["psnr"],
                           weights={"codeformer": str(ckpt), "codeformer+iqp": str(ckpt)},
                           out=str(tmp_path / "run"), device="cpu", batch_size=2, workers=0, quiet=True,
                           report=True)).run().run_dir
    summary = pd.read_csv(run / "summary.csv")
    gain = pd.read_csv(run / "gains.csv").iloc[0]
    assert bool(gain.standin) and bool(gain.standard) and gain.delta_mean == 0
    assert gain.note.startswith("zero by construction")
    scores = summary.set_index("method")
    assert not scores.loc["codeformer", "standin"] and scores.loc["codeformer+iqp", "standin"]
    with open(run / "gains.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["standin"] == "True" and rows[0]["standard"] == "True"
    assert rows[0]["note"].startswith("zero by construction")
    from reports.render import render_report

    assert "zero by construction" in render_report(run).read_text()
    _strict_json(run / "manifest.json")


class _RandomWeights(RestorationMethod):
    """A method on random weights (a stand-in), as ``weights="random"`` gives for the learned ones."""

    name = "test-random-weights"

    def __init__(self, weights=None) -> None:
        super().__init__()
        self.weights_info = [WeightsInfo(name="random", standin=True, note="random init")]

    def restore(self, lq):
        return torch.nn.functional.interpolate(lq, size=(self.output_size, self.output_size), mode="bilinear")


def test_profile_flags_stand_in_weights_and_writes_strict_json(tmp_path, capsys, registries):
    from bench.core.registry import METHODS

    METHODS.add("test-random-weights", _RandomWeights, takes_quality=False)
    rc = main(["profile", "--methods", "test-random-weights", "lq", "--metrics", "psnr", "--batch-sizes", "1",
               "--size", "32", "--iters", "2", "--warmup", "0", "--workers", "0", "--device", "cpu",
               "--out", str(tmp_path / "p")])
    out = capsys.readouterr().out
    assert rc == 0, out
    with open(tmp_path / "p" / "profile.csv", newline="") as fh:
        rows = {(r["kind"], r["name"]): r for r in csv.DictReader(fh)}
    assert rows[("method", "test-random-weights")]["standin"] == "True"
    assert rows[("method", "lq")]["standin"] == "False"
    assert rows[("metric", "psnr")]["standard"] == "True"
    assert "test-random-weights [stand-in]" in out
    _strict_json(tmp_path / "p" / "profile.json")
