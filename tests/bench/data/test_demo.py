"""The embedded demo benchmark: built from registry photos, reproducible byte for byte."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

import bench
from bench.data import demo
from bench.data.datasets import BenchmarkSet
from tests._helpers.locked import unlocked


def test_sources_are_pinned() -> None:
    for photo in demo.SOURCES + demo.NPM_SOURCES:
        assert len(photo.file.sha256) == 64
        assert "==" in photo.file.requirement or "@" in photo.file.requirement or photo.file.registry == "installed"
        for face in photo.faces:
            pts = np.asarray(face)
            assert pts.shape == (5, 2)
            assert pts[0, 0] < pts[1, 0] or photo.key.startswith("faceapi")  # left eye first (upright faces)
    names = demo.face_names()
    assert len(names) == len(set(names)) == 13
    assert len(demo.face_names(include_npm=True)) == 13 + 21


def test_demo_registered_and_lazy(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BFRBENCH_DATA", str(tmp_path))
    from bench.core.registry import DATASETS

    entry = DATASETS.entry("demo")
    assert entry.has_gt and entry.expected_count == 13
    ok, reason = entry.available()
    assert ok and "built on first use" in reason
    ds = bench.create_dataset("demo")
    assert isinstance(ds, BenchmarkSet) and ds.lq_dir == tmp_path / "demo" / "lq"
    assert not (tmp_path / "demo").exists()  # nothing built until pairs() is asked for


@pytest.mark.network
def test_demo_build_is_reproducible(tmp_path: Path, monkeypatch) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = demo.build_demo(tmp_path / "a")
    # the detector finds every pinned face where the table says (else the build warns)
    assert not [str(w.message) for w in caught if "demo build" in str(w.message)]
    second = demo.build_demo(tmp_path / "b")
    m1 = json.loads((first / "manifest.json").read_text())
    m2 = json.loads((second / "manifest.json").read_text())
    assert m1 == m2
    assert (first / "manifest.json").read_bytes() == (second / "manifest.json").read_bytes()
    assert m1["count"] == 13 and len(m1["files"]) == 26
    for rel in m1["files"]:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel
    assert demo.verify_demo(tmp_path / "a") == []
    assert m1["digest"] == demo.files_digest(m1["files"])
    # exact bytes only where the reference build's versions are installed (OpenCV's, and the locked
    # numpy / scikit-image); elsewhere the build is still checked to be reproducible (above)
    if demo.REFERENCE_DIGEST and cv2.__version__ == demo.REFERENCE_OPENCV and not unlocked("numpy", "scikit-image"):
        assert m1["matches_reference"] is True, "demo bytes differ from the reference build"

    # the set it makes: aligned 512x512 pairs, LQ degraded from GT
    monkeypatch.setenv("BFRBENCH_DATA", str(tmp_path / "a"))
    ds = bench.create_dataset("demo")
    report = ds.validate()
    assert report.ok and not report.problems and report.n_pairs == 13
    for pair in ds.pairs():
        gt = cv2.imread(str(pair.gt_path))
        lq = cv2.imread(str(pair.lq_path))
        assert gt.shape == lq.shape == (512, 512, 3)
        assert cv2.PSNR(gt, lq) < 35  # degraded
    # a face's eyes sit where the FFHQ template puts them: darker than the cheeks below them
    astro = cv2.cvtColor(cv2.imread(str(first / "gt" / "astronaut_00.png")), cv2.COLOR_BGR2GRAY).astype(float)
    eye = astro[235:246, 188:198].mean()
    cheek = astro[280:291, 188:198].mean()
    assert eye < cheek

    # tampering is detected; a rebuild is a no-op unless forced
    (first / "lq" / "t1_03.png").write_bytes(b"")
    assert demo.verify_demo(tmp_path / "a") == ["lq/t1_03.png"]
    demo.build_demo(tmp_path / "a")
    assert demo.verify_demo(tmp_path / "a") == ["lq/t1_03.png"]
    demo.build_demo(tmp_path / "a", force=True)
    assert demo.verify_demo(tmp_path / "a") == []
