"""CLI: restore writes one PNG per input with its stem; user errors are one clear line."""
from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from tests.runner_helpers import make_folder, register


def test_restore_aligned_writes_one_png_per_input(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.jpg", "b.png", "c.bmp"):
        cv2.imwrite(str(src / name), rng.integers(0, 256, (512, 512, 3), dtype=np.uint8))
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n0000")
    out = tmp_path / "out"
    rc = main(["restore", "--method", "lq", "--input", str(src), "--output", str(out), "--aligned",
               "--device", "cpu", "--batch-size", "2"])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png"]
    # lq on a 512 PNG is the identity: the output equals the input exactly
    assert np.array_equal(cv2.imread(str(out / "b.png")), cv2.imread(str(src / "b.png")))
    err = capsys.readouterr().out
    assert "broken.png" in err and "truncated PNG" in err


def test_restore_rejects_an_option_the_method_lacks(tmp_path, capsys):
    src = make_folder(tmp_path / "s", 1) / "lq"
    rc = main(["restore", "--method", "lq", "--input", str(src), "--output", str(tmp_path / "o"), "--aligned",
               "--quality", "0.9"])
    assert rc == 2
    assert "takes no --quality" in capsys.readouterr().err


def test_unknown_method_is_one_line_with_suggestion(tmp_path, capsys):
    rc = main(["run", "--methods", "clasical", "--out", str(tmp_path / "r"), "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "unknown method 'clasical'" in err and "Did you mean classical" in err
    assert "Traceback" not in err


def test_run_via_cli_writes_run_folder(tmp_path):
    ds = register(make_folder(tmp_path / "setC", 3), "C")
    out = tmp_path / "run"
    rc = main(["run", "--datasets", ds, "--methods", "lq", "classical", "--metrics", "test-mae", "--out", str(out),
               "--device", "cpu", "--workers", "0", "--quiet", "--no-report"])
    assert rc == 0
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary.method) == {"lq", "classical"}
    assert (out / "per_image.parquet").exists() and (out / "manifest.json").exists()


def test_list_shows_registries(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for section in ("METHODS", "METRICS", "DATASETS", "WEIGHTS"):
        assert section in out
    assert "classical" in out


@pytest.mark.parametrize("bad", [["run", "--batch-size", "0"], ["run", "--weights", "nopath"]])
def test_bad_run_options(bad, capsys, tmp_path):
    assert main(bad + ["--out", str(tmp_path / "r"), "--quiet"]) == 2
