"""Several run folders as one set of results: a leaderboard across runs and machines.

Scores are keyed by (dataset, method, metric). A metric name stands for one protocol in a merged
table: when two runs measured the same metric name under different protocols, the merge is
refused with one line naming both runs and both protocols (values of different protocols are never
put under one column). The same method scored twice is kept once when both runs agree and
refused when they do not. Per-image values are merged alongside for the intervals and tests.
Scores are read from each folder's ``results.json`` (the schema-versioned document for other tools;
:class:`~bench.engine.run_folder.RunFolder` builds it from summary.csv for older folders), and a
dataset whose two runs carry different fingerprints (other images under one name) is refused.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.core.errors import UserError
from bench.engine.run_folder import PER_IMAGE_COLUMNS, RunFolder

SCORE_COLUMNS = ("dataset", "method", "metric", "protocol", "value", "n", "higher_better", "standard", "standin",
                 "status", "reason", "run")


@dataclass
class Results:
    """Scores (one row per dataset, method, metric) and per-image values of one or more runs."""

    scores: pd.DataFrame
    per_image: pd.DataFrame | None
    runs: list[Path]
    #: the runs' short names (folder names), as messages and table comments show them
    names: list[str] = field(default_factory=list)
    #: metric -> facts from the runs' manifests (protocol, higher_better, standard, needs_gt)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: a run's dataset that is not the published set (other fingerprint, or a --limit subset), one line each
    warnings: list[str] = field(default_factory=list)

    def per_image_metrics(self) -> set[str]:
        """Metrics with per-image values (set-level ones such as FID have none)."""
        if self.per_image is None:
            return set()
        cols = [c for c in self.per_image.columns if c not in PER_IMAGE_COLUMNS and c != "run"]
        return {c for c in cols if self.per_image[c].notna().any()}


@dataclass
class _Run:
    """One run folder as the merge reads it."""

    path: Path
    name: str
    results: dict[str, Any]
    manifest: dict[str, Any]
    per_image: pd.DataFrame | None


def _read(path: str | Path, name: str) -> _Run:
    folder = RunFolder(path)
    folder.require()
    return _Run(folder.path, name, folder.results(), folder.manifest(), folder.per_image())


def _scores(run: _Run) -> pd.DataFrame:
    """results.json's entries as rows (one per dataset, method, metric), with the run's name."""
    rows = []
    for dataset, methods in (run.results.get("results") or {}).items():
        for method, metrics in (methods or {}).items():
            for metric, e in (metrics or {}).items():
                value = e.get("value")
                rows.append({
                    "dataset": str(dataset), "method": str(method), "metric": str(metric),
                    "protocol": str(e.get("protocol") or ""), "value": math.nan if value is None else float(value),
                    "n": math.nan if e.get("n") is None else float(e["n"]), "higher_better": bool(e.get("higher_better", True)),
                    "standard": bool(e.get("standard", True)), "standin": bool(e.get("standin", False)),
                    "status": str(e.get("status") or "ok"), "reason": str(e.get("reason") or ""), "run": run.name,
                })
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS))


def _metric_facts(runs: Sequence[_Run]) -> dict[str, dict[str, Any]]:
    facts: dict[str, dict[str, Any]] = {}
    for run in runs:
        for metric, meta in (run.manifest.get("metrics") or {}).items():
            if isinstance(meta, dict):
                facts.setdefault(str(metric), {}).update({k: meta[k] for k in
                                                          ("protocol", "higher_better", "standard", "needs_gt")
                                                          if k in meta})
    return facts


def check_datasets(runs: Sequence[_Run]) -> None:
    """A dataset name means the same images in every run: differing fingerprints are refused."""
    seen: dict[str, tuple[str, str]] = {}
    for run in runs:
        for name, info in (run.results.get("datasets") or {}).items():
            fp = (info or {}).get("dataset_fingerprint")
            if not fp:
                continue
            first = seen.setdefault(name, (str(fp), run.name))
            if first[0] != str(fp):
                raise UserError(
                    f"dataset {name!r} holds other images in {first[1]} than in {run.name} (fingerprints "
                    f"{first[0][:12]} and {str(fp)[:12]}); their values cannot share a column",
                    fix="leave one of them out with --datasets, or rerun both on the same data",
                )


def published_warnings(runs: Sequence[_Run]) -> list[str]:
    """Each run's datasets that are not the published sets (their numbers are not comparable with papers')."""
    from bench.compare import dataset_warnings

    out = []
    for run in runs:
        datasets = run.results.get("datasets") or {}
        out += [f"{line.split(' ', 1)[0]} {run.name}: {line.split(' ', 1)[1]}"
                for line in dataset_warnings(datasets, datasets, "its column is not the published benchmark")
                if line.startswith("WARNING")]
    return out


def check_protocols(scores: pd.DataFrame) -> None:
    """One protocol per metric name across the merged runs; a conflict is one line naming both."""
    seen: dict[str, tuple[str, str]] = {}
    for r in scores[scores["protocol"] != ""].itertuples(index=False):
        first = seen.setdefault(r.metric, (r.protocol, r.run))
        if first[0] != r.protocol:
            raise UserError(
                f"protocol conflict for metric {r.metric!r}: {first[0]!r} in {first[1]}, {r.protocol!r} in {r.run}; "
                "values of different protocols are never put in one column",
                fix="leave one of them out with --metrics, or rerun one run with the other's metric options",
            )


def _dedupe(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, method, metric): the same value from two runs is kept once; two values refused."""
    ok = scores[scores["status"] == "ok"]
    for key, group in ok.groupby(["dataset", "method", "metric"], sort=False):
        if group["run"].nunique() < 2:
            continue
        values = group["value"].astype(float).to_numpy()
        if not all(math.isclose(v, values[0], rel_tol=0, abs_tol=0) for v in values):
            runs = list(dict.fromkeys(group["run"]))
            dataset, method, metric = key
            raise UserError(
                f"method {method!r} has two {metric} values on {dataset!r}: {values[0]:.6g} in {runs[0]}, "
                f"{values[1]:.6g} in {runs[1]}; a table holds one value per cell",
                fix="give the method a different label in one run, or leave one run's copy out (--methods)",
            )
    # an ok row beats a skipped one; among equals the first run's row stays
    order = scores.assign(_bad=(scores["status"] != "ok").astype(int)).sort_values("_bad", kind="stable")
    return order.drop_duplicates(["dataset", "method", "metric"], keep="first").drop(columns="_bad").sort_index()


