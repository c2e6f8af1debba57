"""The run folder: one schema, relative paths (a moved folder still reports and compares), results.json,
stale files of an earlier run removed, unreadable shards recomputed, and a run with no method left."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from bench.cli import main
from bench.core.errors import UserError
from bench.engine.run_folder import SCHEMA_VERSION, SUMMARY_COLUMNS, RunFolder, layout
from tests._helpers.runner_helpers import make_folder


def _run(data: Path, out: Path, *extra: str, methods: tuple[str, ...] = ("lq", "classical")) -> int:
    ds = data / "faces"
    if not ds.exists():
        make_folder(ds, 3)
    return main(["run", "--datasets", f"folder:{ds / 'lq'}::{ds / 'gt'}", "--methods", *methods,
                 "--metrics", "psnr", "ssim", "--out", str(out), "--device", "cpu", "--batch-size", "2",
                 "--workers", "0", "--quiet", *extra])


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("runfolder")
    assert _run(data, data / "run", "--save-images") == 0
    return data


@pytest.fixture
def finished(template, tmp_path) -> Path:
    """A copy of one finished run (with saved images) over the module's data."""
    shutil.copytree(template / "run", tmp_path / "run")
    return tmp_path / "run"


def test_a_moved_run_folder_is_reported_and_compared(finished, tmp_path, capsys):
    moved = tmp_path / "elsewhere" / "run"
    moved.parent.mkdir()
    shutil.move(str(finished), moved)
    stored = pd.read_parquet(moved / layout.PER_IMAGE)
    assert not any(Path(p).is_absolute() for p in stored.lq_path) and not any(
        Path(p).is_absolute() for p in stored.out_path)
    per_image = RunFolder(moved).per_image()
    assert all(Path(p).is_file() for col in ("lq_path", "gt_path", "out_path") for p in per_image[col])
    assert all(str(p).startswith(str(moved)) for p in per_image.out_path)
    data = Path(per_image.lq_path.iloc[0]).parents[1]  # the dataset's folder: trusted by the reader of the report
    assert main(["report", str(moved), "--data-root", str(data)]) == 0
    html = (moved / "index.html").read_text()
    assert "outside the run folder" not in html and "file not found" not in html
    table = tmp_path / "table.yaml"
    dataset = RunFolder(moved).summary().dataset.iloc[0]
    table.write_text(yaml.safe_dump({"name": "t", "source": "test", "entries": [
        {"dataset": dataset, "method": "lq", "metric": "psnr", "value": 20.0}]}))
    capsys.readouterr()
    assert main(["compare", str(moved), "--against", str(table)]) in (0, 1)
    assert "not in this run: 0" in capsys.readouterr().out


def test_results_json_carries_every_score_with_the_schema(finished):
    folder = RunFolder(finished)
    doc = json.loads((finished / layout.RESULTS).read_text())
    assert doc["schema"] == layout.RESULTS_SCHEMA and doc["schema_version"] == SCHEMA_VERSION
    assert folder.manifest()["schema_version"] == SCHEMA_VERSION
    summary = folder.summary()
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    for row in summary.itertuples(index=False):
        entry = doc["results"][row.dataset][row.method][row.metric]
        assert entry["value"] == pytest.approx(row.value) and entry["n"] == row.n and entry["n_inf"] == row.n_inf
        assert entry["protocol"] == row.protocol and entry["higher_better"] == row.higher_better
        assert entry["standard"] == row.standard and entry["standin"] == row.standin
    (dataset, info), = doc["datasets"].items()
    assert info["n"] == 3 and info["published_fingerprint"] == "unknown"
    assert info["dataset_fingerprint"] == folder.manifest()["datasets"][dataset]["dataset_fingerprint"]
    assert len(info["dataset_fingerprint"]) == 64
    assert doc["run"]["config"]["methods"] == ["lq", "classical"]
    assert folder.results() == doc


def test_a_new_run_removes_the_files_an_earlier_run_derived(finished, template):
    for name in (layout.SUITE, layout.COMPARISON, layout.GAINS):
        (finished / name).write_text("{}" if name.endswith(".json") else "a,b\n1,2\n")
    assert _run(template, finished, "--no-report") == 0
    assert [n for n in (layout.SUITE, layout.COMPARISON, layout.GAINS) if (finished / n).exists()] == []
    assert RunFolder(finished).suite_rows() is None


@pytest.mark.parametrize("damage", ["truncated", "foreign"])
def test_an_unreadable_shard_is_dropped_and_recomputed(finished, template, damage):
    before = RunFolder(finished).per_image(absolute_paths=False)
    shard = sorted((finished / layout.UNITS).glob("*/shard_*.pt"))[0]
    if damage == "foreign":
        import torch

        torch.save({"something": "else"}, shard)
    else:
        shard.write_bytes(shard.read_bytes()[:40])
    assert _run(template, finished, "--no-report", "--save-images") == 0
    after = RunFolder(finished).per_image(absolute_paths=False)
    pd.testing.assert_frame_equal(before, after)


@pytest.mark.parametrize("report", [[], ["--no-report"]])
def test_every_method_skipped_exits_3_with_the_reason(template, tmp_path, capsys, report):
    rc = _run(template, tmp_path / "run", *report, methods=("codeformer",))
    err = capsys.readouterr().err
    assert rc == 3, err
    assert "nothing was computed" in err and "bfrbench fetch codeformer" in err
    assert "Traceback" not in err and "missing column" not in err


def test_a_newer_schema_is_refused_in_one_line(finished):
    manifest = json.loads((finished / layout.MANIFEST).read_text())
    manifest["schema_version"] = SCHEMA_VERSION + 1
    (finished / layout.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="newer than this bfrbench reads"):
        RunFolder(finished).manifest()
