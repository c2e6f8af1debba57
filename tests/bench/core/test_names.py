"""Saved-image folders carry a short hash of the raw name, so two names never share a folder (issue 15 item 7)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from bench.config import RunConfig
from bench.core.names import folder_name
from bench.engine.runner import Runner
from tests._helpers.runner_helpers import make_folder, register


def test_folder_name_is_safe_bounded_and_distinct():
    a, b = "x" * 100 + "-one", "x" * 100 + "-two"
    assert folder_name(a) != folder_name(b) and len(folder_name(a)) == 80
    assert folder_name("a/b") != folder_name("a_b") and "/" not in folder_name("a/b")
    for hostile in ("..", ".", ".hidden", "", "../../etc"):
        name = folder_name(hostile)
        assert not name.startswith(".") and "/" not in name and name not in (".", "..")


def test_folder_name_is_stable_across_processes():
    """The same name gives the same folder in another interpreter (a per-process salted hash would not)."""
    import subprocess
    import sys

    names = ["celeba-test", "codeformer:fidelity=0.7", "ünïcode/ä"]
    code = "import sys; from bench.core.names import folder_name; print([folder_name(n) for n in sys.argv[1:]])"
    outs = {subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True, check=True,
                           env={**__import__("os").environ, "PYTHONHASHSEED": seed}).stdout.strip()
            for seed in ("1", "2")}
    assert outs == {str([folder_name(n) for n in names])}
    assert folder_name("celeba-test").startswith("celeba-test-") and len(folder_name("celeba-test")) == 20


def test_datasets_equal_after_truncation_keep_separate_outputs(tmp_path):
    long = "y" * 90
    names = [register(make_folder(tmp_path / f"set{i}", 2, seed=i), f"{long}{i}") for i in range(2)]
    cfg = RunConfig(datasets=names, methods=["lq"], metrics=["test-mae"], out=str(tmp_path / "run"), device="cpu",
                    batch_size=2, workers=0, quiet=True, report=False, save_images=True)
    run_dir = Runner(cfg).run().run_dir
    per_image = pd.read_parquet(run_dir / "per_image.parquet")
    outs = per_image["out_path"].tolist()
    assert len(outs) == 4 and len(set(outs)) == 4, outs
    # each saved output is the LQ of its own dataset (one set's outputs never overwrite the other's)
    import cv2

    for rec in per_image.to_dict("records"):
        saved = cv2.imread(str(run_dir / rec["out_path"]))
        lq = cv2.resize(cv2.imread(rec["lq_path"]), saved.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        assert np.abs(saved.astype(int) - lq.astype(int)).mean() < 3, rec["out_path"]
