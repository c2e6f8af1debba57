"""``bfrbench profile``: throughput rows for methods and metrics, and the end-to-end comparison.

The timed loops live in :mod:`bench.engine.timing`, the official-style loop in
:mod:`bench.engine.official`, and the three-way end-to-end benchmark (model alone, engine,
official style) in :mod:`bench.engine.e2e`; this module runs what a :class:`ProfileConfig` asks
for and writes profile.csv and profile.json.
"""
from __future__ import annotations

import datetime as _dt
import functools
import itertools
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.core.device import resolve_device
from bench.core.names import folder_name
from bench.engine.loading import default_workers
from bench.engine.phases import format_phases
from bench.engine.timing import COLUMNS, Clock, ProfileRow, profile_method, profile_metric

__all__ = ["COLUMNS", "ProfileConfig", "ProfileRow", "run_profile", "synthetic_pairs", "write_outputs", "format_table"]


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
    #: DataLoader worker processes; None: sized to the machine
    workers: int | None = None
    out: str | None = None
    #: passed to every method factory: a path, "random" (stand-in weights) or None (managed checkpoint)
    weights: str | None = None
    #: a registered dataset name; None: synthetic faces-sized PNGs written into the run folder
    dataset: str | None = None
    #: distinct images (synthetic, or the first N of the dataset); the loop cycles over them
    images: int = 8
    #: also run the end-to-end benchmark: model alone vs the engine vs the official-style loop
    e2e: bool = False
    quiet: bool = False
    seed: int = 0


# ----------------------------------------------------------------------------- data


def cycled_pairs(pairs: Sequence[Any], n: int) -> list[Any]:
    """The first ``n`` pairs, cycling through a smaller set; repeats get the names ``NAME~k`` (unique)."""
    from bench.data.datasets import ImagePair

    out = []
    for i in range(n):
        p, k = pairs[i % len(pairs)], i // len(pairs)
        out.append(p if k == 0 else ImagePair(name=f"{p.name}~{k}", lq_path=p.lq_path, gt_path=p.gt_path))
    return out


def synthetic_pairs(folder: Path, n: int, size: int, seed: int = 0) -> list[Any]:
    """``n`` deterministic GT/LQ PNG pairs (smooth structure + blur, noise, JPEG-free) under ``folder``."""
    import cv2

    from bench.core.imageio import write_image
    from bench.data.datasets import ImagePair

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


def _profile_pairs(cfg: ProfileConfig, run_dir: Path) -> list[Any]:
    """The images profiled: ``cfg.images`` of the dataset (cycled), or synthetic ones in the run folder."""
    import bench
    from bench.core.errors import UserError

    if not cfg.dataset:
        return synthetic_pairs(run_dir / "profile_data", cfg.images, cfg.size, cfg.seed)
    base = bench.create_dataset(cfg.dataset).pairs()
    if not base:
        raise UserError(f"dataset {cfg.dataset!r} has no images to profile on")
    return cycled_pairs(base, cfg.images)


