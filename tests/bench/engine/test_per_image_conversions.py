"""per_image.parquet's ``conversions`` column: a wrong-size ``outputs:`` file is recorded on its image's row
(issue 20 item 20), and folders written before the column existed still read."""
from __future__ import annotations

import cv2
import pandas as pd

from bench.config import RunConfig
from bench.engine.run_folder import PER_IMAGE_COLUMNS, RunFolder
from bench.engine.runner import Runner
from tests._helpers.runner_helpers import make_folder, register


def test_wrong_size_output_is_on_its_per_image_row(tmp_path):
    root = make_folder(tmp_path / "setC", 2)
    ds = register(root, "conversions1")
    out = tmp_path / "mine"
    out.mkdir()
    for name, side in (("img000", 512), ("img001", 256)):
        gt = cv2.imread(str(root / "gt" / f"{name}.png"))
        cv2.imwrite(str(out / f"{name}.png"), cv2.resize(gt, (side, side), interpolation=cv2.INTER_LINEAR))
    cfg = RunConfig(datasets=[ds], methods=[f"outputs:{out}"], metrics=["test-mae"], out=str(tmp_path / "run"),
                    device="cpu", batch_size=2, workers=0, quiet=True, report=False)
    run_dir = Runner(cfg).run().run_dir

    per = RunFolder(run_dir).per_image().set_index("image")
    assert "output: wrong size 256x256, resized to 512x512 (bilinear)" in per.loc["img001", "conversions"]
    assert "wrong size" not in per.loc["img000", "conversions"]
    assert (per["status"] == "ok").all()


def test_per_image_without_the_conversions_column_still_reads(tmp_path):
    old_columns = [c for c in PER_IMAGE_COLUMNS if c != "conversions"]
    row = {c: "" for c in old_columns} | {"dataset": "d", "method": "m", "image": "a", "status": "ok"}
    (tmp_path / "manifest.json").write_text("{}")
    pd.DataFrame([row | {"psnr": 20.0}], columns=[*old_columns, "psnr"]).to_parquet(tmp_path / "per_image.parquet")

    per = RunFolder(tmp_path).per_image(absolute_paths=False)
    assert per.loc[0, "conversions"] == "" and per.loc[0, "psnr"] == 20.0
    assert [c for c in per.columns if c not in PER_IMAGE_COLUMNS] == ["psnr"]
