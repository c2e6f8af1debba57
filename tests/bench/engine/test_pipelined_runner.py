"""Host pool in the runner: even slices, single-threaded workers, and batch k's host metrics scored
while batch k+1 runs on the device, with the serial run's values and per-shard states."""
from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from bench.config import RunConfig
from bench.engine import hostpool
from bench.engine.runner import Runner
from bench.weights import fetch
from tests._helpers.runner_helpers import make_folder, register

#: tests here register methods and metrics; each test's are gone after it
pytestmark = pytest.mark.usefixtures("registries")

HOST = "niqe-pyiqa"  # a runs_on_host metric; flat images have no NIQE (an error for that image alone)
SIZE = 192  # two NIQE blocks each way: small and fast, still scored


@pytest.fixture(scope="module")
def niqe_params(bfrbench_home) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BFRBENCH_HOME", str(bfrbench_home))
        return fetch("niqe-pris-params", quiet=True)


def test_slices_are_even_consecutive_and_cover_the_batch():
    for n in range(0, 18):
        for workers in (1, 2, 3, 7, 16):
            parts = hostpool.slices(n, workers)
            assert len(parts) == min(n, workers), (n, workers)
            bounds = [0] + [b for _, b in parts]
            assert parts == list(zip(bounds[:-1], bounds[1:])) and bounds[-1] == n, (n, workers)  # in order, all
            sizes = [b - a for a, b in parts]
            assert not sizes or (min(sizes) >= 1 and max(sizes) - min(sizes) <= 1), (n, workers, sizes)


def test_sixteen_images_over_seven_workers_use_every_worker():
    assert [b - a for a, b in hostpool.slices(16, 7)] == [3, 3, 2, 2, 2, 2, 2]  # was 6 slices of 3, 3, 3, 3, 3, 1


def test_workers_run_every_thread_pool_single_threaded(monkeypatch):
    for k in hostpool.THREAD_ENV:
        monkeypatch.delenv(k, raising=False)
    pool = hostpool.HostPool({}, 2)
    try:
        report = pool._pool.submit(hostpool.thread_report).result(timeout=120)  # never hangs
    finally:
        pool.close()
    assert report["torch"] == 1 and report["torch_interop"] == 1 and report["cv2"] == 1, report
    assert report["openblas"] and set(report["openblas"].values()) == {1}, report  # numpy's and OpenCV's
    assert all(report["env"][k] == "1" for k in hostpool.THREAD_ENV), report
    assert all(k not in os.environ for k in hostpool.THREAD_ENV)  # the caller's environment is restored


def _dataset(tmp_path: Path, tag: str) -> str:
    """Five images; img002 is flat (no NIQE for it)."""
    root = make_folder(tmp_path / f"set{tag}", 5)
    flat = np.full((64, 64, 3), 128, np.uint8)
    for side in ("lq", "gt"):
        cv2.imwrite(str(root / side / "img002.png"), flat)
    return register(root, tag)


def _run(ds: str, out: Path, batch_size: int, host_workers: int, method: str = "lq"):
    cfg = RunConfig(datasets=[ds], methods=[method], metrics=["test-mae", HOST, "test-setmean"], out=str(out),
                    device="cpu", batch_size=batch_size, workers=0, quiet=True, report=False)
    runner = Runner(cfg, image_size=SIZE)
    runner.engine.host_workers = host_workers  # the pool is CUDA-only in real runs: forced here on the CPU
    runner.engine.method_batch = None  # and, as on a GPU, the method gets the whole batch (a CPU gives it 1 image)
    return runner


def _shards(run_dir: Path) -> dict[str, dict]:
    (unit,) = (run_dir / "units").iterdir()
    return {p.name: torch.load(p, map_location="cpu", weights_only=True) for p in sorted(unit.glob("shard_*.pt"))}


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))  # bit-identical, NaN where the image failed


def _assert_same_shards(serial: dict[str, dict], pooled: dict[str, dict]) -> None:
    assert serial.keys() == pooled.keys()
    for name, s in serial.items():
        p = pooled[name]
        assert [r["image"] for r in s["rows"]] == [r["image"] for r in p["rows"]], name
        for rs, rp in zip(s["rows"], p["rows"]):
            assert list(rs["values"]) == list(rp["values"]), (name, rs["image"])  # every value, in metric order
            assert all(_same(rs["values"][k], rp["values"][k]) for k in rs["values"]), (name, rs, rp)
            assert rs["metric_errors"] == rp["metric_errors"], (name, rs["image"])
        assert list(s["states"]) == list(p["states"]), name
        for metric in ("test-mae", "test-setmean"):  # device metrics: this batch's state, exactly
            for k, v in s["states"][metric].items():
                assert torch.equal(v, p["states"][metric][k]), (name, metric, k)
        host_s, host_p = s["states"][HOST], p["states"][HOST]  # folded from the pool's slices
        assert float(host_s["count"]) == float(host_p["count"]), name
        assert float(host_p["total"]) == pytest.approx(float(host_s["total"]), rel=1e-12), name