class _Profile:
    """One ``profile`` call's state: its rows, stand-in flags and buildable metrics, filled step by step."""

    def __init__(self, cfg: ProfileConfig, clock: Clock) -> None:
        self.cfg, self.clock = cfg, clock
        self.device = resolve_device(cfg.device)
        #: the loader's worker processes, as a run on this device would use them
        self.workers = default_workers(self.device.type) if cfg.workers is None else cfg.workers
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.run_dir = Path(cfg.out or Path("runs") / f"profile-{stamp}").resolve()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.pairs = _profile_pairs(cfg, self.run_dir)
        self.rows: list[ProfileRow] = []
        self.standins: dict[str, bool] = {}
        self.metric_factories: dict[str, Callable[[], torch.nn.Module]] = {}
        self.e2e: list[dict[str, Any]] = []

    def say(self, msg: str) -> None:
        if not self.cfg.quiet:
            print(msg, flush=True)

    def method_factory(self, spec: Any) -> Callable[[], torch.nn.Module]:
        """Builds the method of ``spec`` (with ``--weights``), producing ``--size`` outputs where it can."""
        import bench

        cfg = self.cfg
        kwargs = spec.kwargs()
        if cfg.weights is not None:
            kwargs["weights"] = cfg.weights

        def build() -> torch.nn.Module:
            method = bench.create_method(spec.name, **kwargs)
            if cfg.size != getattr(method, "output_size", cfg.size):
                method.output_size = cfg.size  # profile at --size (resizing methods honour it; nets may not)
            return method

        return build

    def _skipped(self, kind: str, name: str, dtype: str, exc: Exception) -> None:
        self.rows.append(ProfileRow(kind=kind, name=name, batch_size=0, dtype=dtype, device=str(self.device),
                                    status="skipped", note=str(exc)))
        self.say(f"  skipped {kind} {name}: {exc}")

    def methods(self) -> None:
        """Each method at each (dtype, batch size); one that cannot be built is a skipped row."""
        from bench.config import MethodSpec
        from bench.metrics.base import MetricUnavailable
        from bench.weights import MissingWeightsError

        cfg = self.cfg
        for spec_text in cfg.methods:
            spec = MethodSpec.parse(spec_text)
            try:
                method = self.method_factory(spec)()
            except (MissingWeightsError, MetricUnavailable, ImportError) as exc:
                self._skipped("method", spec.label, "-", exc)
                continue
            standin = bool(method.info().standin) if hasattr(method, "info") else False
            first = len(self.rows)
            for dtype, bs in itertools.product(cfg.dtypes, cfg.batch_sizes):
                self.say(f"  method {spec.label} batch {bs} {dtype} ...")
                self.rows.append(_guarded(functools.partial(
                    profile_method, method, spec.label, self.pairs, batch_size=bs, dtype=dtype, device=self.device,
                    compile=cfg.compile, channels_last=cfg.channels_last, size=cfg.size, iters=cfg.iters,
                    warmup=cfg.warmup, workers=self.workers, clock=self.clock), "method", spec.label, bs, dtype,
                    self.device))
            for r in self.rows[first:]:
                r.standin = standin
            self.standins[spec.label] = standin
            del method

    def metrics(self) -> None:
        """Each metric at each batch size (fp32); one that cannot be built is a skipped row."""
        import bench
        from bench.metrics.base import MetricUnavailable
        from bench.weights import MissingWeightsError

        cfg = self.cfg
        for name in cfg.metrics:
            try:
                metric = bench.create_metric(name)
            except (MissingWeightsError, MetricUnavailable, ImportError) as exc:
                self._skipped("metric", name, "fp32", exc)
                continue
            self.metric_factories[name] = (lambda n=name: bench.create_metric(n))
            standard = bool(getattr(metric, "info", lambda: {})().get("standard", True))
            first = len(self.rows)
            for bs in cfg.batch_sizes:
                self.say(f"  metric {name} batch {bs} ...")
                self.rows.append(_guarded(functools.partial(
                    profile_metric, metric, name, self.pairs, batch_size=bs, device=self.device, size=cfg.size,
                    iters=cfg.iters, warmup=cfg.warmup, workers=self.workers, clock=self.clock), "metric", name, bs,
                    "fp32", self.device))
            for r in self.rows[first:]:
                r.standard = standard

    def end_to_end(self) -> None:
        """Each buildable method alone, through the engine and the official way (``--e2e``): three rows each."""
        from bench.config import MethodSpec
        from bench.core.device import run_dtype
        from bench.engine.e2e import end_to_end

        cfg, pairs, device = self.cfg, self.pairs, self.device
        usable = [n for n, f in self.metric_factories.items()
                  if not (f().needs_gt and any(p.gt_path is None for p in pairs))]
        for spec_text in cfg.methods:
            spec = MethodSpec.parse(spec_text)
            if any(r.name == spec.label and r.kind == "method" and r.batch_size == 0 for r in self.rows):
                continue  # could not be built
            self.say(f"  end to end: {spec.label} (model alone, engine, official style) ...")
            entry = end_to_end(
                spec_text, self.method_factory(spec), usable, pairs, self.run_dir / "e2e" / folder_name(spec.label),
                device=device, batch_size=max(cfg.batch_sizes), dtype=run_dtype(device, cfg.dtypes[0]),
                workers=cfg.workers, size=cfg.size, channels_last=cfg.channels_last, compile=cfg.compile,
                clock=self.clock,
            )
            self.e2e.append(entry)
            for kind, key, bs, dtype in (("model-only", "model_only_s", entry["batch_size"], entry["dtype"]),
                                         ("engine-e2e", "engine_s", entry["batch_size"], entry["dtype"]),
                                         ("official-style", "official_style_s", 1, "fp32")):
                seconds = entry[key]
                self.rows.append(ProfileRow(
                    kind=kind, name=spec.label, batch_size=bs, dtype=dtype, device=str(device),
                    compile=entry["compile"] and kind != "official-style", images=entry["images"], wall_s=seconds,
                    images_per_s=entry["images"] / seconds if seconds else float("nan"),
                    standin=self.standins.get(spec.label, False),
                    note=f"metrics: {', '.join(usable) or 'none'}" if kind != "model-only" else "",
                ))

    def show(self) -> None:
        """The table, each end-to-end comparison and where the files went (unless quiet)."""
        if self.cfg.quiet:
            return
        print(format_table(self.rows))
        for e in self.e2e:
            print(f"end to end ({e['method']}, {e['images']} images): model alone {e['model_only_s']:.2f} s, "
                  f"model + metrics alone {e['floor_s']:.2f} s, "
                  f"engine {e['engine_s']:.2f} s ({e['engine_over_model']:.2f}x the model, "
                  f"{e['engine_over_floor']:.2f}x model + metrics), official style "
                  f"{e['official_style_s']:.2f} s ({e['official_over_engine']:.2f}x the engine)")
            rounds = e.get("engine_rounds_s", [])
            if len(rounds) > 1:
                print(f"  each side's fastest of {len(rounds)} alternating rounds: engine "
                      f"{', '.join(f'{s:.2f}' for s in rounds)} s; official style "
                      f"{', '.join(f'{s:.2f}' for s in e['official_rounds_s'])} s")
            if e.get("phases"):
                print(f"  engine phases: {format_phases(e['phases'], e['engine_s'])}")
        print(f"wrote {self.run_dir / 'profile.csv'} and profile.json")


