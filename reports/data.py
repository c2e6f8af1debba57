"""Load a run folder (summary.csv, gains.csv, per_image.parquet, profile.csv, manifest.json) for the report.

Only ``summary.csv`` is required; the other files are optional and the report says which are absent.
Columns are checked and booleans parsed here, so the rest of the report can trust the frames.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.core.csvsafe import restore_frame
from bench.core.errors import UserError

SUMMARY_COLUMNS = (
    "dataset", "method", "method_name", "config_hash", "metric", "protocol", "value", "n",
    "higher_better", "standard", "standin", "status", "reason",
)
GAINS_COLUMNS = (
    "dataset", "base_method", "cond_method", "metric", "protocol", "higher_better",
    "delta_mean", "ci_low", "ci_high", "n",
)
PER_IMAGE_COLUMNS = ("dataset", "method", "config_hash", "image", "lq_path", "gt_path", "out_path", "status", "error")
PROFILE_COLUMNS = (
    "method", "metric", "device", "dtype", "batch_size", "images_per_s", "latency_p50_ms",
    "latency_p95_ms", "peak_mem_mb", "data_share", "busy_share",
)

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


@dataclass
class RunData:
    """Everything a report shows, read from one run folder."""

    run_dir: Path
    summary: pd.DataFrame
    manifest: dict[str, Any]
    per_image: pd.DataFrame | None = None
    gains: pd.DataFrame | None = None
    profile: pd.DataFrame | None = None
    #: files the runner may write that this run folder lacks (shown in the report)
    missing: list[str] = field(default_factory=list)
    #: comparison.csv (``bfrbench compare``): paper value, ours, diff, within tolerance
    comparison: pd.DataFrame | None = None

    @property
    def metric_columns(self) -> list[str]:
        """Per-image metric columns in per_image.parquet (every column that is not bookkeeping)."""
        if self.per_image is None:
            return []
        return [c for c in self.per_image.columns if c not in PER_IMAGE_COLUMNS]


def _to_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if isinstance(value, (int, float)):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise UserError(f"{where}: {value!r} is not a boolean (expected True/False); re-run the benchmark to rewrite it")


def _check_columns(df: pd.DataFrame, required: tuple[str, ...], path: Path) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise UserError(
            f"{path}: missing column(s) {', '.join(missing)}; the file was not written by this bfrbench "
            "version (re-run `bfrbench run` to rewrite it)"
        )


def _read_csv(path: Path, required: tuple[str, ...], bools: tuple[str, ...], text: tuple[str, ...]) -> pd.DataFrame:
    try:
        # keep_default_na=False for text columns: a method called "None" or "NA" stays a name
        df = pd.read_csv(path, dtype={c: str for c in text}, keep_default_na=False, na_values={})
    except pd.errors.EmptyDataError as exc:
        raise UserError(f"{path}: empty file; re-run the benchmark to rewrite it") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a readable CSV ({exc}); re-run the benchmark to rewrite it") from exc
    restore_frame(df, [c for c in text if c in df.columns])  # names bfrbench neutralised for spreadsheets
    _check_columns(df, required, path)
    for col in df.columns:
        if col in text or col in bools:
            continue
        df[col] = pd.to_numeric(df[col].replace("", float("nan")), errors="coerce")
    for col in bools:
        df[col] = [_to_bool(v, f"{path} column {col}") for v in df[col]]
    for col in text:
        if col in df.columns:
            df[col] = df[col].fillna("").astype(str)
    return df


def read_summary(path: Path) -> pd.DataFrame:
    """summary.csv with typed columns (value/n numeric, flags boolean, names text).

    The runner may add a ``kind`` column: rows of kind ``gain`` repeat gains.csv and are kept in
    ``df.attrs["gain_rows"]``, not among the scores.
    """
    df = _read_csv(
        path,
        SUMMARY_COLUMNS,
        bools=("higher_better", "standard", "standin"),
        text=("dataset", "method", "method_name", "config_hash", "metric", "protocol", "status", "reason", "kind"),
    )
    if "kind" in df.columns:
        gain = df["kind"] == "gain"
        suite = df["kind"] == "suite"  # a suite's score and gate (bench/suites): their own section
        gain_rows = df[gain].reset_index(drop=True)
        suite_rows = df[suite].reset_index(drop=True)
        df = df[~gain & ~suite].reset_index(drop=True)
        df.attrs["gain_rows"] = gain_rows
        df.attrs["suite_rows"] = suite_rows
    return df


def gains_from_summary(rows: pd.DataFrame) -> pd.DataFrame | None:
    """gains.csv's frame rebuilt from summary rows of kind gain (method "COND vs BASE")."""
    if rows is None or rows.empty or not {"ci_low", "ci_high"} <= set(rows.columns):
        return None
    split = rows["method"].str.split(" vs ", n=1, expand=True)
    if split.shape[1] != 2:
        return None
    return pd.DataFrame({
        "dataset": rows["dataset"], "base_method": split[1], "cond_method": split[0], "metric": rows["metric"],
        "protocol": rows["protocol"], "higher_better": rows["higher_better"], "delta_mean": rows["value"],
        "ci_low": rows["ci_low"], "ci_high": rows["ci_high"], "n": rows["n"],
        "standard": rows["standard"], "standin": rows["standin"], "note": rows.get("reason", ""),
    })


