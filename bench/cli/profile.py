"""``bfrbench profile``: throughput of methods and metrics, and official-style vs fast end to end."""
from __future__ import annotations

import argparse

COMMAND = "profile"
HELP = "measure images/s, latency, memory and loader/device shares of methods and metrics"
DESCRIPTION = (
    "Profile restoration methods and metrics on the fast path (pinned DataLoader, async copies, autocast, "
    "channels_last, optional torch.compile; no host syncs inside the timed loop). Writes profile.csv and "
    "profile.json into the run folder. --e2e also times, on the same images, the model alone, the real engine "
    "with the chosen metrics, and the official-style loop (one image at a time, PNGs written then read back for "
    "the metrics), and writes their ratios and the per-metric agreement into profile.json's e2e list."
)


def _int_list(text: str) -> list[int]:
    from bench.core.errors import UserError

    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--batch-sizes expects comma-separated integers such as 1,4,16, not {text!r}") from None
    if not values or min(values) < 1:
        raise UserError(f"--batch-sizes needs positive integers, got {text!r}")
    return values


def _dtype_list(text: str) -> list[str]:
    from bench.core.errors import UserError

    values = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in ("fp32", "fp16", "bf16")]
    if bad or not values:
        raise UserError(f"--dtype expects a comma-separated list of fp32, fp16, bf16; got {text!r}")
    return values


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--methods", nargs="*", default=None, help="method specs NAME[:key=value,...] (default: lq classical)")
    p.add_argument("--metrics", nargs="*", default=None, help="metric names (default: psnr ssim)")
    p.add_argument("--batch-sizes", default="1,4,16", help="comma-separated (default 1,4,16)")
    p.add_argument("--dtype", default="fp32", help="comma-separated autocast dtypes for methods: fp32,fp16,bf16")
    p.add_argument("--compile", action="store_true", help="torch.compile the methods (falls back to eager on failure)")
    p.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                   help="channels_last memory format (auto: on for CUDA)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    p.add_argument("--size", type=int, default=512, help="image side in pixels (default 512)")
    p.add_argument("--iters", type=int, default=10, help="timed batches per configuration (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed batches first (default 2)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader worker processes (default: as a run on the device: none on a CPU, else sized to the machine)")
    p.add_argument("--dataset", default=None, help="profile on this dataset's images (default: synthetic PNGs)")
    p.add_argument("--images", type=int, default=8, help="distinct images, cycled through (default 8)")
    p.add_argument("--out", default=None, help="run folder (default runs/profile-<timestamp>)")
    p.add_argument("--weights", default=None,
                   help="weights for every method: a path, or 'random' for stand-in weights (default: managed)")
    p.add_argument("--e2e", "--compare-official", dest="e2e", action="store_true",
                   help="end to end: model alone vs the engine (with --metrics) vs the official-style loop")
    p.add_argument("--quiet", action="store_true")


def main(args: argparse.Namespace) -> int:
    from bench.core.errors import UserError
    from bench.engine.profiling import ProfileConfig, run_profile

    for opt in ("iters", "images", "size"):
        if getattr(args, opt) < 1:
            raise UserError(f"--{opt} must be at least 1")
    if args.warmup < 0 or (args.workers is not None and args.workers < 0):
        raise UserError("--warmup and --workers must be >= 0")
    cfg = ProfileConfig(
        methods=list(args.methods) if args.methods is not None else ["lq", "classical"],
        metrics=list(args.metrics) if args.metrics is not None else ["psnr", "ssim"],
        batch_sizes=_int_list(args.batch_sizes),
        dtypes=_dtype_list(args.dtype),
        compile=args.compile,
        channels_last=args.channels_last,
        device=args.device,
        size=args.size,
        iters=args.iters,
        warmup=args.warmup,
        workers=args.workers,
        out=args.out,
        weights=args.weights,
        dataset=args.dataset,
        images=args.images,
        e2e=args.e2e,
        quiet=args.quiet,
    )
    run_profile(cfg)
    return 0
