"""Soak test (issue 12): ten random SIGKILLs and a concurrent second run on one --out lose nothing.

A mixed folder (good images, a truncated PNG, an empty file, a dangling symlink, a duplicate
stem, CMYK and grey inputs) is run through ``bfrbench run`` repeatedly: killed at random
moments, and once with a second run (another --batch-size) started on the same folder while
the first holds it. The final summary.csv and per_image.parquet equal an uninterrupted run's,
with no duplicated and no missing row.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from bench.core.locks import file_lock
from bench.engine.runner import LOCK_NAME

REPO = Path(__file__).resolve().parents[3]

SCRIPT = """
import sys
sys.path.insert(0, {repo!r})
from tests._helpers.runner_helpers import register  # the slow test method: batches take long enough to be killed in
from bench.cli import main
register({root!r}, "soak")
sys.exit(main(["run", "--datasets", "folder:{lq}::{gt}", "--methods", "test-slow:delay=0.15", "classical",
               "--metrics", "psnr", "ssim", "test-setmean", "--out", {out!r}, "--device", "cpu", "--workers", "0",
               "--no-report", "--quiet", "--batch-size", {bs!r}]))
"""

N_GOOD = 10


def _mixed_folder(root: Path) -> tuple[Path, Path]:
    from PIL import Image

    lq, gt = root / "lq", root / "gt"
    lq.mkdir(parents=True)
    gt.mkdir()
    rng = np.random.default_rng(0)
    for i in range(N_GOOD):
        g = cv2.GaussianBlur(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), (5, 5), 1.5)
        noisy = np.clip(g.astype(int) + rng.integers(-20, 20, g.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(gt / f"f{i:02d}.png"), g)
        cv2.imwrite(str(lq / f"f{i:02d}.png"), noisy)
    cv2.imwrite(str(lq / "f00.jpg"), np.zeros((32, 32, 3), np.uint8))  # duplicate stem of f00.png
    cv2.imwrite(str(lq / "f01.png"), cv2.cvtColor(cv2.imread(str(lq / "f01.png")), cv2.COLOR_BGR2GRAY))  # grey
    Image.fromarray(rng.integers(0, 256, (32, 32, 4), dtype=np.uint8), mode="CMYK").save(lq / "f02.jpg")
    (lq / "f02.png").unlink()  # f02 is the CMYK JPEG
    (lq / "f03.png").write_bytes((lq / "f03.png").read_bytes()[:60])  # truncated
    (lq / "f04.png").write_bytes(b"")  # empty
    (lq / "f05.png").unlink()
    (lq / "f05.png").symlink_to(root / "gone.png")  # dangling
    return lq, gt


def _start(root: Path, lq: Path, gt: Path, out: Path, bs: int) -> subprocess.Popen:
    code = SCRIPT.format(repo=str(REPO), root=str(root), lq=str(lq), gt=str(gt), out=str(out), bs=str(bs))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    log = root / "logs" / f"{time.monotonic_ns()}.log"
    log.parent.mkdir(exist_ok=True)
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=fh, stderr=subprocess.STDOUT, text=True, env=env)
    proc.log = log  # type: ignore[attr-defined]
    return proc


def _log(proc: subprocess.Popen) -> str:
    return proc.log.read_text()  # type: ignore[attr-defined]


def _finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    proc.wait(timeout=timeout)
    return proc.returncode, _log(proc)


def _until(cond, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _holds(proc: subprocess.Popen, out: Path) -> bool:
    lock = out / LOCK_NAME
    return lock.exists() and lock.read_text().strip() == str(proc.pid)


def _wait_for_lock(proc: subprocess.Popen, out: Path, timeout: float = 90) -> None:
    """Until ``proc`` holds the run folder (its pid in the lock file): it has started its work."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if _holds(proc, out):
            return
        time.sleep(0.05)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.soak
def test_random_sigkills_and_a_concurrent_run_lose_and_duplicate_nothing(tmp_path):
    lq, gt = _mixed_folder(tmp_path / "data")
    ref_rc, ref_log = _finish(_start(tmp_path, lq, gt, tmp_path / "ref", 2))
    assert ref_rc == 0, ref_log
    out = tmp_path / "soak"
    rng = random.Random(12)
    kills = 0
    for i in range(10):
        if i == 4:  # two runs (two batch geometries) on one folder at once: one works, the other waits
            out.mkdir(exist_ok=True)
            with file_lock(out / LOCK_NAME):  # hold the folder until both wait on it: they truly contend
                pair = [_start(tmp_path, lq, gt, out, 2), _start(tmp_path, lq, gt, out, 3)]
                _until(lambda pair=pair: all("in use by another bfrbench run" in _log(p) for p in pair))
            _until(lambda pair=pair: any(_holds(p, out) for p in pair))
            first, second = pair if _holds(pair[0], out) else pair[::-1]
            time.sleep(rng.uniform(0.5, 2.0))
            _kill(first)  # mid-run; the waiting one takes over the folder and finishes
            kills += 1
            rc, log = _finish(second)
            assert rc == 0, log
            continue
        proc = _start(tmp_path, lq, gt, out, 2)
        _wait_for_lock(proc, out)
        time.sleep(rng.uniform(0.0, 2.5))  # somewhere in the run: building, computing, merging, writing
        _kill(proc)
        kills += 1
    assert kills == 10
    rc, log = _finish(_start(tmp_path, lq, gt, out, 2))
    assert rc == 0, log
    ref_summary = (tmp_path / "ref" / "summary.csv").read_text()
    assert (out / "summary.csv").read_text() == ref_summary
    ref = pd.read_parquet(tmp_path / "ref" / "per_image.parquet")
    got = pd.read_parquet(out / "per_image.parquet")
    pd.testing.assert_frame_equal(got, ref)
    assert not got.duplicated(["dataset", "method", "image"]).any()
    assert len(got) == 2 * (N_GOOD + 1)  # every LQ file (the duplicate stem too) for both methods
    bad = got[got.status == "error"]
    assert set(bad.image) == {"f00.png", "f03", "f04", "f05"}
