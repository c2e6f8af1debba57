"""The run folder's layout, schema version and column lists: each defined here once.

Every other module names a run-folder file through these constants; the readers and writers
beside this module (:mod:`bench.engine.run_folder`) are the only code that opens them.
"""
from __future__ import annotations

#: bump when a file's layout or meaning changes (written into manifest.json and results.json)
SCHEMA_VERSION = 2
#: what results.json calls itself (tools reading it check this and the version)
RESULTS_SCHEMA = "bfrbench-results"

MANIFEST = "manifest.json"
RESULTS = "results.json"
SUMMARY = "summary.csv"
GAINS = "gains.csv"
PER_IMAGE = "per_image.parquet"
#: a suite's values, score and gate (``bfrbench run --suite``): written once, after the run
SUITE = "suite.json"
#: ``bfrbench compare``'s rows: a paper's value beside the run's
COMPARISON = "comparison.csv"
PROFILE = "profile.csv"
INDEX = "index.html"
UNITS = "units"
IMAGES = "images"
#: what a method that runs on whole folders wrote (``ntire:PATH``): METHOD_OUTPUTS/<method>/<dataset>/output
METHOD_OUTPUTS = "method_outputs"
LOCK = ".bfrbench.lock"
#: files derived from an earlier run's results: a new run removes them (they would describe other numbers)
DERIVED = (SUITE, COMPARISON, GAINS)

#: summary.csv: one row per (dataset, method, metric) score; a skipped method has one row with metric "*"
SUMMARY_COLUMNS = (
    "dataset", "method", "method_name", "config_hash", "metric", "protocol", "value", "n", "n_inf",
    "higher_better", "standard", "standin", "status", "reason",
)
SUMMARY_TEXT = ("dataset", "method", "method_name", "config_hash", "metric", "protocol", "status", "reason")
SUMMARY_BOOLS = ("higher_better", "standard", "standin")

#: gains.csv: a method against its quality-conditioned variant (paired per-image deltas, 95% CI)
GAINS_COLUMNS = (
    "dataset", "base_method", "cond_method", "metric", "protocol", "higher_better",
    "delta_mean", "ci_low", "ci_high", "n", "standard", "standin", "note",
)
GAINS_TEXT = ("dataset", "base_method", "cond_method", "metric", "protocol", "note")
GAINS_BOOLS = ("higher_better", "standard", "standin")

#: per_image.parquet's bookkeeping columns; every other column is one metric's per-image value (float).
#: ``conversions``: what was done to the image's files before scoring ("; "-joined, e.g. an ``outputs:``
#: file's "output: wrong size 256x256, resized to 512x512 (bilinear)"); absent in older folders
PER_IMAGE_COLUMNS = (
    "dataset", "method", "config_hash", "image", "lq_path", "gt_path", "out_path", "status", "error", "conversions",
)
PER_IMAGE_TEXT = ("dataset", "method", "config_hash", "image", "status", "error", "conversions")
#: per_image columns a folder written before they existed lacks (read back as "")
PER_IMAGE_ADDED = ("conversions",)

#: profile.csv as a run folder's report reads it
PROFILE_COLUMNS = (
    "method", "metric", "device", "dtype", "batch_size", "images_per_s", "latency_p50_ms",
    "latency_p95_ms", "peak_mem_mb", "data_share", "busy_share",
)
#: `bfrbench profile`'s layout: kind (method|metric) and name instead of method/metric columns
PROFILER_COLUMNS = (
    "kind", "name", "batch_size", "dtype", "device", "images_per_s", "latency_p50_ms", "latency_p95_ms",
    "peak_mem_mb",
)


def shard_file_name(first_index: int) -> str:
    """A finished batch's file, named by its first image's index in the dataset (not by rank or order)."""
    return f"shard_{first_index:07d}.pt"


def shard_order(name: str) -> tuple[int, str]:
    """Sort key of shard file names: by first image index (a foreign name sorts last)."""
    try:
        return int(name.split("_")[1].split(".")[0]), name
    except (IndexError, ValueError):
        return 1 << 62, name


def unit_folder_name(dataset: str, label: str, chash: str) -> str:
    """``units/<dataset>__<label>__<hash>``: the hash names the unit; the prefix is for people."""
    from bench.core.names import safe_text

    return f"{safe_text(dataset)}__{safe_text(label)}__{chash}"
