"""Time PSNR and SSIM per 512 face on this CPU: BasicSR's own arithmetic (``impl=reference``) against batched torch.

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/time_psnr_ssim.py [--faces 3] [--repeats 4]

Random uint8-level faces (seeded), both paths on the same batch in one fresh process with glibc's
own heap settings (as a script runs; ``--keep-heap``: as the CPU engine runs); prints the median milliseconds per face and checks that the two
paths agree within the documented tolerance (docs/metrics.md).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import bench


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--cv2-threads", type=int, default=None, help="OpenCV's threads (default: its own choice)")
    ap.add_argument("--keep-heap", action="store_true", help="keep freed memory in the heap, as a CPU engine does")
    args = ap.parse_args()
    if args.keep_heap:
        from bench.core import hostmem

        hostmem.keep_freed_memory()
    import cv2

    if args.cv2_threads is not None:
        cv2.setNumThreads(args.cv2_threads)
    g = torch.Generator().manual_seed(0)
    gt = torch.randint(0, 256, (args.faces, 3, 512, 512), generator=g).float() / 255
    noise = torch.randint(-20, 21, gt.shape, generator=g).float() / 255
    pred = (gt + noise).clamp(0, 1).mul(255).round().div(255)
    print(f"{args.faces} faces of 512x512, torch threads {torch.get_num_threads()}, OpenCV threads {cv2.getNumThreads()}, "
          f"heap {'kept' if args.keep_heap else 'glibc defaults'}")
    for name in ("psnr", "ssim", "ssim-y"):
        values = {}
        for impl in ("reference", "device"):
            m = bench.create_metric(name, impl=impl)
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                values[impl] = m.score(pred, gt)
                times.append(time.perf_counter() - t0)
            print(f"{name:7s} {impl:9s} {1000 * statistics.median(times) / args.faces:7.1f} ms per face")
        rel = ((values["device"] - values["reference"]).abs() / values["reference"].abs()).max().item()
        assert rel < 2e-13, (name, rel)
        print(f"{name:7s} largest relative difference between the paths: {rel:.2e}")


if __name__ == "__main__":
    main()
