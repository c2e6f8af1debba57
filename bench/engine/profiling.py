"""Throughput profiling of methods and metrics, and the official-style vs fast end-to-end comparison.

For each method (and each metric) and each batch size / dtype, a timed loop pulls batches from a
DataLoader reading real PNG files, runs the step, and records: images/s, per-batch latency
p50/p95, peak memory, the share of wall time spent waiting on the DataLoader and the share the
device was busy (CUDA events around each step; on CPU, the step's host time). The loop never
syncs the host inside the timed region (see :mod:`bench.engine.device`).

The official-style baseline does what released BFR scripts do: one image at a time, read from
disk, restore, write a PNG, then compute each metric afterwards by reading the PNGs back.
``compare_official`` runs it and the fast path on the same images and reports the ratio, and how
far apart their metric values are (zero in fp32: the fast path only skips the PNG round trip).
"""
from __future__ import annotations

import csv
import datetime as _dt
import functools
import io
import itertools
import json
import os
import platform
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.engine.device import (
    PeakMemory,
    StepTimer,
    autocast,
    dtype_support,
    inference_mode,
    pinned_loader,
    prepare_fast_path,
    resolve_device,
    synchronize,
    to_device_images,
)
from bench.engine.loading import LoadedBatch, PairDataset, collate_pairs

Clock = Callable[[], float]

#: columns of profile.csv, in order
COLUMNS = [
    "kind", "name", "batch_size", "dtype", "compile", "channels_last", "device", "images", "wall_s",
    "images_per_s", "compute_images_per_s", "latency_p50_ms", "latency_p95_ms", "peak_mem_mb", "mem_kind",
    "data_wait_share", "device_busy_share", "status", "note",
]


@dataclass
class ProfileConfig:
    """What ``bfrbench profile`` measures."""

    methods: list[str] = field(default_factory=lambda: ["lq", "classical"])
    metrics: list[str] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=lambda: [1, 4, 16])
    dtypes: list[str] = field(default_factory=lambda: ["fp32"])
    compile: bool = False
    #: "auto" (on for CUDA), "on" or "off"
    channels_last: str = "auto"
    device: str = "auto"
    size: int = 512
    iters: int = 10
    warmup: int = 2
    workers: int = 2
    out: str | None = None
    #: passed to every method factory: a path, "random" (stand-in weights) or None (managed checkpoint)
    weights: str | None = None
    #: a registered dataset name; None: synthetic faces-sized PNGs written into the run folder
    dataset: str | None = None
    #: distinct images (synthetic, or the first N of the dataset); the loop cycles over them
    images: int = 8
    compare_official: bool = False
    quiet: bool = False
    seed: int = 0


@dataclass
class LoopTiming:
    """Raw numbers of one timed loop (seconds)."""

    waits: list[float]
    steps: list[float]
    wall: float
    images: int


@dataclass
class ProfileRow:
    kind: str
    name: str
    batch_size: int
    dtype: str
    compile: bool = False
    channels_last: bool = False
    device: str = "cpu"
    images: int = 0
    wall_s: float = float("nan")
    images_per_s: float = float("nan")
    compute_images_per_s: float = float("nan")
    latency_p50_ms: float = float("nan")
    latency_p95_ms: float = float("nan")
    peak_mem_mb: float = float("nan")
    mem_kind: str = ""
    data_wait_share: float = float("nan")
    device_busy_share: float = float("nan")
    status: str = "ok"
    note: str = ""


# ----------------------------------------------------------------------------- the timed loop


def timed_loop(
    batches: Iterable[LoadedBatch],
    step: Callable[[LoadedBatch], Any],
    device: torch.device,
    *,
    warmup: int,
    iters: int,
    clock: Clock = time.perf_counter,
) -> LoopTiming:
    """Run ``warmup`` untimed then up to ``iters`` timed steps; no host sync between the two end syncs."""
    it: Iterator[LoadedBatch] = iter(batches)
    for batch in itertools.islice(it, warmup):
        step(batch)
    synchronize(device)
    timer = StepTimer(device, clock)
    waits: list[float] = []
    images = 0
    start = clock()
    for _ in range(iters):
        t0 = clock()
        batch = next(it, None)
        if batch is None:
            break
        waits.append(clock() - t0)
        timer.start()
        step(batch)
        timer.stop()
        images += len(batch.names)
    synchronize(device)
    wall = clock() - start
    return LoopTiming(waits=waits, steps=timer.durations(), wall=wall, images=images)


