"""bfrbench: benchmark and evaluation suite for blind face restoration.

Python API, in the style of pyiqa and timm::

    import bench
    psnr = bench.create_metric("psnr")
    method = bench.create_method("lq")
    bench.list_metrics(), bench.list_methods(), bench.list_datasets()
"""
from __future__ import annotations

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


def list_metrics() -> list[str]:
    return _registries()[0].names()


def list_methods() -> list[str]:
    return _registries()[1].names()


def list_datasets() -> list[str]:
    return _registries()[2].names()


__all__ = ["create_metric", "create_method", "create_dataset", "list_metrics", "list_methods", "list_datasets"]
