"""Metric options from the command line: ``fid:reference=DIR`` and ``list metrics --verbose``."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from bench.cli import main
from tests._helpers.runner_helpers import make_folder


@pytest.fixture
def inception_ckpt(random_inception_ckpt):
    return random_inception_ckpt[0]


@pytest.mark.slow
def test_fid_reference_dir_from_the_cli(tmp_path, inception_ckpt, capsys):
    data = make_folder(tmp_path / "faces", 4, seed=5, size=64)
    ref = make_folder(tmp_path / "refset", 3, seed=6, size=64) / "gt"
    spec = f"fid:reference={ref},weights={inception_ckpt}"
    rc = main(["run", "--datasets", f"folder:{data / 'lq'}", "--methods", "lq", "--metrics", spec,
               "--out", str(tmp_path / "run"), "--device", "cpu", "--workers", "0", "--quiet", "--no-report"])
    assert rc == 0
    s = pd.read_csv(tmp_path / "run" / "summary.csv")
    row = s[s.metric.str.startswith("fid:")].iloc[0]
    assert row.protocol == "basicsr-fid-inception-pool3-ref-gt" and np.isfinite(row.value)
    # the same number straight from the metric class
    import bench
    from bench.core.imageio import list_images, read_image, resize_to

    m = bench.create_metric("fid", reference=str(ref), weights=str(inception_ckpt))
    imgs = [resize_to(read_image(p).rgb, 512) for p in list_images(data / "lq")]
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 255.0
    m.update(x)
    assert row.value == pytest.approx(m.compute(), rel=1e-6)


def test_list_metrics_verbose_shows_options(capsys):
    assert main(["list", "metrics", "--verbose"]) == 0
    out = capsys.readouterr().out
    assert "fid: weights=none; stats=none; reference=none" in out  # the one label formatter (true/none)
    assert "sqrtm=eigh {eigh|scipy}" in out  # a choice shows its values
    assert "psnr: crop_border=0" in out
