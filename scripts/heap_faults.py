"""CPU time and page faults of one stand-in CodeFormer forward at 512 under glibc's own heap thresholds, then with
bench.core.hostmem.keep_freed_memory() (what a CPU engine sets); the figures in bench/core/hostmem.py come from it.

    PYTHONPATH=. OMP_NUM_THREADS=2 python scripts/heap_faults.py [METHOD_SPEC]
"""
from __future__ import annotations

import resource
import sys
import time

import torch

import bench
from bench.core import hostmem


def forward(method: torch.nn.Module, x: torch.Tensor, label: str) -> None:
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    with torch.no_grad():
        method.restore(x)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{label:28s} wall {time.perf_counter() - t0:6.2f} s  user {r1.ru_utime - r0.ru_utime:6.2f} s  "
          f"system {r1.ru_stime - r0.ru_stime:5.2f} s  minor faults {r1.ru_minflt - r0.ru_minflt}", flush=True)


def main() -> None:
    spec = sys.argv[1] if len(sys.argv) > 1 else "codeformer"
    name, _, opts = spec.partition(":")
    kwargs = dict(kv.split("=", 1) for kv in opts.split(",") if kv)
    kwargs.setdefault("weights", "random")
    method = bench.create_method(name, **kwargs).eval()
    x = torch.rand(1, 3, 512, 512, generator=torch.Generator().manual_seed(0))
    print(f"{spec}, {torch.get_num_threads()} threads")
    forward(method, x, "warm-up (glibc thresholds)")
    forward(method, x, "glibc thresholds")
    if not hostmem.keep_freed_memory():
        print("not glibc: nothing to compare")
        return
    forward(method, x, "kept, first")
    forward(method, x, "kept")


if __name__ == "__main__":
    main()
