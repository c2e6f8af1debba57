"""A CPU engine keeps freed tensor memory in the heap: a 64 MB tensor freed and taken again costs no page faults.

Page faults are counted by the kernel (``getrusage``), so the check does not depend on the machine's load. It
runs in a fresh interpreter: how a heap reuses blocks depends on everything the process allocated before.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.core import hostmem

REPO = Path(__file__).resolve().parents[3]

PROBE = """
import json, resource, sys, torch
PAGES = (64 << 20) // resource.getpagesize()

def faults(n):
    out = []
    for _ in range(n):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t = torch.empty(16 << 20)  # 64 MB of float32, written, freed
        t.fill_(1.0)
        del t
        out.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / PAGES)
    return out

script_way = faults(6)  # a process that never tuned its heap, as the official scripts run
from bench.engine.step import Engine
Engine(sys.argv[1])
faults(12)  # the heap settles
print(json.dumps({"script_way": script_way, "after": faults(6)}))
"""


def _probe(device: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", PROBE, device], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=300, check=True)
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.skipif(hostmem._libc() is None, reason="not glibc: mallopt is not there")
def test_a_cpu_engine_reuses_freed_tensors_where_a_script_faults_every_page():
    seen = _probe("cpu")
    assert min(seen["script_way"][1:]) > 0.5, seen  # munmap on free, mmap and a fault per page on the next
    assert max(seen["after"]) < 0.05, seen  # the freed block is reused, its pages stay mapped


def test_the_heap_policy_changes_no_result():
    """The same arithmetic on reused memory: a conv stack gives bit-identical outputs under either policy."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3, padding=1), torch.nn.SiLU(), torch.nn.Conv2d(64, 3, 3, padding=1))
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        with hostmem.glibc_defaults():
            ref = net(x)
        hostmem.keep_freed_memory()
        torch.testing.assert_close(net(x), ref, rtol=0, atol=0)