def read_gains(path: Path) -> pd.DataFrame:
    """gains.csv: paired per-image deltas (cond - base) with their 95% CI."""
    df = _read_csv(
        path, GAINS_COLUMNS, bools=("higher_better",),
        text=("dataset", "base_method", "cond_method", "metric", "protocol", "note", "standard", "standin"),
    )
    for col, default in (("standard", True), ("standin", False)):  # absent in gains.csv of older runs
        df[col] = [_to_bool(v, f"{path} column {col}") for v in df[col]] if col in df.columns else default
    if "note" not in df.columns:
        df["note"] = ""
    return df


#: `bfrbench profile`'s layout: kind (method|metric) and name instead of method/metric columns
PROFILER_COLUMNS = (
    "kind", "name", "batch_size", "dtype", "device", "images_per_s", "latency_p50_ms", "latency_p95_ms",
    "peak_mem_mb",
)


def read_profile(path: Path) -> pd.DataFrame:
    """profile.csv: throughput, latency and memory per method (or metric) configuration.

    Accepts the run layout (method, metric, ..., data_share, busy_share) and the layout
    `bfrbench profile` writes (kind, name, ..., data_wait_share, device_busy_share, status, note),
    normalised to the first plus optional compile/channels_last/status/note columns.
    """
    head = pd.read_csv(path, nrows=0).columns
    if "kind" in head and "name" in head and "method" not in head:
        df = _read_csv(path, PROFILER_COLUMNS, bools=(),
                       text=("kind", "name", "device", "dtype", "status", "note", "mem_kind", "compile", "channels_last"))
        df["method"] = df["name"].where(df["kind"] == "method", "")
        df["metric"] = df["name"].where(df["kind"] == "metric", "")
        df = df.rename(columns={"data_wait_share": "data_share", "device_busy_share": "busy_share"})
        for col in ("data_share", "busy_share"):
            if col not in df.columns:
                df[col] = float("nan")
        for col in ("compile", "channels_last"):
            if col in df.columns:
                df[col] = [_to_bool(v, f"{path} column {col}") for v in df[col]]
        return df
    return _read_csv(path, PROFILE_COLUMNS, bools=(), text=("method", "metric", "device", "dtype"))


def read_per_image(path: Path) -> pd.DataFrame:
    """per_image.parquet with metric columns as float (NaN where a metric was not computed)."""
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise UserError(f"{path}: not a readable parquet file ({exc}); re-run the benchmark to rewrite it") from exc
    _check_columns(df, PER_IMAGE_COLUMNS, path)
    for col in ("dataset", "method", "config_hash", "image", "status", "error"):
        df[col] = df[col].fillna("").astype(str)
    for col in df.columns:
        if col not in PER_IMAGE_COLUMNS:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    return df


def load_run(run_dir: str | Path) -> RunData:
    """Read a run folder; raises UserError naming the file and the fix when it cannot be used."""
    root = Path(run_dir)
    if not root.is_dir():
        raise UserError(f"{root}: no such run folder; pass the folder `bfrbench run` wrote (it holds summary.csv)")
    summary_path = root / "summary.csv"
    if not summary_path.is_file():
        raise UserError(f"{summary_path}: missing; this is not a finished run folder (run `bfrbench run` first)")
    missing: list[str] = []
    summary = read_summary(summary_path)

    manifest: dict[str, Any] = {}
    manifest_path = root / "manifest.json"
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{manifest_path}: not valid JSON ({exc}); re-run the benchmark to rewrite it") from exc
        if not isinstance(manifest, dict):
            raise UserError(f"{manifest_path}: expected a JSON object; re-run the benchmark to rewrite it")
    else:
        missing.append("manifest.json")

    def optional(name: str, reader):
        path = root / name
        if path.is_file():
            return reader(path)
        missing.append(name)
        return None

    per_image = optional("per_image.parquet", read_per_image)
    gains = optional("gains.csv", read_gains)
    if gains is None:
        gains = gains_from_summary(summary.attrs.get("gain_rows"))
        if gains is not None:
            missing.remove("gains.csv")
    profile = optional("profile.csv", read_profile)
    comparison = None
    if (root / "comparison.csv").is_file():  # written by `bfrbench compare`; optional, never "missing"
        comparison = pd.read_csv(root / "comparison.csv")
    return RunData(root, summary, manifest, per_image, gains, profile, missing, comparison)
