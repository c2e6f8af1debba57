"""The report embeds only files under the run folder or the dataset folders of its manifest (issue 15 item 9)."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

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
    html = render_report(run, run / "report.html", embed_images=embed, gallery_images=6,
                         data_roots=[run.parent / "data"]).read_text()
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


# ------------------------------------------------------- a received run folder (issue 20, items 12 and 15)


def _receive(run, secret, roots: list[str]) -> None:
    """Doctor ``run`` as an attacker would: every dataset root set to ``roots``, one LQ pointing at ``secret``."""
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["data_root"] = roots[0]
    for info in manifest["datasets"].values():
        info["root"] = roots[0]
        info["validation"] = {"lq_dir": roots[-1], "gt_dir": roots[-1]}
    (run / "manifest.json").write_text(json.dumps(manifest))
    df = pd.read_parquet(run / "per_image.parquet")
    df.loc[df["image"] == df["image"].iloc[0], "lq_path"] = str(secret)
    df.to_parquet(run / "per_image.parquet", index=False)


@pytest.fixture
def secret(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "photos").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    path = home / "photos" / "holiday.png"
    cv2.imwrite(str(path), np.full((512, 512, 3), 77, np.uint8))
    return path


def test_manifest_roots_of_a_received_run_never_open_the_machine(tmp_path, secret):
    """Roots set to / and to a folder outside the run / data root / --data-root: the secret is not read."""
    run = make_run(tmp_path / "r", n_images=2, gains=False, profile=False)
    _receive(run, secret, ["/", str(secret.parent)])
    read: list[str] = []
    real = gallery.ImageEncoder._rgb
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gallery.ImageEncoder, "_rgb", lambda self, p: read.append(str(p)) or real(self, p))
        html = render_report(run, gallery_images=2).read_text()
    assert str(secret) not in read and read  # the run's own outputs are still read
    assert f"not shown: {secret} is outside the run folder and the dataset folders" in html
    assert "--data-root DIR" in html


def test_report_data_root_must_be_a_folder(tmp_path):
    from bench.cli import main

    run = make_run(tmp_path / "r", n_images=1, save_images=False, gains=False, profile=False)
    assert main(["report", str(run), "--data-root", str(tmp_path / "nope")]) == 2


def test_honoured_roots_rule(tmp_path, monkeypatch):
    home = tmp_path / "home"
    data = tmp_path / "bench-data"
    run = tmp_path / "run"
    for d in (home / "faces", data / "celeba", run / "in"):
        d.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("BFRBENCH_DATA", str(data))
    listed = [Path("/"), home, home / "faces", data / "celeba", run / "in", tmp_path / "missing", data]
    assert gallery.honoured_roots(listed, run) == [data / "celeba", run / "in", data]
    assert gallery.honoured_roots(listed, run, [home]) == [home / "faces", data / "celeba", run / "in", data]
    # the run bfrbench just made here: its own folders, still never / or the home folder
    assert gallery.honoured_roots(listed, run, trust_listed=True) == [home / "faces", data / "celeba", run / "in", data]
    monkeypatch.setenv("BFRBENCH_DATA", "/")  # a data root of / trusts nothing by itself
    assert gallery.honoured_roots([tmp_path / "run" / "in", home / "faces"], run) == [run / "in"]


def test_a_fifo_in_a_run_folder_does_not_block_the_report(tmp_path):
    """A named pipe where an output image should be: the report says so instead of waiting forever."""
    import threading

    run = make_run(tmp_path / "r", n_images=2, gains=False, profile=False)
    df = pd.read_parquet(run / "per_image.parquet")
    out = run / df.loc[df["out_path"].notna(), "out_path"].iloc[0]
    out.unlink()
    os.mkfifo(out)
    box: dict = {}
    worker = threading.Thread(target=lambda: box.update(html=render_report(run, gallery_images=2).read_text()),
                              daemon=True)
    worker.start()
    worker.join(120)
    if worker.is_alive():  # unblock the reader so the test process can end, then fail
        with open(out, "wb"):
            pass
        pytest.fail("report blocked on a FIFO in the run folder")
    assert "not a regular file" in box["html"]


def test_a_fifo_table_is_one_line_not_a_hang(tmp_path):
    from bench.core.errors import UserError
    from bench.engine.run_folder.tables import regular_file

    os.mkfifo(tmp_path / "summary.csv")
    with pytest.raises(UserError, match="FIFO"):
        regular_file(tmp_path / "summary.csv")
