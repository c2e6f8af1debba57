"""A fully reused rerun builds no network; a changed weights file or an unfinished unit builds it again."""
from __future__ import annotations

import os

import pandas as pd
import pytest
import torch

from bench.config import RunConfig
from bench.core.registry import METHODS
from bench.engine.runner import Runner
from methods.base import RestorationMethod, WeightsInfo
from tests._helpers.runner_helpers import make_folder, register

#: tests here register methods and metrics; each test's are gone after it
pytestmark = pytest.mark.usefixtures("registries")

BUILT: list[str] = []


class Counted(RestorationMethod):
    """Counts its constructions (a network load); reads a weights file like a learned method."""

    name = "test-counted"

    def __init__(self, weights=None, gain: float = 1.0) -> None:
        super().__init__(gain=gain)
        BUILT.append(str(weights))
        self.weights_info = [WeightsInfo(name="counted", path=str(weights), sha256=None)]
        self.gain = gain

    def restore(self, lq):
        x = torch.nn.functional.interpolate(lq, size=(512, 512), mode="bilinear", align_corners=False)
        return (x * self.gain).clamp(0, 1)


def _cfg(ds, out, weights, **kw):
    if "test-counted" not in METHODS:
        METHODS.add("test-counted", Counted, takes_quality=False)
    return RunConfig(datasets=[ds], methods=["test-counted", "lq"], metrics=["psnr"], out=str(out),
                     weights={"test-counted": str(weights)}, device="cpu", batch_size=2, workers=0, quiet=True,
                     report=False, **kw)


def test_fully_reused_rerun_builds_no_network(tmp_path):
    ds = register(make_folder(tmp_path / "faces", 3, size=64), "reuse")
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"weights")
    BUILT.clear()
    first = Runner(_cfg(ds, tmp_path / "run", weights)).run()
    assert len(BUILT) == 1
    second = Runner(_cfg(ds, tmp_path / "run", weights)).run()
    assert len(BUILT) == 1  # every unit was finished: nothing built
    assert {u.status for u in second.units} == {"reused"}
    a, b = pd.read_csv(first.run_dir / "summary.csv"), pd.read_csv(second.run_dir / "summary.csv")
    pd.testing.assert_frame_equal(a, b)
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched, the same bytes: still reused
    Runner(_cfg(ds, tmp_path / "run", weights)).run()
    assert len(BUILT) == 1
    st = weights.stat()
    weights.write_bytes(b"weightz")  # other bytes, same size and mtime: built again
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    Runner(_cfg(ds, tmp_path / "run", weights)).run()
    assert len(BUILT) == 2


def test_unfinished_unit_builds_the_recorded_method(tmp_path):
    ds = register(make_folder(tmp_path / "faces", 3, size=64), "reuse2")
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"weights")
    BUILT.clear()
    Runner(_cfg(ds, tmp_path / "run", weights, limit=2)).run()
    outcome = Runner(_cfg(ds, tmp_path / "run", weights)).run()  # a third image: a new unit to compute
    assert len(BUILT) == 2
    summary = pd.read_csv(outcome.run_dir / "summary.csv")
    assert (summary[summary.method == "test-counted"].n == 3).all()


def test_replaced_image_of_same_size_and_mtime_is_not_reused(tmp_path):
    """A dataset file replaced by other bytes of the same size and mtime gives new results (issue 20, item 4)."""
    import cv2
    import numpy as np

    root = make_folder(tmp_path / "faces", 3, size=64)
    for p in (root / "gt").iterdir():  # uncompressed PNGs: the file size depends on the image size only
        cv2.imwrite(str(p), cv2.imread(str(p)), [cv2.IMWRITE_PNG_COMPRESSION, 0])
    ds = register(root, "stale")
    cfg = lambda: RunConfig(datasets=[ds], methods=["lq"], metrics=["psnr"], out=str(tmp_path / "run"),  # noqa: E731
                            device="cpu", batch_size=2, workers=0, quiet=True, report=False)
    rows = lambda o: pd.read_parquet(o.run_dir / "per_image.parquet").set_index("image")["psnr"]  # noqa: E731
    before = rows(Runner(cfg()).run())
    gt = root / "gt" / "img000.png"
    st = gt.stat()
    img = cv2.imread(str(gt))
    cv2.imwrite(str(gt), np.ascontiguousarray(img[::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 0])
    os.utime(gt, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert gt.stat().st_size == st.st_size and gt.stat().st_mtime_ns == st.st_mtime_ns
    second = Runner(cfg()).run()
    assert {u.status for u in second.units} == {"computed"}
    after = rows(second)
    assert after["img000"] != before["img000"]
    assert after["img001"] == before["img001"]
