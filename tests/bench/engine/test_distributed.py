"""torch.distributed runs (gloo, CPU): N ranks give the 1-process numbers; a killed rank resumes.

The worker processes are started by torchrun (``python -m torch.distributed.run``) through
tests/_helpers/dist_helpers.py, which registers the test doubles (a covariance-state metric, a method
that kills its own rank) and runs the ``bfrbench run`` command line.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.engine import distributed
from tests._helpers.runner_helpers import make_folder

REPO = Path(__file__).resolve().parents[3]
WORKER = REPO / "tests" / "_helpers" / "dist_helpers.py"
METRICS = ["test-mae", "psnr", "test-cov", "test-setmean"]


def _bfrbench(root: Path, out: Path, nproc: int, *, kill: str = "", check: bool = True, rank_args: str = "",
              stderr: list | None = None) -> int:
    """``bfrbench run`` on the test folder: one plain process (nproc 0) or torchrun with nproc ranks
    (``rank_args`` "RANK:ARGS": more arguments on one rank; ``stderr`` collects the output)."""
    env = {k: v for k, v in os.environ.items() if k not in distributed.LAUNCH_VARS + ("LOCAL_RANK",)}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", DIST_TEST_ROOT=str(root), DIST_TEST_KILL=kill,
               DIST_TEST_RANK_ARGS=rank_args)
    launcher = [sys.executable] if nproc == 0 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
        "--max_restarts=0",
    ]
    args = ["run", "--datasets", "testset-dist", "--methods", "test-killer:delay=0.2", "test-noisy", "lq",
            "--metrics", *METRICS, "--out", str(out), "--device", "cpu", "--batch-size", "2",
            "--workers", "0", "--quiet", "--no-report"]
    proc = subprocess.run([*launcher, str(WORKER), *args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    if stderr is not None:
        stderr.append(proc.stdout + proc.stderr)
    if check and proc.returncode != 0:
        raise AssertionError(f"run failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.returncode


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = make_folder(tmp_path_factory.mktemp("dist") / "set", 9)
    (root / "lq" / "img004.png").write_bytes(b"not a png")  # one bad file: an error row, never lost
    return root


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    _bfrbench(data, out, 0)
    return out


def _assert_same_results(run: Path, ref: Path) -> None:
    got, want = pd.read_csv(run / "summary.csv"), pd.read_csv(ref / "summary.csv")
    pd.testing.assert_frame_equal(got.drop(columns="value"), want.drop(columns="value"))
    np.testing.assert_allclose(got["value"], want["value"], rtol=1e-9, atol=0)
    got_pi, want_pi = pd.read_parquet(run / "per_image.parquet"), pd.read_parquet(ref / "per_image.parquet")
    assert not got_pi.duplicated(["dataset", "method", "image"]).any()
    pd.testing.assert_frame_equal(got_pi, want_pi, check_exact=True)


def test_two_ranks_equal_one_process(data, reference, tmp_path):
    """Also for a stochastic method (``test-noisy``): each image's noise comes from (run seed, image key) alone."""
    want = pd.read_csv(reference / "summary.csv")
    assert set(METRICS) <= set(want.metric) and (want.status == "ok").all()
    assert len(pd.read_parquet(reference / "per_image.parquet")) == 27
    out = tmp_path / "run2"
    _bfrbench(data, out, 2)
    _assert_same_results(out, reference)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["distributed"] == {"world_size": 2, "backend": "gloo"}
    assert json.loads((reference / "manifest.json").read_text())["distributed"] == {"world_size": 1, "backend": None}
    # the same batches make the same shard files, whichever rank computed them
    names = lambda run: sorted(p.relative_to(run).as_posix() for p in run.glob("units/*/shard_*.pt"))  # noqa: E731
    assert names(out) == names(reference) and len(names(out)) == 15


def test_ranks_with_different_settings_are_refused_before_any_work(data, tmp_path):
    """Rank 1 started with another --batch-size: every rank stops with one line, nothing computed (issue 20, item 5)."""
    out, err = tmp_path / "differ", []
    assert _bfrbench(data, out, 2, rank_args="1:--batch-size 3", check=False, stderr=err) != 0
    text = err[0]
    assert text.count("torchrun ranks started with different settings (batch_size: rank 0 2, rank 1 3)") == 2, text
    assert "bench/engine/" not in text and "bench/cli/" not in text  # no traceback of ours (torchrun prints its own)
    assert not list(out.glob("units/*/shard_*.pt")) and not (out / "summary.csv").exists()


@pytest.mark.slow  # ~35 s: two torchrun launches
# soak (make test-soak): the default run holds its parts cheaply: two ranks equal one process (torchrun, above),
# every shard file has exactly one owner at any world size, a resume never merges shards of another geometry
@pytest.mark.soak
def test_killed_rank_resumes_with_another_world_size(data, reference, tmp_path):
    out = tmp_path / "killed"
    # rank 1 SIGKILLs itself on its 3rd image, in its second batch (batch size 2); torchrun then stops rank 0 too
    assert _bfrbench(data, out, 2, kill="1:3", check=False) != 0
    assert not (out / "summary.csv").exists()
    unit = next(out.glob("units/*test-killer*"))
    finished = {p.name for p in unit.glob("shard_*.pt")}
    assert 1 <= len(finished) < 5, finished  # killed in the middle of the unit
    _bfrbench(data, out, 3)  # a different world size reuses the finished shards
    _assert_same_results(out, reference)
    manifest = json.loads((out / "manifest.json").read_text())
    unit_info = next(v for k, v in manifest["units"].items() if "test-killer" in k)
    assert unit_info["status"] == "resumed"
    assert unit_info["batches_computed"] == len({p.name for p in unit.glob("shard_*.pt")} - finished) >= 1
    assert finished <= {p.name for p in unit.glob("shard_*.pt")}  # finished shards were kept, not redone


def test_batches_are_cut_in_image_order_and_dealt_round_robin():
    plan = distributed.plan_batches([0, 1, 2, 4, 5, 7, 8], 2)
    assert plan == [[0, 1], [2, 4], [5, 7], [8]]
    shares = [distributed.my_batches(plan, r, 3) for r in range(3)]
    assert shares == [[[0, 1], [8]], [[2, 4]], [[5, 7]]]
    assert sorted(i for s in shares for b in s for i in b) == [0, 1, 2, 4, 5, 7, 8]


def test_every_shard_file_gets_exactly_one_owner_that_sees_it():
    owners = distributed.assign_owners([["a", "b", "c", "d"], ["a", "b", "c", "d"]])
    assert owners == {"a": 0, "b": 1, "c": 0, "d": 1}
    # node-local disks: a file is read by a rank that has it
    owners = distributed.assign_owners([["a"], ["b", "c"], []])
    assert owners == {"a": 0, "b": 1, "c": 1}


def test_outside_torchrun_nothing_changes(monkeypatch):
    for var in distributed.LAUNCH_VARS:
        monkeypatch.delenv(var, raising=False)
    assert distributed.pick_device("cuda") == "cuda"
    d = distributed.init(distributed.torch.device("cpu"))
    assert d == distributed.Dist() and d.is_main and not d.active
    assert d.all_gather(3) == [3] and d.gather(3) == [3] and d.broadcast(3) == 3