@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_pipelined_pool_run_equals_the_serial_run_per_image_and_per_shard(tmp_path, niqe_params, batch_size):
    ds = _dataset(tmp_path, f"P{batch_size}")
    serial = _run(ds, tmp_path / "serial", batch_size, 0).run()
    pooled = _run(ds, tmp_path / "pooled", batch_size, 2).run()
    s_shards, p_shards = _shards(serial.run_dir), _shards(pooled.run_dir)
    assert len(p_shards) == math.ceil(5 / batch_size)  # every batch written, each with its host values
    _assert_same_shards(s_shards, p_shards)
    rows = [r for sh in p_shards.values() for r in sh["rows"]]
    assert sorted(r["image"] for r in rows) == [f"img{i:03d}" for i in range(5)]
    for r in rows:  # the flat image lost its NIQE alone
        assert (HOST in r["metric_errors"]) == (r["image"] == "img002"), r
        assert not math.isnan(r["values"]["test-mae"])
    (s_unit,), (p_unit,) = serial.units, pooled.units
    assert s_unit.metric_n == p_unit.metric_n and s_unit.metric_n[HOST] == 4
    assert p_unit.metric_values["test-mae"] == s_unit.metric_values["test-mae"]
    assert p_unit.metric_values[HOST] == pytest.approx(s_unit.metric_values[HOST], rel=1e-12)


class Stop(BaseException):
    """An interruption the runner does not catch (like Ctrl-C)."""


def test_an_interrupted_pipelined_run_keeps_the_finished_batch_and_resumes(tmp_path, niqe_params):
    from bench.core.registry import METHODS
    from methods.base import RestorationMethod, WeightsInfo

    flag = tmp_path / "stop_at_the_last_batch"
    flag.write_text("")
    seen: list[list[str]] = []  # the shards written when each batch starts restoring

    class StopOnce(RestorationMethod):
        name = "test-stop-once"

        def __init__(self, weights=None):
            super().__init__()
            self.weights_info = [WeightsInfo(name="none")]

        def restore(self, lq):
            seen.append(sorted(p.name for p in (tmp_path / "pooled").glob("units/*/shard_*.pt")))
            if lq.shape[0] == 1 and flag.exists():  # the third batch of 2, 2, 1 images, once
                flag.unlink()
                raise Stop
            return torch.nn.functional.interpolate(lq, size=(SIZE, SIZE), mode="bilinear", align_corners=False)

    METHODS.add("test-stop-once", StopOnce, replace=True)
    ds = _dataset(tmp_path, "S")
    with pytest.raises(Stop):
        _run(ds, tmp_path / "pooled", 2, 2, method="test-stop-once").run()
    # one batch of lag: batch k's shard is written after batch k+1 ran on the device
    assert seen[-3:] == [[], [], ["shard_0000000.pt"]], seen
    # batch 2's host metrics were still in the pool when batch 3 stopped the run: its shard was completed
    kept = _shards(tmp_path / "pooled")
    assert sorted(kept) == ["shard_0000000.pt", "shard_0000002.pt"]
    assert all(HOST in r["values"] for sh in kept.values() for r in sh["rows"])
    resumed = _run(ds, tmp_path / "pooled", 2, 2, method="test-stop-once").run()
    assert resumed.units[0].status == "resumed" and resumed.units[0].batches_computed == 1
    serial = _run(ds, tmp_path / "serial", 2, 0, method="test-stop-once").run()
    _assert_same_shards(_shards(serial.run_dir), _shards(tmp_path / "pooled"))


OWNER = """
import os, signal, sys
sys.path.insert(0, {repo!r})
from bench.engine.hostpool import HostPool
if __name__ == "__main__":
    pool = HostPool({{}}, 2)
    print(pool.thread_report()["pid"], flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # like kill -9 of a run
"""


def test_workers_exit_when_the_run_that_owns_them_is_killed(tmp_path):
    import subprocess
    import sys
    import time

    script = tmp_path / "owner.py"
    script.write_text(OWNER.format(repo=str(Path(__file__).resolve().parents[3])))
    log = tmp_path / "owner.out"
    with log.open("w") as fh:  # a file, not a pipe: an orphan holding the pipe would block reading it
        proc = subprocess.Popen([sys.executable, str(script)], stdout=fh, stderr=subprocess.STDOUT)
        assert proc.wait(timeout=120) == -9, log.read_text()
    worker = int(log.read_text().split()[0])
    deadline = time.time() + 30
    while Path(f"/proc/{worker}").exists() and time.time() < deadline:
        time.sleep(0.1)
    state = Path(f"/proc/{worker}/stat")
    alive = state.exists() and state.read_text().split()[2] != "Z"
    assert not alive, "a worker of a killed run is left behind"
