"""The host pool never hangs or loses a run: an unguarded API script scores serially (issue 20, item 17);
a killed worker (BrokenProcessPool) costs a serial batch and a new pool, not the run (item 11)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from bench.engine.step import Engine
from tests._helpers.hostpool_helpers import HostMean, WorkerKiller

REPO = Path(__file__).resolve().parents[3]
SCRIPT = """
import sys
sys.path.insert(0, {repo!r})
import torch
from bench.engine.step import Engine
from tests._helpers.hostpool_helpers import HostMean

def go():
    engine = Engine("cpu", host_workers=2)
    r = engine.measure({{"m": HostMean()}}, torch.rand(4, 3, 32, 32), None)
    engine.close()
    print("OK", engine.host_workers, r.values["m"].shape[0], flush=True)
"""


def _run(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "api_script.py"
    script.write_text(SCRIPT.format(repo=str(REPO)) + textwrap.dedent(body))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)  # before the fix: a deadlock, this timeout fails the test


def test_a_script_without_a_main_guard_scores_serially_instead_of_deadlocking(tmp_path):
    proc = _run(tmp_path, "go()\n")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["OK", "0", "4"]
    assert "without an 'if __name__ == \"__main__\":' block" in proc.stderr and "api_script.py, line" in proc.stderr


@pytest.mark.slow  # ~30 s on 2 busy cores: the pool's forkserver imports torch
def test_a_guarded_script_uses_the_pool(tmp_path):
    proc = _run(tmp_path, "if __name__ == '__main__':\n    go()\n")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["OK", "2", "4"] and "RuntimeWarning" not in proc.stderr


def test_a_killed_worker_costs_one_serial_batch_not_the_run(tmp_path):
    flag = tmp_path / "kill"
    x = torch.rand(6, 3, 32, 32).mul(255).round().div(255)
    serial = Engine("cpu", host_workers=0)
    want = serial.measure({"m": HostMean()}, x, None).values["m"]
    engine = Engine("cpu", host_workers=2)
    metric = WorkerKiller(str(flag))
    try:
        engine.measure({"m": metric}, x[:2], None)  # the pool starts and works
        first_pool = engine._host_pool
        flag.write_text(str(os.getpid()))  # the next batch's first worker SIGKILLs itself
        got = engine.measure({"m": metric}, x[2:4], None)
        assert not flag.exists()  # a worker did die
        torch.testing.assert_close(got.values["m"], want[2:4], rtol=0, atol=0)
        assert got.image_errors == [{}, {}]
        last = engine.measure({"m": metric}, x[4:], None)  # a new pool
        assert engine._host_pool is not None and engine._host_pool is not first_pool
        torch.testing.assert_close(last.values["m"], want[4:], rtol=0, atol=0)
    finally:
        engine.close()
    assert int(metric.count) == 6  # every batch's state was merged once
    assert float(metric.compute()) == float(want.mean())