def summarise(row: ProfileRow, timing: LoopTiming) -> ProfileRow:
    """Fill a row's speed columns from a loop's raw timings."""
    steps = np.asarray(timing.steps, dtype=float)
    row.images = timing.images
    row.wall_s = timing.wall
    if timing.wall > 0:
        row.images_per_s = timing.images / timing.wall
        row.data_wait_share = min(1.0, float(np.sum(timing.waits)) / timing.wall)
        row.device_busy_share = min(1.0, float(steps.sum()) / timing.wall)
    if steps.size:
        row.latency_p50_ms = float(np.percentile(steps, 50) * 1000)
        row.latency_p95_ms = float(np.percentile(steps, 95) * 1000)
        if steps.sum() > 0:
            row.compute_images_per_s = timing.images / float(steps.sum())
    return row


def _cycled(pairs: Sequence[Any], n: int) -> list[Any]:
    if not pairs:
        raise ValueError("no images to profile on")
    return [pairs[i % len(pairs)] for i in range(n)]


def _use_channels_last(setting: str, device: torch.device) -> bool:
    return setting == "on" or (setting == "auto" and device.type == "cuda")


# ----------------------------------------------------------------------------- methods and metrics


def profile_method(
    method: torch.nn.Module,
    name: str,
    pairs: Sequence[Any],
    *,
    batch_size: int,
    dtype: str = "fp32",
    device: torch.device | str = "cpu",
    compile: bool = False,
    channels_last: str = "auto",
    size: int = 512,
    iters: int = 10,
    warmup: int = 2,
    workers: int = 0,
    clock: Clock = time.perf_counter,
) -> ProfileRow:
    """Restore throughput of one method at one batch size and dtype, on the fast path."""
    from bench.engine.device import to_uint8_levels

    device = resolve_device(device)
    row = ProfileRow(kind="method", name=name, batch_size=batch_size, dtype=dtype, compile=compile, device=str(device))
    ok, why = dtype_support(device, dtype)
    if not ok:
        row.status, row.note = "skipped", why
        return row
    loader = pinned_loader(
        PairDataset(_cycled(pairs, (warmup + iters) * batch_size), size=size),
        batch_size, workers, device, collate_fn=collate_pairs,
    )
    example = torch.rand(batch_size, 3, size, size, generator=torch.Generator().manual_seed(0))
    with inference_mode(), PeakMemory(device) as mem:
        fast = prepare_fast_path(
            method, example, device=device, dtype=dtype,
            channels_last=_use_channels_last(channels_last, device), compile=compile,
        )

        def step(batch: LoadedBatch) -> None:
            if not batch.names:
                return
            x = to_device_images(batch.lq, device, fast.channels_last)
            with autocast(device, dtype):
                out = fast.fn(x)
            to_uint8_levels(out.float())

        timing = timed_loop(loader, step, device, warmup=warmup, iters=iters, clock=clock)
    row.compile, row.channels_last = fast.compiled, fast.channels_last
    row.peak_mem_mb, row.mem_kind = mem.peak_bytes / 2**20, mem.kind
    row.note = "; ".join(fast.notes)
    return summarise(row, timing)


def profile_metric(
    metric: torch.nn.Module,
    name: str,
    pairs: Sequence[Any],
    *,
    batch_size: int,
    device: torch.device | str = "cpu",
    size: int = 512,
    iters: int = 10,
    warmup: int = 2,
    workers: int = 0,
    clock: Clock = time.perf_counter,
) -> ProfileRow:
    """``update`` throughput of one metric (predictions: the LQ images; references: the GT images)."""
    device = resolve_device(device)
    row = ProfileRow(kind="metric", name=name, batch_size=batch_size, dtype="fp32", device=str(device))
    needs_gt = bool(getattr(metric, "needs_gt", False))
    if needs_gt and any(getattr(p, "gt_path", None) is None for p in pairs):
        row.status, row.note = "skipped", "needs ground truth; the profiled images have none"
        return row
    metric = metric.to(device)
    loader = pinned_loader(
        PairDataset(_cycled(pairs, (warmup + iters) * batch_size), size=size, need_gt=needs_gt),
        batch_size, workers, device, collate_fn=collate_pairs,
    )

    def step(batch: LoadedBatch) -> None:
        if not batch.names:
            return
        pred = to_device_images(batch.lq, device)
        gt = to_device_images(batch.gt, device) if needs_gt and batch.gt is not None else None
        metric.reset()  # bounded memory: the runner also keeps one batch of state at a time
        metric.update(pred, gt)

    with inference_mode(), PeakMemory(device) as mem:
        timing = timed_loop(loader, step, device, warmup=warmup, iters=iters, clock=clock)
    row.peak_mem_mb, row.mem_kind = mem.peak_bytes / 2**20, mem.kind
    return summarise(row, timing)