def merge_runs(run_dirs: Sequence[str | Path], metrics: Sequence[str] | None = None) -> Results:
    """Read and merge run folders (in the order given), keeping only ``metrics`` when given (so a conflict
    in a metric left out does not matter); raises UserError on a protocol or value conflict."""
    if not run_dirs:
        raise UserError("no run folder given", fix="pass one or more folders written by `bfrbench run`")
    names = _run_names([Path(d) for d in run_dirs])
    runs = [_read(d, n) for d, n in zip(run_dirs, names)]
    check_datasets(runs)
    scores = pd.concat([_scores(r) for r in runs], ignore_index=True)
    if metrics:
        scores = scores[scores["metric"].isin(list(metrics))]
    check_protocols(scores)
    scores = _dedupe(scores).reset_index(drop=True)
    frames = []
    for run in runs:
        if run.per_image is not None and not run.per_image.empty:
            frames.append(run.per_image.assign(run=run.name))
    per_image = None
    if frames:
        per_image = pd.concat(frames, ignore_index=True)
        # the same (dataset, method, image) from two agreeing runs is one image
        per_image = per_image.drop_duplicates(["dataset", "method", "image"], keep="first").reset_index(drop=True)
    return Results(scores, per_image, [r.path for r in runs], names, _metric_facts(runs), published_warnings(runs))


def _run_names(paths: Sequence[Path]) -> list[str]:
    """Short names for messages: the folder name, or more of the path when two runs share a name."""
    names = [p.name or str(p) for p in paths]
    if len(set(names)) == len(names):
        return names
    return [str(p) for p in paths]
