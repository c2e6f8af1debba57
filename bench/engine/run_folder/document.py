"""results.json: the run's numbers for other tools, schema-versioned.

``results[dataset][method][metric]`` holds value, n, n_inf, protocol, higher_better, standard,
standin, status and reason; ``datasets[name]`` holds n, has_gt, ``dataset_fingerprint``
(null for runs made before the data were fingerprinted) and ``published_fingerprint`` (matches,
differs, unknown or subset: how it compares with the set's published fingerprint; ``published_note`` says
it in words); ``run`` holds the run's metadata. A non-finite value is
null (its ``status`` and ``n_inf`` say why).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from bench.engine.run_folder.layout import RESULTS_SCHEMA, SCHEMA_VERSION

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: the run metadata results.json repeats from manifest.json
RUN_KEYS = ("bfrbench_version", "created", "git_commit", "device", "torch", "python", "platform", "config",
            "seeds", "distributed")
#: per (dataset, method, metric): the fields results.json carries, from summary.csv
ENTRY_KEYS = ("value", "n", "n_inf", "protocol", "higher_better", "standard", "standin", "status", "reason",
              "method_name", "config_hash")


def _plain(value: Any) -> Any:
    """numpy scalars as Python values; NaN stays NaN (the JSON writer makes it null)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return math.nan
    return value


def results_document(summary: pd.DataFrame, manifest: dict[str, Any]) -> dict[str, Any]:
    """results.json's content from a run's summary and manifest."""
    results: dict[str, dict[str, dict[str, Any]]] = {}
    skipped_methods: list[dict[str, Any]] = []
    for row in summary.to_dict("records"):
        if row["metric"] == "*":  # a method that did not run on this dataset
            skipped_methods.append({k: _plain(row[k]) for k in ("dataset", "method", "status", "reason")})
            continue
        entry = {k: _plain(row[k]) for k in ENTRY_KEYS if k in row}
        results.setdefault(row["dataset"], {}).setdefault(row["method"], {})[row["metric"]] = entry
    datasets = {
        name: {"n": info.get("n"), "has_gt": info.get("has_gt"),
               "dataset_fingerprint": info.get("dataset_fingerprint"),
               "published_fingerprint": info.get("published_fingerprint"),
               "published_note": info.get("published_note")}
        for name, info in (manifest.get("datasets") or {}).items()
    }
    return {
        "schema": RESULTS_SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "run": {k: manifest.get(k) for k in RUN_KEYS},
        "datasets": datasets,
        "results": results,
        "methods_not_run": skipped_methods,
    }
