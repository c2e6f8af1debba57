"""Benchmark sets: layouts of the releases, pairing, validation of bad files, clear errors."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import bench
from bench.core.errors import UserError
from bench.core.registry import DATASETS
from bench.data.datasets import SPECS, BenchmarkSet, data_root, folder_set, locate, parse_folder_name


def _png(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return path


def _rgb(size: int = 512, value: int = 100) -> np.ndarray:
    img = np.full((size, size, 3), value, np.uint8)
    img[::7] = 200
    return img


@pytest.fixture
def messy(tmp_path: Path) -> tuple[Path, Path]:
    """An LQ/GT pair of folders with one file of every kind of trouble."""
    lq, gt = tmp_path / "set" / "lq", tmp_path / "set" / "gt"
    for name in ("good", "grey", "rgba", "deep", "small", "truncjpg", "empty", "lonely"):
        _png(gt / f"{name}.png", _rgb())
    _png(gt / "orphan_gt.png", _rgb())
    _png(lq / "good.png", _rgb())
    _png(lq / "grey.png", np.full((512, 512), 90, np.uint8))
    _png(lq / "rgba.png", np.dstack([_rgb(), np.full((512, 512), 128, np.uint8)]))
    _png(lq / "deep.png", (_rgb().astype(np.uint16) * 257))
    _png(lq / "small.png", _rgb(256))
    ok, jpg = cv2.imencode(".jpg", _rgb())
    (lq / "truncjpg.jpg").write_bytes(jpg.tobytes()[: len(jpg) // 2])
    (lq / "empty.png").write_bytes(b"")
    _png(lq / "lonely_lq.png", _rgb())
    (lq / "notes.txt").write_text("not an image")
    return lq, gt


def test_validation_lists_each_problem(messy: tuple[Path, Path]) -> None:
    lq, gt = messy
    report = BenchmarkSet("messy", lq, gt, expected_count=3000).validate(workers=2)
    every: dict[str, list[tuple[str, str]]] = {}
    for p in report.problems:
        every.setdefault(Path(p.path).name, []).append((p.severity, p.reason))
    by_file = {name: found[0] for name, found in every.items()}
    assert by_file["truncjpg.jpg"] == ("error", "truncated JPEG (no end-of-image marker)")
    assert by_file["empty.png"] == ("error", "empty file (0 bytes)")
    assert by_file["lonely_lq.png"][0] == "error" and "LQ without GT partner" in by_file["lonely_lq.png"][1]
    assert by_file["orphan_gt.png"][0] == "warning" and "GT without LQ partner" in by_file["orphan_gt.png"][1]
    assert by_file["grey.png"] == ("warning", "converted on reading: grey->rgb")
    assert by_file["rgba.png"] == ("warning", "converted on reading: rgba->rgb (alpha dropped)")
    assert by_file["deep.png"] == ("warning", "converted on reading: 16bit->8bit")
    assert by_file["small.png"][0] == "warning" and "size 256x256, not 512x512" in by_file["small.png"][1]
    assert every["small.png"][1] == ("warning", "LQ is 256x256 but its GT is 512x512")
    assert by_file["notes.txt"] == ("warning", "not an image file (ignored)")
    assert by_file["lq"][0] == "warning" and "unexpected count: 8 LQ images, the benchmark has 3000" in by_file["lq"][1]
    assert "good.png" not in by_file
    assert not report.ok and len(report.errors) == 3
    assert report.n_lq == 8 and report.n_gt == 9 and report.n_pairs == 7
    assert report.sizes[(512, 512)] == 14 and report.sizes[(256, 256)] == 1
    text = report.summary()
    assert "3 errors" in text and "truncjpg.jpg" in text
    d = report.to_dict()
    assert d["ok"] is False and len(d["problems"]) == len(report.problems)


def test_pairs_by_stem_sorted(messy: tuple[Path, Path]) -> None:
    lq, gt = messy
    pairs = BenchmarkSet("messy", lq, gt).pairs()
    names = [p.name for p in pairs]
    assert names == sorted(names) and "notes" not in names
    by = {p.name: p for p in pairs}
    assert by["truncjpg"].gt_path == gt / "truncjpg.png"  # pairs across extensions
    assert by["lonely_lq"].gt_path is None
    assert all(p.lq_path.parent == lq for p in pairs)


def test_clean_set_validates_ok(tmp_path: Path) -> None:
    for i in range(3):
        _png(tmp_path / "lq" / f"{i:08d}.png", _rgb(value=50 + i))
        _png(tmp_path / "gt" / f"{i:08d}.png", _rgb(value=60 + i))
    report = BenchmarkSet("clean", tmp_path / "lq", tmp_path / "gt", expected_count=3).validate()
    assert report.ok and not report.problems and report.n_pairs == 3


def test_empty_or_missing_folder_error_names_folder_and_fix(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError) as exc:
        BenchmarkSet("mine", tmp_path / "empty").pairs()
    msg = str(exc.value)
    assert str((tmp_path / "empty").absolute()) in msg and "no LQ images" in msg and "put the aligned" in msg
    with pytest.raises(UserError, match="LQ folder not found"):
        BenchmarkSet("mine", tmp_path / "nope").pairs()
    report = BenchmarkSet("mine", tmp_path / "empty").validate()
    assert not report.ok and "no LQ images" in report.errors[0].reason


def test_standard_sets_registered_with_counts() -> None:
    names = set(bench.list_datasets())
    assert {"celeba-test", "lfw-test", "webphoto-test", "wider-test", "celebchild-test", "demo"} <= names
    counts = {n: DATASETS.entry(n).expected_count for n in SPECS}
    assert counts == {"celeba-test": 3000, "lfw-test": 1711, "webphoto-test": 407, "wider-test": 970,
                      "celebchild-test": 180}
    assert DATASETS.entry("celeba-test").has_gt and not DATASETS.entry("lfw-test").has_gt


def test_data_root_env_and_missing_set_message(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BFRBENCH_DATA", str(tmp_path))
    assert data_root() == tmp_path
    ok, reason = DATASETS.entry("wider-test").available()
    assert not ok and str(tmp_path / "wider-test" / "lq") in reason and "Wider-Test.zip" in reason
    ds = bench.create_dataset("celeba-test")
    with pytest.raises(UserError) as exc:
        ds.pairs()
    assert "BFRBENCH_DATA" in str(exc.value) and "celeba_512_validation" in str(exc.value)


def test_release_folder_names_are_found(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BFRBENCH_DATA", str(tmp_path))
    # GFPGAN's script layout for CelebA-Test, DAEFR's for LFW, a flat WebPhoto folder
    _png(tmp_path / "celeba" / "celeba_512_validation_lq" / "00000000.png", _rgb())
    _png(tmp_path / "celeba" / "celeba_512_validation" / "00000000.png", _rgb())
    _png(tmp_path / "lfw_cropped_faces" / "Aaron_Eckhart_0001_00.png", _rgb())
    _png(tmp_path / "WebPhoto-Test" / "00001_00.png", _rgb())
    _png(tmp_path / "wider-test" / "lq" / "0001.png", _rgb())
    celeba = bench.create_dataset("celeba-test")
    assert celeba.lq_dir == tmp_path / "celeba" / "celeba_512_validation_lq"
    assert celeba.gt_dir == tmp_path / "celeba" / "celeba_512_validation"
    assert [p.gt_path is not None for p in celeba.pairs()] == [True]
    assert bench.create_dataset("lfw-test").lq_dir == tmp_path / "lfw_cropped_faces"
    assert bench.create_dataset("webphoto-test").pairs()[0].name == "00001_00"
    wider = bench.create_dataset("wider-test")
    assert wider.lq_dir == tmp_path / "wider-test" / "lq" and wider.root == tmp_path / "wider-test"
    ok, reason = DATASETS.entry("celeba-test").available()
    assert ok and "expected 3000" in reason
    # the canonical layout wins over an alias
    _png(tmp_path / "celeba-test" / "lq" / "a.png", _rgb())
    assert locate(SPECS["celeba-test"], tmp_path)[0] == tmp_path / "celeba-test" / "lq"


def test_folder_resolver(tmp_path: Path) -> None:
    _png(tmp_path / "mine" / "lq" / "x.png", _rgb())
    _png(tmp_path / "mine" / "gt" / "x.png", _rgb())
    _png(tmp_path / "flat" / "y.png", _rgb())
    ds = bench.create_dataset(f"folder:{tmp_path / 'flat'}")
    assert not ds.has_gt and ds.expected_count is None and [p.name for p in ds.pairs()] == ["y"]
    ds = bench.create_dataset(f"folder:{tmp_path / 'mine'}")  # a set folder with lq/ and gt/
    assert ds.has_gt and ds.pairs()[0].gt_path == tmp_path / "mine" / "gt" / "x.png"
    ds = bench.create_dataset(f"folder:{tmp_path / 'flat'}::{tmp_path / 'mine' / 'gt'}")
    assert ds.has_gt and ds.gt_dir == tmp_path / "mine" / "gt"
    assert ds.validate().errors[0].reason.startswith("LQ without GT partner")
    assert parse_folder_name("a::b") == (Path("a"), Path("b"))
    entry = DATASETS.entry(f"folder:{tmp_path / 'nothing'}")
    assert entry.available()[0] is False
    with pytest.raises(UserError, match="needs a path"):
        folder_set("")
