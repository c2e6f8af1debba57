"""scripts/gpu_check.py's summary: every #26 target gets a verdict, and a step cut short is never read as met."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _targets(text: str) -> dict[str, str]:
    rows = text.split("## issue #26 targets")[1].strip().splitlines()[2:]
    return {r.split("|")[1].strip(): r.split("|")[3].strip() for r in rows}


def test_nothing_measured_is_said_per_target(gpu_check, tmp_path, capsys):
    gpu_check.summary(tmp_path)
    verdicts = _targets(capsys.readouterr().out)
    assert len(verdicts) == 4 and set(verdicts.values()) == {"not measured"}


def test_a_paper_run_stopped_at_its_limit_is_not_met(gpu_check, tmp_path, capsys):
    # 200 s is under the 300 s goal, but the run was killed (exit 124): it did not finish the table
    (tmp_path / "paper.json").write_text(json.dumps({"seconds": 200.0, "exit": 124, "images": 3000, "metrics": 7,
                                                     "methods": ["codeformer"]}))
    (tmp_path / "unfinished_compile_max-autotune.json").write_text('{"mode": "max-autotune", "exit": 124, "seconds": 120}')
    gpu_check.summary(tmp_path)
    out = capsys.readouterr().out
    verdicts = _targets(out)
    assert verdicts["paper table end to end, seconds"].startswith("NOT met")
    assert "| max-autotune | - | - | did not finish (exit 124 after 120 s)" in out
    (tmp_path / "paper.json").write_text(json.dumps({"seconds": 200.0, "exit": 0, "images": 3000, "metrics": 7,
                                                     "methods": ["codeformer"]}))
    gpu_check.summary(tmp_path)
    assert _targets(capsys.readouterr().out)["paper table end to end, seconds"].startswith("met")


def test_throughput_rows_are_collected_into_one_file(gpu_check, tmp_path, capsys):
    row = {"name": "gpen", "batch_size": 16, "dtype": "bf16", "images_per_s": 100.0, "compute_images_per_s": 120.0,
           "latency_p50_ms": 160.0, "peak_mem_mb": 900.0, "channels_last": True, "status": "ok", "note": "",
           "kind": "method"}
    (tmp_path / "throughput_gpen").mkdir()
    (tmp_path / "throughput_gpen" / "profile.json").write_text(json.dumps(
        {"environment": {"device": "cuda", "gpu": "H100", "torch": "2.11"}, "rows": [row, {**row, "batch_size": 1}]}))
    gpu_check.summary(tmp_path)
    assert "| gpen | 16 | bf16 | 100.00 | 120.00 | 160.0 | 900 | ok |" in capsys.readouterr().out
    rows = json.loads((tmp_path / "throughput.json").read_text())
    assert [(r["name"], r["batch_size"], r["device"]) for r in rows] == [("gpen", 16, "H100"), ("gpen", 1, "H100")]
