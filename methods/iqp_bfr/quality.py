"""The IQP quality prior: NR-IQA metrics turned into one score in [0, 1].

Each metric is min-max normalised over a reference set (the paper uses FFHQ-70k),
inverted when lower is better (NIQE, BRISQUE, PIQE ...), clipped to [0, 1] and the
metrics are averaged. The score tells the network how good a training target is
(stage 1 HQ-codebook gate, stage 2 quality condition); at test time the network is
asked for a high score.

Statistics are saved as JSON so scores of training and test images share one scale::

    scorer = QualityScorer(["niqe", "brisque"]).fit(reference_batches)
    scorer.save_stats("stats.json")
    QualityScorer(["niqe", "brisque"], "stats.json").score(batch)  # (B,) in [0, 1]
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.core.atomic import atomic_write_json
from bench.core.inputs import as_batch

STATS_VERSION = 1


@dataclass
class MetricStats:
    """Normalisation range of one metric over the reference set."""

    name: str
    higher_better: bool
    min: float
    max: float
    n: int

    def normalise(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw values -> [0, 1], 1 = best quality of the reference set."""
        span = self.max - self.min
        if not math.isfinite(span) or span <= 0:
            # a constant reference set carries no ranking: every image sits mid-scale
            unit = torch.full_like(raw, 0.5, dtype=torch.float64)
        else:
            unit = ((raw.to(torch.float64) - self.min) / span).clamp(0.0, 1.0)
        return unit if self.higher_better else 1.0 - unit


def _metric_name(metric: Any) -> str:
    return metric if isinstance(metric, str) else (getattr(metric, "name", "") or type(metric).__name__)


def _build_metric(spec: Any, device: str | torch.device | None) -> Any:
    """A metric instance from a registry name (``niqe``, ``pyiqa:musiq`` ...) or an instance."""
    if not isinstance(spec, str):
        return spec.to(device) if device is not None else spec
    from bench.core import plugins
    from bench.core.registry import METRICS

    plugins.load_all()
    metric = METRICS.create(spec)
    metric.check_inputs = True  # float (B, 3, H, W) in [0, 1], or a clear error (bench.core.inputs)
    if device is not None:
        metric = metric.to(str(device))
    if not getattr(metric, "per_image", True):
        raise ValueError(f"metric {spec!r} gives one value per set, not per image; it cannot score images")
    if getattr(metric, "needs_gt", False):
        raise ValueError(f"metric {spec!r} needs ground truth; the quality prior takes no-reference metrics only")
    return metric


