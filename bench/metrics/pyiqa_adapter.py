"""``pyiqa:NAME``: any pyiqa metric by name, batched, on the metric's device.

pyiqa is optional (``pip install bfrbench[iqa]``) and slow to import, so nothing here imports it
at module level. Metadata (direction, NR/FR) comes from pyiqa's ``default_model_configs.py``,
read on its own without importing the package; the network is built on construction. pyiqa
downloads each metric's weights on first use (GitHub / Hugging Face): without that access
the metric raises :class:`MetricUnavailable` and the runner skips it with the reason.

Numbers carry the pyiqa version in their protocol label (``pyiqa-0.1.16:musiq``): pyiqa has
changed values between versions (NIQE notably), so a number without it is not comparable.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
from functools import lru_cache
from typing import Any

import torch

from bench.core.registry import METRICS, Entry, UnknownNameError
from bench.metrics.base import MeanOfImages, MetricUnavailable

#: the NR-IQA set reported for real-world BFR test sets (pyiqa names)
DEFAULT_NRIQA: tuple[str, ...] = ("musiq", "maniqa", "clipiqa", "topiq_nr-face", "niqe")

WEIGHTS_FIX = (
    "pyiqa downloads each metric's weights on first use (GitHub / Hugging Face): run it once where "
    "those are reachable, or copy pyiqa's cache (~/.cache/torch/hub/pyiqa) to this machine"
)
FIX = f"install it with `pip install bfrbench[iqa]` (or `pip install pyiqa`); {WEIGHTS_FIX}"


def pyiqa_version() -> str | None:
    """The installed pyiqa version, or None (without importing it)."""
    try:
        return importlib.metadata.version("pyiqa")
    except importlib.metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def pyiqa_configs() -> dict[str, dict[str, Any]] | None:
    """pyiqa's DEFAULT_CONFIGS, read from its file without importing pyiqa (None if absent)."""
    spec = importlib.util.find_spec("pyiqa")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = f"{folder}/default_model_configs.py"
        sub = importlib.util.spec_from_file_location("_bfrbench_pyiqa_configs", path)
        if sub is None or sub.loader is None:
            continue
        module = importlib.util.module_from_spec(sub)
        try:
            sub.loader.exec_module(module)
        except (OSError, ImportError, SyntaxError):
            continue
        configs = getattr(module, "DEFAULT_CONFIGS", None)
        if isinstance(configs, dict):
            return dict(configs)
    return None


def protocol_label(name: str, version: str | None = None) -> str:
    """``pyiqa-<version>:<name>`` (``pyiqa-?`` when pyiqa is not installed)."""
    return f"pyiqa-{version or pyiqa_version() or '?'}:{name}"


def _lookup(name: str) -> dict[str, Any]:
    configs = pyiqa_configs()
    if configs is None:
        raise MetricUnavailable(f"pyiqa:{name} needs pyiqa, which is not installed: {FIX}")
    if name not in configs:
        import difflib

        close = difflib.get_close_matches(name, list(configs), n=4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise MetricUnavailable(f"pyiqa has no metric {name!r}.{hint} See pyiqa.list_models().")
    return configs[name]


class PyiqaMetric(MeanOfImages):
    """One pyiqa metric (NR or FR), batched; per-image values, mean over the set."""

    standard = True

    def __init__(self, metric_name: str, device: str | torch.device | None = None, **options: Any) -> None:
        super().__init__()
        cfg = _lookup(metric_name)
        self.metric_name = metric_name
        self.name = f"pyiqa:{metric_name}"
        self.higher_better = not cfg.get("lower_better", False)
        self.needs_gt = cfg.get("metric_mode") == "FR"
        self.protocol = protocol_label(metric_name)
        self._device = torch.device(device) if device is not None else torch.device("cpu")
        try:
            import pyiqa
        except ImportError as exc:  # installed but broken (a missing dependency of pyiqa)
            raise MetricUnavailable(f"pyiqa:{metric_name}: importing pyiqa failed ({exc}); {FIX}") from exc
        try:
            net = pyiqa.create_metric(metric_name, as_loss=False, device=self._device, **options)
        except Exception as exc:  # weight download failures surface as URLError, OSError, HTTPError, ...
            raise MetricUnavailable(
                f"pyiqa:{metric_name} could not be built ({type(exc).__name__}: {exc}); {WEIGHTS_FIX}"
            ) from exc
        self.higher_better = not bool(getattr(net, "lower_better", not self.higher_better))
        self.net = net

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> PyiqaMetric:
        out = super()._apply(fn, *args, **kwargs)
        if hasattr(self, "net"):
            self.net.device = self._device  # pyiqa also keeps a device attribute
        return out  # type: ignore[return-value]

    def score(self, pred: torch.Tensor, gt: torch.Tensor | None) -> torch.Tensor:
        with torch.no_grad():
            out = self.net(pred, gt) if self.needs_gt else self.net(pred)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return torch.as_tensor(out).reshape(-1).to(torch.float64)

    def info(self) -> dict[str, Any]:
        out = super().info()
        out.update(name=self.name, higher_better=self.higher_better, needs_gt=self.needs_gt,
                   protocol=self.protocol, pyiqa_version=pyiqa_version())
        return out


def _available(name: str) -> tuple[bool, str]:
    try:
        _lookup(name)
    except MetricUnavailable as exc:
        return False, str(exc)
    return True, "pyiqa is installed; its weights are downloaded on first use"


#: directions of the default set, used when pyiqa is not installed (metadata only)
_KNOWN_LOWER_BETTER = {"musiq": False, "maniqa": False, "clipiqa": False, "topiq_nr-face": False, "niqe": True,
                       "brisque": True, "piqe": True, "niqe_matlab": True, "brisque_matlab": True}


def resolve(rest: str) -> Entry[Any]:
    """Registry resolver for ``pyiqa:NAME``; never imports pyiqa (construction does)."""
    name = rest.strip()
    if not name:
        raise MetricUnavailable(f"empty pyiqa metric name; use pyiqa:NAME, e.g. pyiqa:{DEFAULT_NRIQA[0]}")
    configs = pyiqa_configs()
    if configs is not None and name not in configs:
        import difflib

        close = difflib.get_close_matches(name, list(configs), n=4)
        hint = f" Did you mean {', '.join('pyiqa:' + c for c in close)}?" if close else ""
        raise UnknownNameError(f"unknown metric 'pyiqa:{name}': pyiqa {pyiqa_version()} has no {name!r}.{hint}")
    cfg = (configs or {}).get(name, {})
    lower = cfg.get("lower_better", _KNOWN_LOWER_BETTER.get(name, False))
    meta = dict(
        higher_better=not lower,
        needs_gt=cfg.get("metric_mode") == "FR",
        protocol=protocol_label(name),
        standard=True,
        weights=[],
        description=f"pyiqa metric {name!r} ({cfg.get('metric_mode', 'NR?')}), pyiqa's default settings",
        available=lambda: _available(name),
    )

    def factory(**kwargs: Any) -> PyiqaMetric:
        return PyiqaMetric(name, **kwargs)

    return Entry(name=f"pyiqa:{name}", factory=factory, meta=meta)


METRICS.add_resolver("pyiqa", resolve)

__all__ = ["DEFAULT_NRIQA", "PyiqaMetric", "pyiqa_version", "pyiqa_configs", "protocol_label", "resolve", "FIX",
           "WEIGHTS_FIX"]