# ----------------------------------------------------------------------------- official-style vs fast


def _read_rgb_tensor(path: Path, size: int) -> torch.Tensor:
    """As the official scripts read: cv2 BGR -> RGB float [0, 1], bilinear resize when needed."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        from bench.errors import UserError

        raise UserError(f"{path}: cannot be read as an image; check the file or remove it")
    if bgr.shape[:2] != (size, size):
        bgr = cv2.resize(bgr, (size, size), interpolation=cv2.INTER_LINEAR)
    return torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1])).permute(2, 0, 1).float().div_(255.0)


def official_style(
    method: torch.nn.Module,
    metrics: dict[str, torch.nn.Module],
    pairs: Sequence[Any],
    out_dir: Path,
    *,
    device: torch.device,
    size: int = 512,
    clock: Clock = time.perf_counter,
) -> dict[str, Any]:
    """One image at a time: read, restore (fp32), write PNG; then each metric reads the PNGs back.

    The PNGs are scratch data written the way the official scripts write them (``cv2.imwrite``).
    """
    import cv2

    out_dir.mkdir(parents=True, exist_ok=True)
    method = method.eval().to(device)
    with torch.no_grad():  # untimed warm-up, as a script's model load would be
        method.restore(_read_rgb_tensor(Path(pairs[0].lq_path), size).unsqueeze(0).to(device))
    synchronize(device)
    t0 = clock()
    written: list[Path] = []
    with torch.no_grad():
        for p in pairs:
            x = _read_rgb_tensor(Path(p.lq_path), size).unsqueeze(0).to(device)
            y = method.restore(x)
            img = (y[0].float().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
            path = out_dir / f"{p.name}.png"
            cv2.imwrite(str(path), np.ascontiguousarray(img[..., ::-1]))
            written.append(path)
    t_restore = clock() - t0
    values: dict[str, list[float]] = {}
    finals: dict[str, float] = {}
    t1 = clock()
    with torch.no_grad():
        for name, m in metrics.items():
            m = m.to(device)
            m.reset()
            per: list[float] = []
            for p, path in zip(pairs, written):
                pred = _read_rgb_tensor(path, size).unsqueeze(0).to(device)
                gt = _read_rgb_tensor(Path(p.gt_path), size).unsqueeze(0).to(device) if m.needs_gt else None
                v = m.update(pred, gt)
                if v is not None:
                    per.append(float(v.reshape(-1)[0]))
            values[name] = per
            finals[name] = float(m.compute())
    synchronize(device)
    t_metrics = clock() - t1
    return {"restore_s": t_restore, "metrics_s": t_metrics, "total_s": t_restore + t_metrics,
            "images": len(written), "per_image": values, "values": finals}


def fast_end_to_end(
    method: torch.nn.Module,
    metrics: dict[str, torch.nn.Module],
    pairs: Sequence[Any],
    *,
    device: torch.device,
    batch_size: int,
    dtype: str = "fp32",
    workers: int = 0,
    size: int = 512,
    channels_last: str = "auto",
    compile: bool = False,
    clock: Clock = time.perf_counter,
) -> dict[str, Any]:
    """Batched, pinned DataLoader, autocast, metrics on the device on the in-memory uint8-level outputs."""
    from bench.engine.device import to_uint8_levels

    needs_gt = any(m.needs_gt for m in metrics.values())
    loader = pinned_loader(PairDataset(list(pairs), size=size, need_gt=needs_gt), batch_size, workers, device,
                           collate_fn=collate_pairs)
    example = torch.rand(batch_size, 3, size, size, generator=torch.Generator().manual_seed(0))
    with inference_mode():
        fast = prepare_fast_path(method, example, device=device, dtype=dtype,
                                 channels_last=_use_channels_last(channels_last, device), compile=compile)
        for m in metrics.values():
            m.to(device).reset()
        per: dict[str, list[torch.Tensor]] = {name: [] for name in metrics}
        images = 0
        t0 = clock()
        for batch in loader:
            if not batch.names:
                continue
            x = to_device_images(batch.lq, device, fast.channels_last)
            with autocast(device, dtype):
                out = fast.fn(x)
            out = to_uint8_levels(out.float()).contiguous()
            gt = to_device_images(batch.gt, device) if batch.gt is not None else None
            if gt is not None and gt.shape[-2:] != out.shape[-2:]:
                from bench.errors import UserError

                raise UserError(f"the method outputs {tuple(out.shape[-2:])} images but --size is {size}; "
                                "compare at the method's output size (--size 512)")
            for name, m in metrics.items():
                v = m.update(out, gt if m.needs_gt else None)
                if v is not None:
                    per[name].append(v.detach())
            images += len(batch.names)
        finals = {name: m.compute() for name, m in metrics.items()}
        synchronize(device)
        total = clock() - t0
    return {
        "total_s": total, "images": images, "notes": fast.notes,
        "per_image": {n: [float(x) for x in torch.cat(v).double().cpu()] if v else [] for n, v in per.items()},
        "values": {n: float(v) for n, v in finals.items()},
    }


def compare_official(
    method_factory: Callable[[], torch.nn.Module],
    metric_factories: dict[str, Callable[[], torch.nn.Module]],
    pairs: Sequence[Any],
    scratch: Path,
    *,
    device: torch.device,
    batch_size: int,
    dtype: str = "fp32",
    workers: int = 0,
    size: int = 512,
    channels_last: str = "auto",
    compile: bool = False,
    clock: Clock = time.perf_counter,
) -> dict[str, Any]:
    """Both pipelines on the same images; returns their times, the ratio, and metric agreement."""
    official = official_style(method_factory(), {n: f() for n, f in metric_factories.items()}, pairs, scratch,
                              device=device, size=size, clock=clock)
    fast = fast_end_to_end(method_factory(), {n: f() for n, f in metric_factories.items()}, pairs,
                           device=device, batch_size=batch_size, dtype=dtype, workers=workers, size=size,
                           channels_last=channels_last, compile=compile, clock=clock)
    agreement = {}
    for name in metric_factories:
        a, b = official["per_image"].get(name, []), fast["per_image"].get(name, [])
        diff = max((abs(x - y) for x, y in zip(a, b)), default=0.0) if len(a) == len(b) else float("nan")
        agreement[name] = {"official": official["values"][name], "fast": fast["values"][name],
                           "max_abs_diff_per_image": diff}
    return {
        "images": official["images"], "batch_size": batch_size, "dtype": dtype,
        "official_s": official["total_s"], "official_restore_s": official["restore_s"],
        "official_metrics_s": official["metrics_s"], "fast_s": fast["total_s"],
        "ratio": official["total_s"] / fast["total_s"] if fast["total_s"] > 0 else float("nan"),
        "metrics": agreement, "fast_notes": fast["notes"],
    }


# ----------------------------------------------------------------------------- data


def synthetic_pairs(folder: Path, n: int, size: int, seed: int = 0) -> list[Any]:
    """``n`` deterministic GT/LQ PNG pairs (smooth structure + blur, noise, JPEG-free) under ``folder``."""
    import cv2

    from bench.data.datasets import ImagePair
    from bench.imageio import write_image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    pairs = []
    for i in range(n):
        img = np.zeros((size, size, 3), np.float32)
        for c in range(3):
            for _ in range(6):
                cx, cy, s = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.3)
                img[..., c] += rng.uniform(0.2, 1.0) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
        gt = np.clip(img / max(img.max(), 1e-6) * 255, 0, 255).astype(np.uint8)
        small = cv2.resize(cv2.GaussianBlur(gt, (0, 0), 2.0), (size // 4, size // 4), interpolation=cv2.INTER_AREA)
        lq = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        lq = np.clip(lq + rng.normal(0, 6, lq.shape), 0, 255).astype(np.uint8)
        name = f"synth_{i:03d}"
        write_image(folder / "gt" / f"{name}.png", gt)
        write_image(folder / "lq" / f"{name}.png", lq)
        pairs.append(ImagePair(name=name, lq_path=folder / "lq" / f"{name}.png", gt_path=folder / "gt" / f"{name}.png"))
    return pairs


# ----------------------------------------------------------------------------- the whole profile


def _environment(device: torch.device) -> dict[str, Any]:
    env = {
        "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": str(device),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
    return env


def run_profile(cfg: ProfileConfig, *, clock: Clock = time.perf_counter) -> dict[str, Any]:
    """Profile every method and metric of ``cfg``; write profile.csv and profile.json; return the result."""
    import bench
    from bench.config import MethodSpec
    from bench.errors import UserError
    from bench.metrics.base import MetricUnavailable
    from bench.weights import MissingWeightsError

    device = resolve_device(cfg.device)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(cfg.out or Path("runs") / f"profile-{stamp}").resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.dataset:
        pairs = bench.create_dataset(cfg.dataset).pairs()[: cfg.images]
        if not pairs:
            raise UserError(f"dataset {cfg.dataset!r} has no images to profile on")
    else:
        pairs = synthetic_pairs(run_dir / "profile_data", cfg.images, cfg.size, cfg.seed)

    def method_factory(spec: MethodSpec) -> Callable[[], torch.nn.Module]:
        kwargs = spec.kwargs()
        if cfg.weights is not None:
            kwargs["weights"] = cfg.weights

        def build() -> torch.nn.Module:
            method = bench.create_method(spec.name, **kwargs)
            if cfg.size != getattr(method, "output_size", cfg.size):
                method.output_size = cfg.size  # profile at --size (resizing methods honour it; nets may not)
            return method

        return build

    rows: list[ProfileRow] = []

    def say(msg: str) -> None:
        if not cfg.quiet:
            print(msg, flush=True)

    for spec_text in cfg.methods:
        spec = MethodSpec.parse(spec_text)
        try:
            method = method_factory(spec)()
        except (MissingWeightsError, MetricUnavailable, ImportError) as exc:
            rows.append(ProfileRow(kind="method", name=spec.label, batch_size=0, dtype="-", device=str(device),
                                   status="skipped", note=str(exc)))
            say(f"  skipped method {spec.label}: {exc}")
            continue
        for dtype, bs in itertools.product(cfg.dtypes, cfg.batch_sizes):
            say(f"  method {spec.label} batch {bs} {dtype} ...")
            rows.append(_guarded(functools.partial(
                profile_method, method, spec.label, pairs, batch_size=bs, dtype=dtype, device=device,
                compile=cfg.compile, channels_last=cfg.channels_last, size=cfg.size, iters=cfg.iters,
                warmup=cfg.warmup, workers=cfg.workers, clock=clock), "method", spec.label, bs, dtype, device))
        del method
    metric_factories: dict[str, Callable[[], torch.nn.Module]] = {}
    for name in cfg.metrics:
        try:
            metric = bench.create_metric(name)
        except (MissingWeightsError, MetricUnavailable, ImportError) as exc:
            rows.append(ProfileRow(kind="metric", name=name, batch_size=0, dtype="fp32", device=str(device),
                                   status="skipped", note=str(exc)))
            say(f"  skipped metric {name}: {exc}")
            continue
        metric_factories[name] = (lambda n=name: bench.create_metric(n))
        for bs in cfg.batch_sizes:
            say(f"  metric {name} batch {bs} ...")
            rows.append(_guarded(functools.partial(
                profile_metric, metric, name, pairs, batch_size=bs, device=device, size=cfg.size,
                iters=cfg.iters, warmup=cfg.warmup, workers=cfg.workers, clock=clock), "metric", name, bs, "fp32",
                device))
    comparisons = []
    if cfg.compare_official:
        usable = {n: f for n, f in metric_factories.items()
                  if not (f().needs_gt and any(p.gt_path is None for p in pairs))}
        for spec_text in cfg.methods:
            spec = MethodSpec.parse(spec_text)
            if any(r.name == spec.label and r.kind == "method" and r.batch_size == 0 for r in rows):
                continue  # could not be built
            say(f"  official-style vs fast: {spec.label} ...")
            cmp = compare_official(
                method_factory(spec), usable, pairs, run_dir / "official_style" / _safe(spec.label),
                device=device, batch_size=max(cfg.batch_sizes), dtype=cfg.dtypes[0], workers=cfg.workers,
                size=cfg.size, channels_last=cfg.channels_last, compile=cfg.compile, clock=clock,
            )
            cmp["method"] = spec.label
            comparisons.append(cmp)
            for kind, seconds in (("official-style", cmp["official_s"]), ("fast-e2e", cmp["fast_s"])):
                rows.append(ProfileRow(
                    kind=kind, name=spec.label, batch_size=1 if kind == "official-style" else cmp["batch_size"],
                    dtype="fp32" if kind == "official-style" else cmp["dtype"], device=str(device),
                    images=cmp["images"], wall_s=seconds, images_per_s=cmp["images"] / seconds if seconds else float("nan"),
                    note=f"metrics: {', '.join(usable) or 'none'}"
                    + (f"; end-to-end ratio official/fast = {cmp['ratio']:.2f}" if kind == "fast-e2e" else ""),
                ))
    result = {
        "config": asdict(cfg), "environment": _environment(device), "run_dir": str(run_dir),
        "rows": [asdict(r) for r in rows], "compare_official": comparisons,
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
    }
    write_outputs(run_dir, rows, result)
    if not cfg.quiet:
        print(format_table(rows))
        for cmp in comparisons:
            print(f"official-style vs fast ({cmp['method']}, {cmp['images']} images): "
                  f"{cmp['official_s']:.2f} s vs {cmp['fast_s']:.2f} s = {cmp['ratio']:.2f}x")
        print(f"wrote {run_dir / 'profile.csv'} and profile.json")
    return result


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._+-" else "_" for c in name)[:80]


def _guarded(fn: Callable[[], ProfileRow], kind: str, name: str, bs: int, dtype: str,
             device: torch.device) -> ProfileRow:
    """One configuration failing (e.g. out of memory at batch 16) costs only its own row."""
    try:
        return fn()
    except torch.cuda.OutOfMemoryError as exc:
        torch.cuda.empty_cache()
        return ProfileRow(kind=kind, name=name, batch_size=bs, dtype=dtype, device=str(device),
                          status="error", note=f"out of memory ({str(exc).splitlines()[0]})")
    except Exception as exc:
        from bench.errors import USER_ERRORS

        if isinstance(exc, USER_ERRORS):
            raise
        return ProfileRow(kind=kind, name=name, batch_size=bs, dtype=dtype, device=str(device),
                          status="error", note=f"{type(exc).__name__}: {exc}")


def write_outputs(run_dir: Path, rows: Sequence[ProfileRow], result: dict[str, Any]) -> None:
    """profile.csv (one row per configuration) and profile.json (config, environment, rows), atomically."""
    from bench.atomic import atomic_write_json, atomic_write_text

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        d = asdict(r)
        writer.writerow({k: (f"{d[k]:.6g}" if isinstance(d[k], float) else d[k]) for k in COLUMNS})
    atomic_write_text(run_dir / "profile.csv", buf.getvalue())
    atomic_write_json(run_dir / "profile.json", json.loads(json.dumps(result, default=str, allow_nan=True)))


def format_table(rows: Sequence[ProfileRow]) -> str:
    """A fixed-width text table of the main columns."""
    head = ["kind", "name", "bs", "dtype", "img/s", "p50 ms", "p95 ms", "peak MB", "data", "busy", "status"]
    lines = []
    for r in rows:
        def f(x: float, spec: str) -> str:
            return "-" if x != x else format(x, spec)  # NaN -> "-"
        lines.append([
            r.kind, r.name[:28], str(r.batch_size), r.dtype + ("+c" if r.compile else ""), f(r.images_per_s, ".1f"),
            f(r.latency_p50_ms, ".1f"), f(r.latency_p95_ms, ".1f"), f(r.peak_mem_mb, ".0f"),
            f(r.data_wait_share, ".0%"), f(r.device_busy_share, ".0%"), r.status if not r.note else f"{r.status}*",
        ])
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(head)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in lines]
    notes = [f"* {r.kind} {r.name} bs {r.batch_size} {r.dtype}: {r.note}" for r in rows if r.note]
    return "\n".join(out + notes)