class QualityScorer:
    """One or more NR-IQA metrics -> a [0, 1] quality score per image."""

    def __init__(
        self,
        iqa_names: Sequence[Any],
        reference_stats: str | os.PathLike[str] | dict | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        if isinstance(iqa_names, str):
            iqa_names = [iqa_names]
        if not iqa_names:
            raise ValueError("QualityScorer needs at least one NR-IQA metric name")
        self.device = device
        self.metrics = [_build_metric(spec, device) for spec in iqa_names]
        self.names = [s if isinstance(s, str) else _metric_name(m) for s, m in zip(iqa_names, self.metrics)]
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"duplicate metric names: {self.names}")
        self.stats: dict[str, MetricStats] | None = None
        if reference_stats is not None:
            self.load_stats(reference_stats)

    # -- raw metric values --------------------------------------------------------
    def higher_better(self, name: str) -> bool:
        return bool(getattr(self.metrics[self.names.index(name)], "higher_better", True))

    @torch.no_grad()
    def raw(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw per-image values of every metric for a batch (B, 3, H, W) in [0, 1], as float64 (B,)."""
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ValueError(f"expected a batch (B, 3, H, W), got shape {tuple(batch.shape)}")
        # metrics see what a saved PNG would hold (design.md: uint8 levels)
        x = (batch.detach().float().clamp(0, 1) * 255.0).round() / 255.0
        out: dict[str, torch.Tensor] = {}
        for name, metric in zip(self.names, self.metrics):
            dev = getattr(metric, "device", None)
            values = metric.update(x.to(dev) if dev is not None else x)
            if values is None:
                raise ValueError(f"metric {name!r} returned no per-image values")
            if hasattr(metric, "reset"):
                metric.reset()  # the scorer keeps no running state
            out[name] = values.detach().to("cpu", torch.float64).reshape(-1)
        return out

    # -- normalisation --------------------------------------------------------------
    def fit_raw(self, raw: dict[str, Sequence[float] | torch.Tensor | np.ndarray]) -> QualityScorer:
        """Set the normalisation ranges from raw reference values {metric: values}."""
        stats: dict[str, MetricStats] = {}
        for name in self.names:
            if name not in raw:
                raise KeyError(f"reference values for metric {name!r} are missing")
            values = torch.as_tensor(np.asarray(raw[name], dtype=np.float64))
            finite = values[torch.isfinite(values)]
            if finite.numel() == 0:
                raise ValueError(f"metric {name!r} gave no finite value on the reference set")
            stats[name] = MetricStats(
                name=name,
                higher_better=self.higher_better(name),
                min=float(finite.min()),
                max=float(finite.max()),
                n=int(finite.numel()),
            )
        self.stats = stats
        return self

    def fit(self, reference_images: Iterable[Any]) -> QualityScorer:
        """Fit min-max ranges on reference images: batches (B,3,H,W), HxWx3 uint8 arrays or paths."""
        collected: dict[str, list[torch.Tensor]] = {n: [] for n in self.names}
        for batch in iter_batches(reference_images):
            for name, values in self.raw(batch).items():
                collected[name].append(values)
        if not collected[self.names[0]]:
            raise ValueError("the reference set is empty: give at least one image to fit the quality scores")
        return self.fit_raw({n: torch.cat(v) for n, v in collected.items()})

    def normalise(self, raw: dict[str, torch.Tensor]) -> torch.Tensor:
        """Raw values -> mean of per-metric normalised scores, float32 (B,) in [0, 1]."""
        if self.stats is None:
            raise RuntimeError("QualityScorer has no reference statistics: call fit(...) or pass reference_stats")
        parts = [self.stats[name].normalise(torch.as_tensor(raw[name])) for name in self.names]
        return torch.stack(parts).mean(0).float()

    def score(self, batch: torch.Tensor) -> torch.Tensor:
        """Quality score (B,) in [0, 1] of a batch (B, 3, H, W) in [0, 1]."""
        return self.normalise(self.raw(batch))

    # -- persistence -------------------------------------------------------------
    def stats_dict(self) -> dict[str, Any]:
        if self.stats is None:
            raise RuntimeError("QualityScorer has no reference statistics to save: call fit(...) first")
        return {"version": STATS_VERSION, "metrics": [asdict(self.stats[n]) for n in self.names]}

    def save_stats(self, path: str | os.PathLike[str]) -> None:
        """Write the normalisation ranges as JSON (atomically)."""
        atomic_write_json(path, self.stats_dict())

    def load_stats(self, source: str | os.PathLike[str] | dict) -> QualityScorer:
        """Read ranges from a stats JSON (or its dict); every metric of the scorer must be in it."""
        where = "the statistics given"
        if not isinstance(source, dict):
            where = str(source)
            try:
                source = json.loads(Path(source).read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ValueError(
                    f"{where}: cannot read quality statistics ({exc}); regenerate them with "
                    "`bfrbench score-dataset DIR --iqa ... --out scores.csv` (writes scores.stats.json)"
                ) from exc
        entries = {m["name"]: m for m in source.get("metrics", [])}
        stats: dict[str, MetricStats] = {}
        for name in self.names:
            if name not in entries:
                raise ValueError(
                    f"{where}: no statistics for metric {name!r} (has {sorted(entries)}); "
                    "fit the scorer with the same metrics"
                )
            e = entries[name]
            hb = self.higher_better(name)
            if bool(e["higher_better"]) != hb:
                raise ValueError(f"{where}: metric {name!r} direction differs from the metric's own ({hb})")
            stats[name] = MetricStats(name=name, higher_better=hb, min=float(e["min"]), max=float(e["max"]), n=int(e["n"]))
        self.stats = stats
        return self


def iter_batches(images: Iterable[Any] | str | os.PathLike[str]) -> Iterator[torch.Tensor]:
    """Yield (B, 3, H, W) float batches in [0, 1] from batches, uint8 arrays, paths or a folder."""
    from bench.core.imageio import list_images

    if isinstance(images, (str, os.PathLike)):
        images = list_images(images)
    for item in images:
        yield as_batch(item)


def score_bin(score: torch.Tensor, num_bins: int = 10) -> torch.Tensor:
    """IQP's binning of a [0, 1] score: ``floor(num_bins * s)``, the top value kept in the last bin."""
    return (score.float().clamp(0, 1) * num_bins).floor().long().clamp(0, num_bins - 1)
