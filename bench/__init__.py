"""bfrbench: benchmark and evaluation suite for blind face restoration.

Python API, in the style of pyiqa and timm::

    import bench
    niqe = bench.create_metric("niqe")
    niqe("face.png")                       # a path, PIL image, numpy HxWx3 uint8 or (B)CHW tensor
    bench.list_metrics("ids*", mode="NR"), bench.list_methods(), bench.list_datasets()
    outcome = bench.run(datasets=["demo"], methods=["lq"])
"""
from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Any

__version__ = "0.1.0"


def _registries():
    from bench.core import plugins
    from bench.core.registry import DATASETS, METHODS, METRICS

    plugins.load_all()
    return METRICS, METHODS, DATASETS


def create_metric(name: str, device: str | None = None, **kwargs: Any):
    """Build a registered metric by name (``"psnr"``, ``"fid"``, ``"pyiqa:musiq"``...)."""
    metrics, _, _ = _registries()
    metric = metrics.create(name, **kwargs)
    metric.check_inputs = True  # float (B, 3, H, W) in [0, 1], or a clear error (bench.core.inputs)
    return metric.to(device) if device else metric


def create_method(name: str, device: str | None = None, **kwargs: Any):
    """Build a registered restoration method by name (``"lq"``, ``"codeformer"``...)."""
    _, methods, _ = _registries()
    method = methods.create(name, **kwargs)
    method = method.eval()
    method.check_inputs = True  # float (B, 3, H, W) in [0, 1], or a clear error (bench.core.inputs)
    return method.to(device) if device else method


def create_dataset(name: str, **kwargs: Any):
    """Resolve a benchmark by name (``"celeba-test"``, ``"demo"``, ``"folder:PATH"``)."""
    _, _, datasets = _registries()
    return datasets.create(name, **kwargs)


#: ``mode`` of :func:`list_metrics`: pyiqa's ``metric_mode`` (FR, NR) and set-level metrics (FID)
METRIC_MODES = ("FR", "NR", "set")


def _filtered(names: Iterable[str], filter: str | Iterable[str], exclude_filters: str | Iterable[str]) -> list[str]:
    """timm's ``list_models`` filtering: shell wildcards (``"ids*"``), case-insensitive; several patterns OR."""
    def patterns(p: str | Iterable[str]) -> list[str]:
        return [p] if isinstance(p, str) else list(p)

    keep = [p.lower() for p in patterns(filter) if p]
    drop = [p.lower() for p in patterns(exclude_filters) if p]
    return [n for n in names
            if (not keep or any(fnmatch.fnmatchcase(n.lower(), p) for p in keep))
            and not any(fnmatch.fnmatchcase(n.lower(), p) for p in drop)]


def list_metrics(filter: str | Iterable[str] = "", mode: str | None = None,
                 exclude_filters: str | Iterable[str] = "") -> list[str]:
    """Registered metric names matching ``filter`` (wildcards), of ``mode`` "FR" (needs GT), "NR" or "set" (FID)."""
    from bench.core.errors import UserError

    metrics = _registries()[0]
    if mode is not None and mode.upper() not in {m.upper() for m in METRIC_MODES}:
        raise UserError(f"list_metrics: unknown mode {mode!r}; one of {', '.join(METRIC_MODES)}")
    names = _filtered(metrics.names(), filter, exclude_filters)
    if mode is None:
        return names

    def mode_of(name: str) -> str:
        meta = metrics.entry(name).meta
        cls = meta.get("cls")
        if cls is not None and not getattr(cls, "per_image", True):
            return "SET"
        return "FR" if meta.get("needs_gt") else "NR"

    return [n for n in names if mode_of(n) == mode.upper()]


def list_methods(filter: str | Iterable[str] = "", family: str | None = None,
                 exclude_filters: str | Iterable[str] = "") -> list[str]:
    """Registered method names matching ``filter`` (wildcards), of ``family`` when given (``"codeformer"``)."""
    methods = _registries()[1]
    names = _filtered(methods.names(), filter, exclude_filters)
    if family is None:
        return names
    return [n for n in names if str(methods.entry(n).meta.get("family", "")).lower() == family.lower()]


def list_datasets(filter: str | Iterable[str] = "", exclude_filters: str | Iterable[str] = "") -> list[str]:
    """Registered dataset names matching ``filter`` (wildcards)."""
    return _filtered(_registries()[2].names(), filter, exclude_filters)


def load_image(path: Any):
    """An image file as a (1, 3, H, W) float tensor in [0, 1], decoded as a run decodes it."""
    from bench.core.inputs import load_image as _load

    return _load(path)


def run(config: Any = None, **kwargs: Any):
    """Run a benchmark: ``bench.run(datasets=["demo"], methods=["lq"], metrics=["psnr"])`` -> RunOutcome.

    Takes a :class:`bench.config.RunConfig` or its fields as keywords (an unknown one is a one-line
    error with a did-you-mean); ``outcome.summary`` and ``outcome.per_image`` are pandas DataFrames.
    """
    import dataclasses

    from bench.config import RunConfig
    from bench.core.registry import check_keywords
    from bench.engine.runner import run as _run

    check_keywords("bench.run", kwargs, [f.name for f in dataclasses.fields(RunConfig)],
                   "the fields of bench.config.RunConfig are its options")
    if config is not None and kwargs:
        config = dataclasses.replace(config, **kwargs)
        kwargs = {}
    return _run(config, **kwargs)


__all__ = ["create_metric", "create_method", "create_dataset", "list_metrics", "list_methods", "list_datasets",
           "load_image", "run"]
