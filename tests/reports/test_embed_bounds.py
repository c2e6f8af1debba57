"""The report embeds only files under the run folder or the dataset folders of its manifest (issue 15 item 9)."""
from __future__ import annotations

import re

import cv2
import numpy as np
import pandas as pd
import pytest

from reports import gallery
from reports.render import render_report
from tests._helpers.report_synth import DS_A, make_run


@pytest.fixture
def crafted(tmp_path):
    """A run folder whose per_image.parquet points one LQ at a private image and one output at a symlink out."""
    run = make_run(tmp_path / "r")
    secret_dir = tmp_path / "private"
    secret_dir.mkdir()
    secret = secret_dir / "holiday.png"
    cv2.imwrite(str(secret), np.full((512, 512, 3), 77, np.uint8))
    link = run / "images" / "link.png"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(secret)
    df = pd.read_parquet(run / "per_image.parquet")
    first = df.index[(df["dataset"] == DS_A)][0]
    image = df.loc[first, "image"]
    df.loc[df["image"] == image, "lq_path"] = str(secret)
    df.loc[(df["image"] == image) & df["out_path"].notna(), "out_path"] = "images/link.png"
    df.to_parquet(run / "per_image.parquet", index=False)
    return run, secret


@pytest.mark.parametrize("embed", [True, False])
def test_files_outside_run_and_dataset_folders_are_never_read(crafted, monkeypatch, embed):
    run, secret = crafted
    read: list[str] = []
    real_rgb = gallery.ImageEncoder._rgb

    def spy(self, path):
        read.append(str(path))
        return real_rgb(self, path)

    monkeypatch.setattr(gallery.ImageEncoder, "_rgb", spy)
    html = render_report(run, run / "report.html", embed_images=embed, gallery_images=6).read_text()
    assert "outside the run folder and the dataset folders" in html
    sources = re.findall(r'src="([^"]*)"', html)
    assert not [s for s in sources if "private" in s or "link.png" in s], "a file outside was linked"
    assert str(secret) not in read and str(run / "images" / "link.png") not in read
    if embed:  # the benchmark's own images are still shown: outputs in the run folder, LQ/GT in the data folder
        assert any(p.startswith(str(run / "images")) for p in read) and any("/data/" in p for p in read)
    else:
        assert any("images/" in s for s in sources)


def test_dataset_roots_from_the_manifest(tmp_path):
    manifest = {"data_root": "/data", "datasets": {
        "a": {"root": "/data/a", "validation": {"lq_dir": "/x/lq", "gt_dir": "/y/gt"}},
        "b": {"root": "rel/b"}, "c": "junk",
    }}
    roots = gallery.dataset_roots(manifest, tmp_path)
    assert roots == [tmp_path.__class__("/data"), tmp_path.__class__("/data/a"), tmp_path.__class__("/x/lq"),
                     tmp_path.__class__("/y/gt"), tmp_path / "rel/b"]
    enc = gallery.ImageEncoder(tmp_path / "run", tmp_path, roots=roots)
    assert enc.allowed(tmp_path.__class__("/data/a/lq/x.png")) and enc.allowed(tmp_path / "run" / "images" / "a.png")
    assert not enc.allowed(tmp_path.__class__("/etc/x.png")) and not enc.allowed(tmp_path / "runx" / "a.png")
