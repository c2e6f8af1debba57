"""A stochastic method under ``bfrbench run``: per-image noise keyed by (run seed, image name), so one process with
batches of 3 and two torchrun ranks with batches of 1 save the same images (gloo, CPU; the reduced PMRF)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.engine import distributed
from tests._helpers.runner_helpers import make_folder

REPO = Path(__file__).resolve().parents[3]
WORKER = REPO / "tests" / "_helpers" / "dist_helpers.py"


def _run(root: Path, out: Path, nproc: int, batch: int, seed: int = 0) -> None:
    env = {k: v for k, v in os.environ.items() if k not in distributed.LAUNCH_VARS + ("LOCAL_RANK",)}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", DIST_TEST_ROOT=str(root), DIST_TEST_KILL="",
               DIST_TEST_RANK_ARGS="")
    launcher = [sys.executable] if nproc == 0 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "--max_restarts=0"]
    args = ["run", "--datasets", "testset-dist", "--methods", "test-pmrf-tiny:steps=2", "--weights",
            "test-pmrf-tiny=random", "--metrics", "psnr", "--out", str(out), "--device", "cpu", "--batch-size",
            str(batch), "--seed", str(seed), "--workers", "0", "--quiet", "--no-report", "--save-images"]
    proc = subprocess.run([*launcher, str(WORKER), *args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def _images(run: Path) -> dict[str, np.ndarray]:
    files = sorted(run.glob("**/images/**/*.png"))
    assert files, f"no saved images under {run}"
    return {f.name: cv2.imread(str(f)) for f in files}


@pytest.mark.soak  # 107 s measured on this loaded 2-core machine: three bfrbench runs, one of them two torchrun ranks
def test_two_ranks_and_other_batches_save_the_same_images(tmp_path):
    root = make_folder(tmp_path / "set", 5)
    _run(root, tmp_path / "one", 0, 3)
    _run(root, tmp_path / "two", 2, 1)
    one, two = _images(tmp_path / "one"), _images(tmp_path / "two")
    assert sorted(one) == sorted(two) and len(one) == 5
    for name in one:
        assert np.array_equal(one[name], two[name]), name
    _run(root, tmp_path / "seed1", 0, 3, seed=1)  # the run seed reaches the noise
    other = _images(tmp_path / "seed1")
    assert any(not np.array_equal(one[n], other[n]) for n in one)
