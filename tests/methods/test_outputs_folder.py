"""Output folders as methods (``outputs:DIR``) and metric options, through the real runner."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from bench.config import MethodSpec, RunConfig
from bench.core.errors import UserError
from bench.engine.runner import Runner
from methods.outputs_folder import folder_content_hash, parse_outputs_spec
from tests._helpers.runner_helpers import make_folder, register


def _cfg(ds: str, out: Path, methods: list[str], metrics: list[str], **kw) -> RunConfig:
    base = dict(datasets=[ds], methods=methods, metrics=metrics, out=str(out), device="cpu", batch_size=2,
                workers=0, quiet=True, report=False)
    base.update(kw)
    return RunConfig(**base)


def _outputs(root: Path, gt_dir: Path, names: list[str]) -> Path:
    """Outputs = the GT itself at 512 (so PSNR is inf-free but high), as PNG or JPEG."""
    root.mkdir(parents=True, exist_ok=True)
    for n in names:
        gt = cv2.imread(str(gt_dir / f"{n}.png"))
        cv2.imwrite(str(root / f"{n}.png"), cv2.resize(gt, (512, 512), interpolation=cv2.INTER_LINEAR))
    return root


def test_outputs_spec_parsing():
    assert parse_outputs_spec("outputs:runs/mine/") == ("mine", "runs/mine/")
    assert parse_outputs_spec("outputs:Ours=/data/x") == ("Ours", "/data/x")
    assert parse_outputs_spec("outputs:/data/a=b") == ("a=b", "/data/a=b")  # '=' inside a path is no label
    spec = MethodSpec.parse("outputs:Ours=/data/x")
    assert spec.label == "Ours" and spec.name == "outputs:/data/x"
    with pytest.raises(UserError, match="name the folder"):
        parse_outputs_spec("outputs:")


def test_outputs_folder_problems_are_named_and_ranked_beside_run_methods(tmp_path):
    root = make_folder(tmp_path / "setO", 6)
    ds = register(root, "outputs1")
    names = [f"img{i:03d}" for i in range(6)]
    out = _outputs(tmp_path / "mine", root / "gt", names[:5])  # img005: missing
    # img001 as JPEG (any extension matches by stem), img002 at the wrong size, img003 corrupt, one extra
    gt1 = cv2.imread(str(out / "img001.png"))
    (out / "img001.png").unlink()
    cv2.imwrite(str(out / "img001.jpg"), gt1, [cv2.IMWRITE_JPEG_QUALITY, 100])
    cv2.imwrite(str(out / "img002.png"), cv2.resize(gt1, (256, 256)))
    (out / "img003.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    cv2.imwrite(str(out / "stray.png"), gt1)

    cfg = _cfg(ds, tmp_path / "run", ["lq", "classical", f"outputs:{out}"], ["test-mae", "psnr"])
    outcome = Runner(cfg).run()
    summary = pd.read_csv(outcome.run_dir / "summary.csv")
    mine = summary[(summary.method == "mine") & (summary.metric == "test-mae")].iloc[0]
    # 6 images: img003 undecodable and img005 missing fail; n shows the 4 scored ones
    assert mine.n == 4 and mine.status == "ok"
    assert set(summary[summary.metric == "test-mae"].method) == {"lq", "classical", "mine"}
    # outputs equal to the GT rank first on MAE, beside the run methods
    mae = summary[summary.metric == "test-mae"].set_index("method")["value"]
    assert mae["mine"] < mae["lq"] and mae["mine"] < mae["classical"]

    per = pd.read_parquet(outcome.run_dir / "per_image.parquet")
    mine_rows = per[per.method == "mine"].set_index("image")
    assert mine_rows.loc["img005", "status"] == "error" and "missing output" in mine_rows.loc["img005", "error"]
    assert mine_rows.loc["img003", "status"] == "error" and "undecodable output" in mine_rows.loc["img003", "error"]
    assert mine_rows.loc["img002", "status"] == "ok" and mine_rows.loc["img001", "status"] == "ok"

    manifest = json.loads((outcome.run_dir / "manifest.json").read_text())
    report = manifest["methods"]["mine"]["outputs"][ds]
    assert report["missing"] == ["img005"] and report["extra"] == ["stray.png"]
    assert report["content_hash"] == folder_content_hash(sorted(out.iterdir()))
    assert manifest["methods"]["mine"]["content_hash"][ds] == report["content_hash"]
    # the resize is recorded for the image it happened to, and the dataset's own files are not blamed
    units = list((outcome.run_dir / "units").glob("*__mine__*"))
    assert len(units) == 1
    assert not any(b["file"] in ("img003", "img005") for b in manifest["datasets"][ds]["bad_files"])
    import torch

    rows = [r for s in sorted(units[0].glob("shard_*.pt")) for r in torch.load(s, weights_only=True)["rows"]]
    conv = {r["image"]: r.get("conversions", []) for r in rows}
    assert any("wrong size 256x256, resized to 512x512" in c for c in conv["img002"])

    # --strict refuses the wrong size instead: one more failed image, and a different unit
    cfg = _cfg(ds, tmp_path / "run_strict", [f"outputs:{out}"], ["test-mae"], strict=True)
    strict = pd.read_csv(Runner(cfg).run().run_dir / "summary.csv")
    assert strict[strict.metric == "test-mae"].iloc[0].n == 3


def test_outputs_folder_per_benchmark_subfolders_and_content_hash_in_unit_key(tmp_path):
    ra, rb = make_folder(tmp_path / "dsA", 3, seed=1), make_folder(tmp_path / "dsB", 2, seed=2)
    da, db = register(ra, "outputsA"), register(rb, "outputsB")
    out = tmp_path / "entry"
    _outputs(out / da, ra / "gt", [f"img{i:03d}" for i in range(3)])
    _outputs(out / db.upper(), rb / "gt", [f"img{i:03d}" for i in range(2)])  # any letter case
    cfg = _cfg(da, tmp_path / "run", ["outputs:team=" + str(out)], ["test-mae"], datasets=[da, db])
    first = Runner(cfg).run()
    s = pd.read_csv(first.run_dir / "summary.csv")
    assert dict(zip(s.dataset, s.n)) == {"dsA": 3, "dsB": 2}
    assert (s.value < 1.0).all()  # the GT itself, up to rounding
    # changing one output file changes the content hash, so the unit is computed again
    img = cv2.imread(str(out / da / "img000.png"))
    cv2.imwrite(str(out / da / "img000.png"), 255 - img)
    second = Runner(cfg).run()
    status = {u.dataset: u.status for u in second.units}
    assert status == {"dsA": "computed", "dsB": "reused"}


def test_metric_options_give_other_values_and_labels_in_one_run(tmp_path):
    root = make_folder(tmp_path / "setP", 3)
    ds = register(root, "psnropts")
    cfg = _cfg(ds, tmp_path / "run", ["lq"], ["psnr", "psnr:crop_border=4", "psnr:crop_border=4,test_y_channel=true"])
    outcome = Runner(cfg).run()
    s = pd.read_csv(outcome.run_dir / "summary.csv").set_index("metric")
    assert s.loc["psnr", "protocol"] == "basicsr-rgb-crop0"
    assert s.loc["psnr:crop_border=4", "protocol"] == "basicsr-rgb-crop4"
    assert s.loc["psnr-y:crop_border=4", "protocol"] == "basicsr-y-crop4"  # the one label of that protocol
    assert s.loc["psnr", "value"] != s.loc["psnr:crop_border=4", "value"]
    # the cropped value equals an independent numpy PSNR on the cropped images
    per = pd.read_parquet(outcome.run_dir / "per_image.parquet")
    lq = cv2.imread(str(root / "lq" / "img000.png"))[:, :, ::-1]
    gt = cv2.imread(str(root / "gt" / "img000.png"))[:, :, ::-1]
    up = lambda a: cv2.resize(a, (512, 512), interpolation=cv2.INTER_LINEAR)  # noqa: E731
    a, b = up(lq)[4:-4, 4:-4].astype(float), up(gt)[4:-4, 4:-4].astype(float)
    expect = 10 * np.log10(255.0**2 / np.mean((a - b) ** 2))
    got = per[per.image == "img000"]["psnr:crop_border=4"].iloc[0]
    assert got == pytest.approx(expect, abs=0.05)  # the runner's float resize rounds differently by < 1 level
    # options are part of each unit's hash: the metric labels are in unit.json
    unit = json.loads(next((outcome.run_dir / "units").glob("*/unit.json")).read_text())
    assert "psnr:crop_border=4" in unit["metrics"]


def test_metric_options_in_python_and_yaml(tmp_path):
    import bench

    m = bench.create_metric("psnr", crop_border=4)
    assert m.protocol == "basicsr-rgb-crop4"
    with pytest.raises(ValueError, match="crop_border"):
        bench.create_metric("psnr", crop_border=-1)
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text("metrics:\n  - psnr\n  - name: psnr\n    options: {crop_border: 4}\n  - ssim: {test_y_channel: true}\n")
    cfg = RunConfig.from_yaml(cfg_file)
    assert cfg.metrics == ["psnr", "psnr:crop_border=4", "ssim-y"]


def test_limit_does_not_report_the_outputs_beyond_it_as_extra_files(tmp_path):
    """--limit 2 of 4 images: the other two outputs belong to the dataset, not "extra" (issue 20, item 6)."""
    root = make_folder(tmp_path / "setL", 4)
    ds = register(root, "outputs-limit")
    names = [f"img{i:03d}" for i in range(4)]
    out = _outputs(tmp_path / "mine", root / "gt", names)
    cv2.imwrite(str(out / "stray.png"), cv2.imread(str(out / "img000.png")))
    outcome = Runner(_cfg(ds, tmp_path / "run", [f"outputs:{out}"], ["psnr"], limit=2)).run()
    report = json.loads((outcome.run_dir / "manifest.json").read_text())["methods"]["mine"]["outputs"][ds]
    assert report["extra"] == ["stray.png"] and report["missing"] == [] and report["expected"] == 2
    per = pd.read_parquet(outcome.run_dir / "per_image.parquet")
    assert sorted(per.image) == names[:2]


def test_corrupt_wrong_size_and_strict_duplicates_are_named_before_the_run(tmp_path, capsys):
    """Issue 20, item 20: a corrupt or wrong-size output is named on the console and in the manifest, tied to
    the method; under --strict two files for one image are an error row, not a silent choice of the .jpg."""
    root = make_folder(tmp_path / "setC", 4)
    ds = register(root, "outputs-named")
    out = _outputs(tmp_path / "mine", root / "gt", [f"img{i:03d}" for i in range(4)])
    (out / "img001.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    cv2.imwrite(str(out / "img002.png"), cv2.resize(cv2.imread(str(out / "img000.png")), (200, 100)))
    cv2.imwrite(str(out / "img003.jpg"), cv2.imread(str(out / "img003.png")))  # two files for img003
    outcome = Runner(_cfg(ds, tmp_path / "run", [f"outputs:{out}"], ["psnr"], strict=True)).run()
    err = capsys.readouterr().err
    assert f"mine: undecodable output {out / 'img001.png'}" in err
    assert f"mine: wrong size output {out / 'img002.png'}: 200x100, expected 512x512 (refused: --strict)" in err
    assert "mine: two files for img003: img003.jpg, img003.png (refused: --strict; keep one)" in err
    report = json.loads((outcome.run_dir / "manifest.json").read_text())["methods"]["mine"]["outputs"][ds]
    assert set(report["undecodable"]) == {"img001"} and report["wrong_size"] == {"img002": "200x100"}
    per = pd.read_parquet(outcome.run_dir / "per_image.parquet").set_index("image")
    assert per.loc["img000", "status"] == "ok"
    assert per.loc["img003", "status"] == "error" and "--strict refuses to choose" in per.loc["img003", "error"]
    assert per.loc["img002", "status"] == "error" and "wrong size" in per.loc["img002", "error"]


def test_labels_are_printable_and_an_existing_folder_with_an_equals_sign_is_a_folder(tmp_path, monkeypatch):
    """Issue 20, item 21: ``outputs:run=1`` names the folder run=1 when it exists; no raw newline in a label."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run=1").mkdir()
    assert parse_outputs_spec("outputs:run=1") == ("run=1", "run=1")
    assert parse_outputs_spec("outputs:ours=elsewhere") == ("ours", "elsewhere")  # no such folder: LABEL=DIR
    with pytest.raises(UserError, match="control characters"):
        parse_outputs_spec("outputs:a\nb=x")
    (tmp_path / "new\nline").mkdir()
    label, folder = parse_outputs_spec("outputs:new\nline")
    assert label == "new\\nline" and "\n" not in label and folder == "new\nline"


