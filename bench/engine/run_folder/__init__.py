"""The run folder: one owner for its layout, schema version, files, their writers and readers.

Layout (schema version :data:`SCHEMA_VERSION`; names in :mod:`.layout`)::

    manifest.json      how the run was made: config, environment, datasets, methods, metrics, skips
    results.json       the numbers for other tools: results[dataset][method][metric] (see .document)
    summary.csv        one row per (dataset, method, metric): SUMMARY_COLUMNS
    gains.csv          conditioned vs base method, paired deltas with a 95% CI: GAINS_COLUMNS
    per_image.parquet  one row per (dataset, method, image): PER_IMAGE_COLUMNS + one column per metric
    suite.json         a suite's values, score and gate (``run --suite``)
    comparison.csv     ``bfrbench compare``'s rows
    units/<dataset>__<method>__<hash>/  unit.json, shard_NNNNNNN.pt (one per finished batch), done.json
    images/<dataset>/<method>/<image>.png  (``--save-images``)
    index.html         the report

Paths inside are relative to their roots, so a run folder can be moved: ``out_path`` to the run
folder, ``lq_path`` / ``gt_path`` to the dataset's ``lq_dir`` / ``gt_dir`` in manifest.json.
:meth:`RunFolder.per_image` gives them back as absolute paths.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.core.atomic import atomic_write_json
from bench.core.errors import UserError
from bench.engine.run_folder import layout, shards, tables
from bench.engine.run_folder.document import results_document
from bench.engine.run_folder.layout import (
    GAINS_COLUMNS,
    PER_IMAGE_COLUMNS,
    SCHEMA_VERSION,
    SUMMARY_COLUMNS,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


class RunFolder:
    """A run folder on disk: ``RunFolder(path).summary()``, ``.per_image()``, ``.results()`` ... and the writers."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    def unit_dir(self, dataset: str, label: str, chash: str) -> Path:
        return self.path / layout.UNITS / layout.unit_folder_name(dataset, label, chash)

    # -- readers ------------------------------------------------------------------
    def exists(self) -> bool:
        """A finished run folder: it holds summary.csv."""
        return self.file(layout.SUMMARY).is_file()

    def require(self) -> None:
        """One-line error naming the fix when this is not a finished run folder."""
        if not self.path.is_dir():
            raise UserError(f"{self.path}: no such run folder; pass the folder `bfrbench run` wrote (it holds summary.csv)")
        if not self.exists():
            raise UserError(f"{self.file(layout.SUMMARY)}: missing; this is not a finished run folder "
                            "(run `bfrbench run` first)")

    def manifest(self) -> dict[str, Any]:
        """manifest.json ({} when absent); a newer schema than this bfrbench's is refused."""
        return self._json(layout.MANIFEST) or {}

    def summary(self) -> pd.DataFrame:
        """summary.csv, typed; the score rows only (older folders mixed gain and suite rows in)."""
        self.require()
        path = self.file(layout.SUMMARY)
        required = [c for c in SUMMARY_COLUMNS if c != "n_inf"]  # n_inf: absent in the oldest folders
        df = tables.read_csv(path, required, bools=layout.SUMMARY_BOOLS, text=layout.SUMMARY_TEXT + ("kind",))
        if "kind" in df.columns:  # schema 1: gain and suite rows beside the scores
            df = df[df["kind"] == "score"].reset_index(drop=True)
        if "n_inf" not in df.columns:
            df["n_inf"] = 0
        return df[[*SUMMARY_COLUMNS]]

    def per_image(self, absolute_paths: bool = True) -> pd.DataFrame | None:
        """per_image.parquet, typed (None when absent); image paths made absolute unless ``absolute_paths`` is False."""
        path = self.file(layout.PER_IMAGE)
        if not path.is_file():
            return None
        df = tables.read_parquet(path, PER_IMAGE_COLUMNS, layout.PER_IMAGE_TEXT, layout.PER_IMAGE_ADDED)
        if absolute_paths:
            self._absolute(df)
        return df

    def gains(self) -> pd.DataFrame | None:
        """gains.csv, typed (None when the run had no conditioned pair)."""
        path = self.file(layout.GAINS)
        if not path.is_file():
            return None
        df = tables.read_csv(path, GAINS_COLUMNS[:10], bools=layout.GAINS_BOOLS, text=layout.GAINS_TEXT)
        for col, default in (("standard", True), ("standin", False), ("note", "")):  # absent in older runs
            if col not in df.columns:
                df[col] = default
        return df

    def results(self) -> dict[str, Any]:
        """results.json (built from summary.csv and manifest.json for folders written before it existed)."""
        doc = self._json(layout.RESULTS)
        return doc if doc is not None else results_document(self.summary(), self.manifest())

    def suite(self) -> dict[str, Any] | None:
        """suite.json: the suite, its rows (variables, score, gate per method) and results; None without a suite."""
        return self._json(layout.SUITE)

    def suite_rows(self) -> pd.DataFrame | None:
        """The suite's rows as a frame (summary-like: dataset is the suite, metric ``SUITE:VAR``)."""
        import pandas as pd

        suite = self.suite()
        if suite is None:
            return None
        if "rows" in suite:
            return pd.DataFrame(suite["rows"], columns=[*SUMMARY_COLUMNS])
        # schema 1: the rows were in summary.csv, of kind "suite"
        df = tables.read_csv(self.file(layout.SUMMARY), ("kind",), bools=layout.SUMMARY_BOOLS,
                             text=layout.SUMMARY_TEXT + ("kind",))
        return df[df["kind"] == "suite"].reset_index(drop=True)

    def profile(self) -> pd.DataFrame | None:
        """profile.csv, in the run layout (None when absent)."""
        path = self.file(layout.PROFILE)
        return _read_profile(path) if path.is_file() else None

    def comparison(self) -> pd.DataFrame | None:
        """comparison.csv (``bfrbench compare``), None when absent."""
        from bench.core.csvsafe import read_frame

        path = self.file(layout.COMPARISON)
        return read_frame(path) if path.is_file() else None

    def missing(self) -> list[str]:
        """The optional files a report shows that this folder lacks."""
        wanted = (layout.MANIFEST, layout.PER_IMAGE, layout.GAINS, layout.PROFILE)
        return [name for name in wanted if not self.file(name).is_file()]

    def _json(self, name: str) -> dict[str, Any] | None:
        path = self.file(name)
        if not path.is_file():
            return None
        try:
            doc = json.loads(tables.regular_file(path).getvalue().decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{path}: not valid JSON ({exc}); re-run the benchmark to rewrite it") from exc
        if not isinstance(doc, dict):
            raise UserError(f"{path}: expected a JSON object; re-run the benchmark to rewrite it")
        version = doc.get("schema_version", 1)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise UserError(f"{path}: schema version {version!r} is newer than this bfrbench reads "
                            f"({SCHEMA_VERSION}); update bfrbench")
        return doc

    def _absolute(self, df: pd.DataFrame) -> None:
        """lq_path / gt_path against the dataset folders in manifest.json, out_path against the run folder."""
        datasets = self.manifest().get("datasets") or {}
        for col, root_key in (("lq_path", "lq_dir"), ("gt_path", "gt_dir"), ("out_path", None)):
            df[col] = [_join(self.path if root_key is None else (datasets.get(ds) or {}).get(root_key), p)
                       for ds, p in zip(df["dataset"], df[col])]

    # -- writers ------------------------------------------------------------------
    def write_run(self, summary: pd.DataFrame, gains: pd.DataFrame, per_image: pd.DataFrame,
                  manifest: dict[str, Any]) -> None:
        """Every result file of a run, replacing what an earlier run left (summary.csv last: it marks a finished run)."""
        self.path.mkdir(parents=True, exist_ok=True)
        for name in layout.DERIVED:  # they describe an earlier run's numbers
            self.file(name).unlink(missing_ok=True)
        manifest = {**manifest, "schema_version": SCHEMA_VERSION}
        tables.write_parquet(relative_paths(per_image, manifest.get("datasets") or {}), self.file(layout.PER_IMAGE))
        if not gains.empty:
            tables.write_csv(gains[[*GAINS_COLUMNS]], self.file(layout.GAINS))
        atomic_write_json(self.file(layout.MANIFEST), manifest)
        atomic_write_json(self.file(layout.RESULTS), results_document(summary, manifest))
        tables.write_csv(summary[[*SUMMARY_COLUMNS]], self.file(layout.SUMMARY))

    def write_suite(self, document: dict[str, Any]) -> None:
        """suite.json: the suite's facts, rows and results, written once after the run."""
        atomic_write_json(self.file(layout.SUITE), {**document, "schema_version": SCHEMA_VERSION})

    def write_comparison(self, df: pd.DataFrame) -> Path:
        """comparison.csv (rows of earlier tables with another name are kept)."""
        import pandas as pd

        old = self.comparison()
        if old is not None and "table" in old:
            df = pd.concat([old[~old["table"].isin(set(df["table"]))], df], ignore_index=True)
        path = self.file(layout.COMPARISON)
        tables.write_csv(df, path)
        return path


def relative_paths(per_image: pd.DataFrame, datasets: dict[str, Any]) -> pd.DataFrame:
    """per_image with lq_path / gt_path relative to the dataset's lq_dir / gt_dir (as stored)."""
    df = per_image.copy()
    for col, root_key in (("lq_path", "lq_dir"), ("gt_path", "gt_dir")):
        df[col] = [_relative((datasets.get(ds) or {}).get(root_key), p) for ds, p in zip(df["dataset"], df[col])]
    return df


def _missing(path: Any) -> bool:
    return path is None or (isinstance(path, float) and path != path) or str(path) in ("", "None", "nan")


def _relative(root: str | None, path: Any) -> Any:
    if _missing(path) or not root or not os.path.isabs(str(path)):
        return None if _missing(path) else path
    try:
        rel = os.path.relpath(str(path), root)
    except ValueError:  # another drive (Windows)
        return path
    return Path(rel).as_posix()


def _join(root: Any, path: Any) -> str | None:
    if _missing(path):
        return None
    if os.path.isabs(str(path)) or not root:
        return str(path)
    return os.path.normpath(os.path.join(str(root), str(path)))


def _read_profile(path: Path) -> pd.DataFrame:
    """profile.csv in the run layout; `bfrbench profile`'s own layout (kind, name, ...) is normalised to it."""
    import pandas as pd

    head = pd.read_csv(tables.regular_file(path), nrows=0).columns
    if not ("kind" in head and "name" in head and "method" not in head):
        return tables.read_csv(path, layout.PROFILE_COLUMNS, bools=(), text=("method", "metric", "device", "dtype"))
    df = tables.read_csv(path, layout.PROFILER_COLUMNS, bools=(),
                         text=("kind", "name", "device", "dtype", "status", "note", "mem_kind", "compile",
                               "channels_last"))
    df["method"] = df["name"].where(df["kind"] == "method", "")
    df["metric"] = df["name"].where(df["kind"] == "metric", "")
    df = df.rename(columns={"data_wait_share": "data_share", "device_busy_share": "busy_share"})
    for col in ("data_share", "busy_share"):
        if col not in df.columns:
            df[col] = float("nan")
    for col in ("compile", "channels_last"):
        if col in df.columns:
            df[col] = [tables.to_bool(v, f"{path} column {col}") for v in df[col]]
    return df


__all__ = ["RunFolder", "SCHEMA_VERSION", "SUMMARY_COLUMNS", "GAINS_COLUMNS", "PER_IMAGE_COLUMNS", "layout", "shards",
           "tables", "relative_paths", "results_document"]
