"""Start-up time of ``bfrbench --help``, ``--version`` and ``list`` against a bare ``python -c pass``.

Run with ``pytest tests/benchmarks/test_bench_cli.py --benchmark-enable -m benchmark``: the group
``cli-startup`` holds the interpreter's floor and each command; ``extra_info`` carries each command's
ratio to that floor and its seconds over it (target: ``--help`` under 0.5 s in all). With benchmarks
disabled (the default addopts) each case runs once as a smoke test.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: as an installed package starts: bytecode cached (the warm-up round writes it)
ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}, "PYTHONPATH": str(REPO)}


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=ENV, cwd=REPO, timeout=120)


def _floor(rounds: int = 5) -> float:
    """The best of ``rounds`` bare interpreter starts (``python -c pass``), in seconds."""
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        _run(["-c", "pass"])
        best = min(best, time.perf_counter() - t0)
    return best


@pytest.mark.benchmark
@pytest.mark.parametrize("argv", [["-c", "pass"], ["-m", "bench.cli", "--help"], ["-m", "bench.cli", "--version"],
                                  ["-m", "bench.cli", "list", "methods"]], ids=["python", "help", "version", "list"])
def test_cli_startup(benchmark, argv):
    benchmark.group = "cli-startup"
    proc = benchmark.pedantic(_run, args=(argv,), rounds=5, iterations=1, warmup_rounds=1)
    assert proc.returncode == 0, proc.stderr
    if argv[-1] == "--help":
        assert proc.stdout.startswith("usage: bfrbench")
    stats = getattr(benchmark, "stats", None)
    if not benchmark.disabled and stats is not None and getattr(stats, "stats", None) is not None:
        floor = _floor()
        benchmark.extra_info.update({"python_floor_s": floor, "ratio_to_python": stats.stats.min / floor,
                                     "over_python_s": stats.stats.min - floor})
