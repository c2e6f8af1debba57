"""``bfrbench synth`` end to end on a tiny folder: outputs, manifest, resume, determinism."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import bench
from bench.cli import main as cli
from bench.data.degrade import degrade_named


def _hq_folder(root: Path, n: int = 4, size: int = 96) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for i in range(n):
        img = cv2.GaussianBlur((rng.random((size, size, 3)) * 255).astype(np.uint8), (0, 0), 2)
        ext = ".jpg" if i == 1 else ".png"
        cv2.imwrite(str(root / f"face{i:02d}{ext}"), img)
    return root


def _tree_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


def test_synth_end_to_end(tmp_path: Path, capsys) -> None:
    hq = _hq_folder(tmp_path / "hq")
    out = tmp_path / "out"
    assert cli(["synth", "--hq", str(hq), "--out", str(out), "--preset", "celeba-test", "--seed", "3",
                "--size", "0", "-q"]) == 0
    names = sorted(p.stem for p in (out / "lq").iterdir())
    assert names == ["face00", "face01", "face02", "face03"]
    assert sorted(p.stem for p in (out / "gt").iterdir()) == names
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["preset"] == "celeba-test" and manifest["settings"]["seed"] == 3
    assert manifest["count"] == 4 and set(manifest["images"]) == set(names)
    assert 0.8 <= manifest["images"]["face02"]["scale"] <= 8
    # each LQ equals degrading that one image alone with (seed, name)
    from bench.core.imageio import read_image

    for name in names:
        gt = read_image(out / "gt" / f"{name}.png").rgb
        lq = read_image(out / "lq" / f"{name}.png").rgb
        assert np.array_equal(lq, degrade_named(gt, "celeba-test", 3, name))
    # the result is a valid paired benchmark
    report = bench.create_dataset(f"folder:{out}").validate()
    assert report.ok and report.n_pairs == 4

    # parallel run and a resumed run give the same bytes
    out2 = tmp_path / "out2"
    assert cli(["synth", "--hq", str(hq), "--out", str(out2), "--seed", "3", "--size", "0", "--workers", "2", "-q"]) == 0
    assert _tree_bytes(out2) == _tree_bytes(out)
    (out2 / "lq" / "face01.png").unlink()
    assert cli(["synth", "--hq", str(hq), "--out", str(out2), "--seed", "3", "--size", "0", "-q"]) == 0
    assert _tree_bytes(out2) == _tree_bytes(out)

    # another seed into the same folder is refused with the fix
    assert cli(["synth", "--hq", str(hq), "--out", str(out2), "--seed", "4", "--size", "0", "-q"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert cli(["synth", "--hq", str(hq), "--out", str(out2), "--seed", "4", "--size", "0", "-q", "--overwrite"]) == 0
    assert _tree_bytes(out2) != _tree_bytes(out)


def test_synth_resizes_to_512_and_reports_bad_files(tmp_path: Path, capsys) -> None:
    hq = _hq_folder(tmp_path / "hq", n=2, size=64)
    (hq / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    out = tmp_path / "out"
    rc = cli(["synth", "--hq", str(hq), "--out", str(out), "--preset", "codeformer-large", "-q"])
    assert rc == 1
    assert "broken.png" in capsys.readouterr().err
    assert cv2.imread(str(out / "gt" / "face00.png")).shape == (512, 512, 3)
    assert cv2.imread(str(out / "lq" / "face00.png")).shape == (512, 512, 3)
    assert not (out / "lq" / "broken.png").exists()


@pytest.mark.parametrize("args,msg", [
    (["--hq", "/nonexistent/folder"], "not a folder"),
])
def test_synth_bad_arguments(tmp_path: Path, capsys, args, msg) -> None:
    assert cli(["synth", *args, "--out", str(tmp_path / "o")]) == 2
    assert msg in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli(["synth", "--hq", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "no images" in capsys.readouterr().err
