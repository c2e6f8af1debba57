"""Runner: results files, exact resumption after SIGKILL, reuse of finished units, bad files."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bench.config import RunConfig
from bench.engine.run_folder.layout import shard_file_name
from bench.engine.runner import Runner
from tests._helpers.runner_helpers import make_folder, register

#: tests here register methods and metrics; each test's are gone after it
pytestmark = pytest.mark.usefixtures("registries")

REPO = Path(__file__).resolve().parents[3]


def _cfg(ds: str, out: Path, **kw) -> RunConfig:
    base = dict(datasets=[ds], methods=["lq", "classical"], metrics=["test-mae", "test-setmean"],
                out=str(out), device="cpu", batch_size=2, workers=0, quiet=True, report=False)
    base.update(kw)
    return RunConfig(**base)


def test_run_writes_results_that_match_direct_computation(tmp_path):
    root = make_folder(tmp_path / "setA", 5)
    ds = register(root, "A")
    outcome = Runner(_cfg(ds, tmp_path / "run")).run()
    run = outcome.run_dir
    summary = pd.read_csv(run / "summary.csv")
    assert {"dataset", "method", "metric", "protocol", "value", "n"} <= set(summary.columns)
    per_image = pd.read_parquet(run / "per_image.parquet")
    assert len(per_image) == 10 and set(per_image.method) == {"lq", "classical"}
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["metrics"]["test-mae"]["protocol"] == "test"
    # the set value of a per-image metric is the mean of its per-image values
    for method in ("lq", "classical"):
        direct = per_image[per_image.method == method]["test-mae"].mean()
        row = summary[(summary.method == method) & (summary.metric == "test-mae")].iloc[0]
        assert row.value == pytest.approx(direct, rel=1e-9)
        assert row.n == 5
    # lq at 64 -> 512 bilinear vs GT 64 -> 512: the MAE equals an independent numpy computation
    import cv2

    lq = cv2.imread(str(root / "lq" / "img000.png"))[:, :, ::-1]
    gt = cv2.imread(str(root / "gt" / "img000.png"))[:, :, ::-1]
    up = lambda a: cv2.resize(a, (512, 512), interpolation=cv2.INTER_LINEAR).astype(float)  # noqa: E731
    expect = np.abs(np.round(up(lq)) - up(gt)).mean()
    got = per_image[(per_image.method == "lq") & (per_image.image == "img000")]["test-mae"].iloc[0]
    assert got == pytest.approx(expect, abs=0.6)  # float vs uint8 resize rounding differs by < 1 level


def test_rerun_reuses_finished_units(tmp_path):
    root = make_folder(tmp_path / "setB", 4)
    ds = register(root, "B")
    first = Runner(_cfg(ds, tmp_path / "run")).run()
    again = Runner(_cfg(ds, tmp_path / "run")).run()
    assert [u.status for u in first.units] == ["computed", "computed"]
    assert [u.status for u in again.units] == ["reused", "reused"]
    assert all(u.batches_computed == 0 for u in again.units)
    pd.testing.assert_frame_equal(first.summary, again.summary)
    # a changed parameter is another unit, computed afresh
    changed = Runner(_cfg(ds, tmp_path / "run", methods=["lq", "classical:sharpen=0.2"])).run()
    assert [u.status for u in changed.units] == ["reused", "computed"]


SCRIPT = """
import sys
sys.path.insert(0, {repo!r})
from pathlib import Path
from bench.config import RunConfig
from bench.engine.runner import Runner
from tests._helpers.runner_helpers import register
ds = register(Path({root!r}), "K")
cfg = RunConfig(datasets=[ds], methods=["test-slow:delay={delay}", "classical"],
                metrics=["test-mae", "test-setmean"], out={out!r}, device="cpu", batch_size=1,
                workers=0, quiet=True, report=False)
