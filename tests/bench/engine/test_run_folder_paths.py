"""A run folder made with the default relative data root (``./datasets``) is self-contained.

Dataset paths are stored relative to the dataset's folders (absolute in manifest.json) and saved
outputs relative to the run folder, so the report finds every LQ, GT and output image wherever the
run folder is opened from or moved to.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from bench.engine.run_folder import RunFolder
from reports.render import render_report
from tests._helpers.report_synth import face_image

N_IMAGES = 2


def make_relative_run(base: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``bfrbench run`` from ``base`` with the default data root and a relative ``--out``; returns the run folder."""
    monkeypatch.delenv("BFRBENCH_DATA", raising=False)
    base.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(base)
    for sub in ("lq", "gt"):
        (base / "datasets" / "celeba-test" / sub).mkdir(parents=True)
    for i in range(N_IMAGES):
        gt = face_image(i, 512)
        lq = cv2.resize(cv2.resize(gt, (64, 64), interpolation=cv2.INTER_AREA), (512, 512))
        cv2.imwrite(str(base / "datasets/celeba-test/gt" / f"{i:05d}.png"), cv2.cvtColor(gt, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(base / "datasets/celeba-test/lq" / f"{i:05d}.png"), cv2.cvtColor(lq, cv2.COLOR_RGB2BGR))
    rc = main(["run", "--methods", "lq", "classical", "--datasets", "celeba-test", "--limit", str(N_IMAGES),
               "--metrics", "psnr", "--out", "runs/rel", "--save-images", "--device", "cpu", "--quiet"])
    assert rc == 0
    return base / "runs" / "rel"


def test_per_image_paths_are_relative_to_their_roots_and_read_back_absolute(tmp_path, monkeypatch):
    run = make_relative_run(tmp_path / "work", monkeypatch)
    df = pd.read_parquet(run / "per_image.parquet")
    assert len(df) == 2 * N_IMAGES
    datasets = RunFolder(run).manifest()["datasets"]["celeba-test"]
    for col, root in (("lq_path", "lq_dir"), ("gt_path", "gt_dir")):
        assert Path(datasets[root]).is_absolute()
        assert all(not Path(p).is_absolute() and (Path(datasets[root]) / p).is_file() for p in df[col]), df[col].tolist()
    assert all(not Path(p).is_absolute() and (run / p).is_file() for p in df["out_path"]), df["out_path"].tolist()
    read = RunFolder(run).per_image()
    for col in ("lq_path", "gt_path", "out_path"):
        assert all(Path(p).is_absolute() and Path(p).is_file() for p in read[col]), read[col].tolist()


def test_moved_run_folder_report_finds_every_image(tmp_path, monkeypatch):
    run = make_relative_run(tmp_path / "work", monkeypatch)
    moved = tmp_path / "elsewhere" / "moved-run"
    moved.parent.mkdir()
    shutil.move(str(run), moved)
    monkeypatch.chdir(tmp_path / "elsewhere")  # neither the old working directory nor the run folder
    html = render_report(moved, data_roots=[tmp_path / "work" / "datasets"]).read_text(encoding="utf-8")
    assert "cannot read" not in html and "file not found" not in html and "not shown:" not in html
    # every gallery tile is an embedded image: LQ, the two methods' outputs and GT for each shown face
    assert html.count("data:image/") >= N_IMAGES * 4


def test_demo_data_root_resolves_to_the_demo_folder_not_its_anchor(tmp_path, monkeypatch):
    """``data.root: demo`` in a training config is the demo's GT folder, never ``/`` or the working directory."""
    from methods.iqp_bfr.train import trainer

    built = tmp_path / "data" / "demo"
    (built / "gt").mkdir(parents=True)
    cv2.imwrite(str(built / "gt" / "a.png"), np.zeros((8, 8, 3), np.uint8))
    monkeypatch.setattr("bench.data.demo.build_demo", lambda *a, **k: built)
    assert Path(trainer.resolve_data_root("demo")) == built / "gt"