def run_profile(cfg: ProfileConfig, *, clock: Clock = time.perf_counter) -> dict[str, Any]:
    """Profile every method and metric of ``cfg``; write profile.csv and profile.json; return the result."""
    prof = _Profile(cfg, clock)
    prof.methods()
    prof.metrics()
    if cfg.e2e:
        prof.end_to_end()
    result = {
        "config": asdict(cfg), "environment": _environment(prof.device), "run_dir": str(prof.run_dir),
        "rows": [asdict(r) for r in prof.rows], "e2e": prof.e2e,
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
    }
    write_outputs(prof.run_dir, prof.rows, result)
    prof.show()
    return result


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
        from bench.core.errors import USER_ERRORS

        if isinstance(exc, USER_ERRORS):
            raise
        return ProfileRow(kind=kind, name=name, batch_size=bs, dtype=dtype, device=str(device),
                          status="error", note=f"{type(exc).__name__}: {exc}")


def write_outputs(run_dir: Path, rows: Sequence[ProfileRow], result: dict[str, Any]) -> None:
    """profile.csv (one row per configuration) and profile.json (config, environment, rows), atomically."""
    from bench.core.atomic import atomic_write_json, atomic_write_text
    from bench.core.csvsafe import csv_text

    cells = []
    for r in rows:
        d = asdict(r)
        cells.append({k: (f"{d[k]:.6g}" if isinstance(d[k], float) else d[k]) for k in COLUMNS})
    atomic_write_text(run_dir / "profile.csv", csv_text(COLUMNS, cells, lineterminator="\n"))
    atomic_write_json(run_dir / "profile.json", result)  # NaN (not measured) is written as null


def format_table(rows: Sequence[ProfileRow]) -> str:
    """A fixed-width text table of the main columns."""
    head = ["kind", "name", "bs", "dtype", "img/s", "p50 ms", "p95 ms", "peak MB", "data", "busy", "status"]
    lines = []
    for r in rows:
        def f(x: float, spec: str) -> str:
            return "-" if x != x else format(x, spec)  # NaN -> "-"
        lines.append([
            r.kind, r.name[:28] + (" [stand-in]" if r.standin else "") + ("*" if not r.standard else ""),
            str(r.batch_size), r.dtype + ("+c" if r.compile else ""), f(r.images_per_s, ".3g"),
            f(r.latency_p50_ms, ".1f"), f(r.latency_p95_ms, ".1f"), f(r.peak_mem_mb, ".0f"),
            f(r.data_wait_share, ".0%"), f(r.device_busy_share, ".0%"), r.status if not r.note else f"{r.status}*",
        ])
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(head)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in lines]
    notes = [f"* {r.kind} {r.name} bs {r.batch_size} {r.dtype}: {r.note}" for r in rows if r.note]
    return "\n".join(out + notes)
