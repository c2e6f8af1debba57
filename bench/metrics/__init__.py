"""Metrics. Each submodule registers its metrics in :data:`bench.core.registry.METRICS`."""
from bench.metrics.base import MeanOfImages, Metric, MetricUnavailable

__all__ = ["Metric", "MeanOfImages", "MetricUnavailable"]