def test_the_gallery_shows_an_outputs_folders_images(tmp_path):
    """Issue 20, item 20: an outputs: method's images are shown (read from its folder), not only LQ and GT."""
    from reports import gallery
    from reports.data import load_run

    root = make_folder(tmp_path / "setG", 3)
    ds = register(root, "outputs-gallery")
    out = _outputs(tmp_path / "mine", root / "gt", [f"img{i:03d}" for i in range(3)])
    outcome = Runner(_cfg(ds, tmp_path / "run", [f"outputs:{out}", "lq"], ["psnr"])).run()
    per = pd.read_parquet(outcome.run_dir / "per_image.parquet")
    assert set(per[per.method == "mine"].out_path) == {str(out / f"img{i:03d}.png") for i in range(3)}
    run = load_run(outcome.run_dir)
    listed = gallery.dataset_roots(run.manifest, outcome.run_dir)
    assert out.resolve() in [p.resolve() for p in listed]
    enc = gallery.ImageEncoder(outcome.run_dir, outcome.run_dir,
                               roots=gallery.honoured_roots(listed, outcome.run_dir, trust_listed=True))
    rows = gallery.gallery_rows(enc, per, per.dataset.iloc[0], ["mine", "lq"], ["psnr"], set(), k=2)
    tiles = [t for r in rows for t in r.tiles if t.label == "mine"]
    assert len(tiles) == 2 and all(t.thumb.src and t.thumb.src.startswith("data:image") for t in tiles)
    # a received run folder's manifest is a hint only: the outputs folder is not honoured unless trusted
    assert out.resolve() not in gallery.honoured_roots(listed, outcome.run_dir)