Runner(cfg).run()
"""


def _script(tmp_path, root, out, delay):
    path = tmp_path / f"run_{delay}.py"
    path.write_text(SCRIPT.format(repo=str(REPO), root=str(root), out=str(out), delay=delay))
    return path


def test_sigkill_then_rerun_gives_identical_summary(tmp_path):
    root = make_folder(tmp_path / "setK", 8)
    # reference: uninterrupted
    ref_out = tmp_path / "ref"
    subprocess.run([sys.executable, _script(tmp_path, root, ref_out, 0.3)], check=True, cwd=REPO)
    # interrupted: kill -9 once a few shards exist
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, _script(tmp_path, root, out, 0.3)], cwd=REPO)
    deadline = time.time() + 120
    while time.time() < deadline:
        shards = list(out.glob("units/*test-slow*/shard_*.pt"))
        if len(shards) >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = len(list(out.glob("units/*test-slow*/shard_*.pt")))
    assert 3 <= killed_at < 8, "the run should have been killed in the middle of the first unit"
    assert not (out / "summary.csv").exists()
    # nothing half-written under a final name: every shard the kill left loads in full ...
    slow_dir = next(out.glob("units/*test-slow*"))
    for shard in slow_dir.glob("shard_*.pt"):
        torch.load(shard, map_location="cpu", weights_only=True)
    # ... and a temporary the kill may leave is never read: a garbage one named like a shard's is ignored
    for tmp in out.rglob("*.tmp"):
        assert tmp.name.startswith("."), tmp
    (slow_dir / f".{shard_file_name(0)}.killed.tmp").write_bytes(b"half a shard")
    subprocess.run([sys.executable, _script(tmp_path, root, out, 0.3)], check=True, cwd=REPO)
    assert (out / "summary.csv").read_bytes() == (ref_out / "summary.csv").read_bytes()
    manifest = json.loads((out / "manifest.json").read_text())
    slow = next(v for k, v in manifest["units"].items() if "test-slow" in k)
    assert slow["status"] == "resumed"
    assert slow["batches_computed"] == 8 - killed_at  # finished batches were not recomputed
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "per_image.parquet").drop(columns=["lq_path", "gt_path"]),
        pd.read_parquet(ref_out / "per_image.parquet").drop(columns=["lq_path", "gt_path"]),
    )


def test_bad_files_are_reported_and_the_rest_scored(tmp_path):
    import cv2

    root = make_folder(tmp_path / "setBad", 3)
    good = cv2.imread(str(root / "gt" / "img000.png"))
    # truncated JPEG
    ok, buf = cv2.imencode(".jpg", good)
    (root / "lq" / "trunc.jpg").write_bytes(buf.tobytes()[: len(buf) // 2])
    cv2.imwrite(str(root / "gt" / "trunc.png"), good)
    # zero-byte file
    (root / "lq" / "empty.png").write_bytes(b"")
    cv2.imwrite(str(root / "gt" / "empty.png"), good)
    # grey PNG and 16-bit PNG: converted and scored
    cv2.imwrite(str(root / "lq" / "grey.png"), cv2.cvtColor(good, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(root / "gt" / "grey.png"), good)
    cv2.imwrite(str(root / "lq" / "deep.png"), good.astype(np.uint16) * 257)
    cv2.imwrite(str(root / "gt" / "deep.png"), good)
    ds = register(root, "Bad")
    outcome = Runner(_cfg(ds, tmp_path / "run", methods=["lq"])).run()
    manifest = json.loads((outcome.run_dir / "manifest.json").read_text())
    bad = {b["file"]: b["reason"] for b in manifest["datasets"][ds]["bad_files"]}
    assert set(bad) == {"trunc", "empty"}
    assert "truncated JPEG" in bad["trunc"] and "trunc.jpg" in bad["trunc"]
    assert "empty file" in bad["empty"]
    conv = manifest["datasets"][ds]["conversions"]
    assert any("grey->rgb" in c for c in conv["grey"])
    assert any("16bit->8bit" in c for c in conv["deep"])
    per_image = pd.read_parquet(outcome.run_dir / "per_image.parquet")
    ok = per_image[per_image.status == "ok"]
    assert set(ok.image) == {"img000", "img001", "img002", "grey", "deep"}
    assert ok["test-mae"].notna().all()
    # the 16-bit copy of img000's GT, used as LQ, is exact after conversion
    assert float(ok[ok.image == "deep"]["test-mae"].iloc[0]) == pytest.approx(0.0, abs=1e-9)
    row = outcome.summary[(outcome.summary.metric == "test-mae")].iloc[0]
    assert row.n == 5


def test_a_failing_metric_loses_only_its_own_values(tmp_path):
    from bench.core.registry import METRICS
    from bench.metrics.base import MeanOfImages

    class Broken(MeanOfImages):
        name = "test-broken"
        protocol = "test"

        def score(self, pred, gt):
            raise RuntimeError("boom")

    if "test-broken" not in METRICS:
        METRICS.add("test-broken", Broken, protocol="test", higher_better=True, needs_gt=False)
    root = make_folder(tmp_path / "setM", 3)
    ds = register(root, "M")
    outcome = Runner(_cfg(ds, tmp_path / "run", methods=["lq"], metrics=["test-mae", "test-broken"])).run()
    s = outcome.summary
    mae = s[s.metric == "test-mae"].iloc[0]
    assert mae.status == "ok" and mae.n == 3
    broken = s[s.metric == "test-broken"].iloc[0]
    assert broken.status == "failed" and broken.n == 0
    per_image = pd.read_parquet(outcome.run_dir / "per_image.parquet")
    assert (per_image.status == "ok").all()
    assert per_image["error"].str.contains("test-broken: RuntimeError: boom").all()


def test_custom_folder_with_bad_files_via_folder_resolver(tmp_path):
    """Issue 2 acceptance: folder:LQ::GT with a truncated JPEG, a zero-byte file, grey and 16-bit PNGs."""
    import cv2

    root = make_folder(tmp_path / "custom", 2)
    good = cv2.imread(str(root / "gt" / "img000.png"))
    ok, buf = cv2.imencode(".jpg", good)
    (root / "lq" / "cut.jpg").write_bytes(buf.tobytes()[:300])
    (root / "lq" / "zero.png").write_bytes(b"")
    cv2.imwrite(str(root / "lq" / "grey.png"), cv2.cvtColor(good, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(root / "lq" / "deep.png"), good.astype(np.uint16) * 257)
    for stem in ("cut", "zero", "grey", "deep"):
        cv2.imwrite(str(root / "gt" / f"{stem}.png"), good)
    register(root, "unused")  # registers the test metrics
    ds = f"folder:{root / 'lq'}::{root / 'gt'}"
    outcome = Runner(_cfg(ds, tmp_path / "run", methods=["lq"], metrics=["test-mae"])).run()
    manifest = json.loads((outcome.run_dir / "manifest.json").read_text())
    info = manifest["datasets"][ds]
    bad = {b["file"]: b["reason"] for b in info["bad_files"]}
    assert set(bad) == {"cut", "zero"}
    assert "cut.jpg" in bad["cut"] and "truncated" in bad["cut"]
    assert "zero.png" in bad["zero"] and "empty" in bad["zero"]
    per_image = pd.read_parquet(outcome.run_dir / "per_image.parquet")
    assert set(per_image[per_image.status == "ok"].image) == {"img000", "img001", "grey", "deep"}
    assert outcome.summary[outcome.summary.metric == "test-mae"].iloc[0].n == 4


def test_batches_the_method_failed_on_are_retried_on_rerun(tmp_path):
    """A transient failure (e.g. out of memory) is not cached as a permanent result."""
    import torch

    from bench.core.registry import METHODS
    from methods.base import RestorationMethod, WeightsInfo

    flag = tmp_path / "fail_once"
    flag.write_text("1")

    class FlakyOnce(RestorationMethod):
        name = "test-flaky"

        def __init__(self, weights=None):
            super().__init__()
            self.weights_info = [WeightsInfo(name="none")]

        def restore(self, lq):
            if flag.exists() and lq.shape[0] == 1 and self._calls_seen():
                raise RuntimeError("CUDA out of memory (simulated)")
            return torch.nn.functional.interpolate(lq, size=(512, 512), mode="bilinear", align_corners=False)

        def _calls_seen(self):
            flag.unlink()  # fail exactly once
            return True

    if "test-flaky" not in METHODS:
        METHODS.add("test-flaky", FlakyOnce)
    root = make_folder(tmp_path / "setF", 3)
    ds = register(root, "F")
    cfg = _cfg(ds, tmp_path / "run", methods=["test-flaky"], metrics=["test-mae"], batch_size=1)
    first = Runner(cfg).run()
    per_image = pd.read_parquet(first.run_dir / "per_image.parquet")
    assert (per_image.status == "error").sum() == 1
    assert "out of memory" in per_image[per_image.status == "error"]["error"].iloc[0]
    assert not list(first.run_dir.glob("units/*/done.json"))  # not final while a batch failed
    again = Runner(_cfg(ds, tmp_path / "run", methods=["test-flaky"], metrics=["test-mae"], batch_size=1)).run()
    assert again.units[0].status == "resumed" and again.units[0].batches_computed == 1
    per_image = pd.read_parquet(again.run_dir / "per_image.parquet")
    assert (per_image.status == "ok").all() and len(per_image) == 3
    assert list(again.run_dir.glob("units/*/done.json"))
