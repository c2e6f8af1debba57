"""The pyiqa/timm/torchmetrics idiom of the Python API: inputs, names, filters, options, ``bench.run``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import bench
from bench.core.errors import BfrBenchError
from bench.core.imageio import write_image
from bench.core.registry import UnknownOptionError
from bench.weights import fetch

REPO = Path(__file__).resolve().parents[2]
MARKER = "<!-- verbatim: tests/bench/test_api.py -->"


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    """Two 48x40 RGB PNGs (an output and its reference), different, not flat."""
    rng = np.random.default_rng(3)
    folder = tmp_path_factory.mktemp("api_images")
    gt = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    pred = np.clip(gt.astype(int) + rng.integers(-20, 21, gt.shape), 0, 255).astype(np.uint8)
    write_image(folder / "pred.png", pred)
    write_image(folder / "gt.png", gt)
    return folder / "pred.png", folder / "gt.png"


def _kinds(path: Path) -> dict[str, object]:
    """The same image in every form pyiqa takes."""
    from PIL import Image

    rgb = np.asarray(Image.open(path).convert("RGB"))
    chw = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float() / 255.0
    return {"str": str(path), "path": path, "pil": Image.open(path), "numpy": rgb, "chw": chw,
            "bchw": chw[None], "loaded": bench.load_image(path)}


@pytest.mark.parametrize("kind", ["str", "path", "pil", "numpy", "chw", "bchw", "loaded"])
@pytest.mark.parametrize("metric", ["psnr", "ssim"])
def test_every_input_kind_gives_the_same_value(pair, kind, metric):
    pred_path, gt_path = pair
    m = bench.create_metric(metric)
    ref = float(m(_kinds(pred_path)["bchw"], _kinds(gt_path)["bchw"])[0])
    assert 10 < ref < 100 if metric == "psnr" else 0 < ref < 1
    m = bench.create_metric(metric)
    value = m(_kinds(pred_path)[kind], _kinds(gt_path)[kind])
    assert value.shape == (1,) and float(value[0]) == ref
    assert m.compute() == pytest.approx(ref)


def test_load_image_is_the_runs_decoding(pair):
    from bench.core.imageio import read_image

    x = bench.load_image(pair[0])
    assert x.shape == (1, 3, 48, 40) and x.dtype == torch.float32
    assert torch.equal((x[0] * 255).round().byte().permute(1, 2, 0), torch.from_numpy(read_image(pair[0]).rgb))


def test_bad_inputs_are_one_clear_error(pair):
    m = bench.create_metric("psnr")
    with pytest.raises(ValueError, match=r"psnr\.update input: expected a numpy HxWx3 uint8 RGB array, got float64"):
        m(np.zeros((8, 8, 3)), str(pair[1]))
    with pytest.raises(BfrBenchError, match="nope.png"):
        m(str(pair[0].parent / "nope.png"), str(pair[1]))


def test_method_restore_takes_a_path(pair):
    method = bench.create_method("lq")
    out = method.restore(str(pair[0]))
    assert torch.equal(out, method.restore(bench.load_image(pair[0])))


def test_direction_under_each_librarys_name():
    psnr, lpips_cls = bench.create_metric("psnr"), type(bench.create_metric("psnr-y"))
    assert psnr.higher_better and psnr.higher_is_better and not psnr.lower_better
    assert lpips_cls.higher_is_better is True and lpips_cls.lower_better is False  # class-level, as torchmetrics
    from bench.core.registry import METRICS

    niqe_cls = METRICS.entry("niqe").cls
    assert niqe_cls.lower_better is True and niqe_cls.higher_is_better is False
    psnr.higher_better = False  # an instance whose option flips the direction
    assert psnr.lower_better is True and psnr.higher_is_better is False


def test_list_with_wildcards_and_modes():
    ids = bench.list_metrics("ids*")
    assert ids and all(n.startswith("ids") for n in ids) and "ids" in ids
    assert bench.list_metrics("IDS*") == ids
    assert "ids-dlib" not in bench.list_metrics("ids*", exclude_filters="*dlib")
    fr, nr, sets = (bench.list_metrics(mode=m) for m in ("FR", "NR", "set"))
    assert {"psnr", "ssim", "lpips"} <= set(fr) and {"niqe", "brisque"} <= set(nr) and "fid" in sets
    assert not set(fr) & set(nr) and not set(nr) & set(sets)
    assert sorted(fr + nr + sets) == bench.list_metrics()
    assert bench.list_metrics(["psnr*", "ssim"]) == ["psnr", "psnr-y", "ssim"]
    with pytest.raises(BfrBenchError, match="unknown mode 'XR'; one of FR, NR, set"):
        bench.list_metrics(mode="XR")
    assert bench.list_methods("codeformer*") == ["codeformer", "codeformer+iqp"]
    assert "codeformer" in bench.list_methods(family="codeformer")
    assert "lq" not in bench.list_methods(family="codeformer")
    assert bench.list_datasets("demo") == ["demo"]


@pytest.mark.parametrize("call, message", [
    (lambda: bench.create_metric("psnr", crop_bordr=4),
     r"metric psnr has no option 'crop_bordr' \(did you mean 'crop_border'\?\); its options: crop_border, test_y_channel"),
    (lambda: bench.create_metric("psnr:crop_bordr=4"), r"metric psnr has no option 'crop_bordr' \(did you mean"),
    (lambda: bench.create_method("lq", scal=2), r"method lq has no option 'scal'"),
    (lambda: bench.run(dataset=["demo"]), r"bench.run has no option 'dataset' \(did you mean 'datasets'\?\)"),
])
def test_unknown_option_is_one_line_with_a_did_you_mean(call, message):
    with pytest.raises(UnknownOptionError, match=message) as info:
        call()
    assert "\n" not in str(info.value) and info.value.fix


def test_cli_unknown_metric_option_is_one_line(capsys, tmp_path):
    from bench.cli import main
    from tests._helpers.runner_helpers import make_folder

    data = make_folder(tmp_path / "faces", 1, size=32)
    rc = main(["run", "--datasets", f"folder:{data}", "--methods", "lq", "--metrics", "psnr:crop_bordr=4",
               "--out", str(tmp_path / "r"), "--quiet", "--no-report"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "did you mean 'crop_border'?" in err, err


def test_bench_run_and_per_image(tmp_path):
    from tests._helpers.runner_helpers import make_folder

    data = make_folder(tmp_path / "faces", 3, seed=1, size=32)
    outcome = bench.run(datasets=[f"folder:{data}"], methods=["lq"], metrics=["psnr"], out=str(tmp_path / "run"),
                        device="cpu", workers=0, quiet=True, report=False)
    per_image = outcome.per_image
    assert len(per_image) == 3 and "psnr" in per_image.columns
    import pandas as pd

    assert per_image["psnr"].tolist() == pd.read_parquet(tmp_path / "run" / "per_image.parquet")["psnr"].tolist()
    row = outcome.summary[outcome.summary.metric == "psnr"].iloc[0]
    assert row.value == pytest.approx(per_image["psnr"].mean())


def test_readme_three_lines_run(tmp_path, monkeypatch, bfrbench_home, pair):
    """README's block, verbatim, on a face.png in the working folder; its score is NIQE's value for that file."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    code = text.split(MARKER, 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert len([ln for ln in code.splitlines() if ln.strip()]) == 3
    fetch("niqe-pris-params", quiet=True)
    import cv2

    rgb = cv2.GaussianBlur(np.random.default_rng(5).integers(0, 256, (192, 192, 3), dtype=np.uint8), (5, 5), 1.5)
    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "face.png", rgb)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own lines
    score = scope["score"]
    assert score.shape == (1,) and torch.isfinite(score).all() and scope["niqe"].lower_better
    expected = bench.create_metric("niqe")(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0)
    assert torch.equal(score, expected)
