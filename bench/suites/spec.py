"""Declarative suites: one YAML file lists datasets, methods (with parameters), metrics (with options),
an optional score formula and an optional identity gate (the lm-evaluation-harness idea).

Top-level keys::

    name, title, year, source, description   # what the suite is and where its protocol comes from
    data: {root: DIR, root_env: ENV}         # where suite-local datasets live (ENV overrides; DIR is
                                             # relative to the benchmark data root, $BFRBENCH_DATA)
    datasets: [NAME | {name, folder, images, threshold}]
    methods:  [SPEC | {name, params}]        # default methods; --methods overrides
    metrics:  [SPEC | {name, options}]
    score:    {label, formula, variables: {VAR: metric label}}
    gate:     {label, metric, max_below}     # thresholds come from the datasets' ``threshold``
    run:      {batch_size: 8, ...}           # any other RunConfig field
    files:    {list: FILE, source, commit}   # the official file list (FOLDER/STEM lines, beside the suite):
                                             # folders lacking or adding files are reported before scoring
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import RunConfig, check_settings, spec_label
from bench.core.errors import UserError
from bench.suites.files import FileList, check_folders, parse_files
from bench.suites.formula import Formula

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
_TOP = {"name", "title", "year", "source", "description", "data", "datasets", "methods", "metrics", "score", "gate",
        "run", "files"}


@dataclass(frozen=True)
class SuiteDataset:
    """One dataset of a suite: a registered name, or a suite-local folder under the suite's data root."""

    name: str
    folder: str | None = None
    #: the set's size in the protocol: weights the suite-wide means (as the official scripts do)
    images: int | None = None
    #: identity-gate threshold for this set (None: not gated)
    threshold: float | None = None


@dataclass(frozen=True)
class ScoreSpec:
    label: str
    formula: str
    #: formula variable -> metric label in the run
    variables: dict[str, str]

    def parsed(self) -> Formula:
        return Formula(self.formula)


@dataclass(frozen=True)
class GateSpec:
    label: str
    metric: str
    #: an entry fails when more images than this fall under their set's threshold
    max_below: int


@dataclass
class Suite:
    name: str
    datasets: list[SuiteDataset]
    metrics: list[str]
    methods: list[str] = field(default_factory=list)
    title: str = ""
    year: int | None = None
    source: str = ""
    description: str = ""
    data_root: str | None = None
    data_root_env: str | None = None
    score: ScoreSpec | None = None
    gate: GateSpec | None = None
    run: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    #: the challenge's official file list, None when the suite has none
    files: FileList | None = None

    @property
    def tag(self) -> str:
        """How tables label the suite's numbers: ``NTIRE 2025`` style when a year is given."""
        return f"{self.title or self.name}" + (f" ({self.year})" if self.year and str(self.year) not in self.title else "")

    def root(self) -> Path:
        """Where suite-local datasets live: $<data.root_env>, else <data root>/<data.root>."""
        from bench.data.datasets import data_root

        if self.data_root_env and os.environ.get(self.data_root_env):
            return Path(os.environ[self.data_root_env]).expanduser()
        return data_root() / (self.data_root or "")

    def register_datasets(self) -> None:
        """Make each suite-local dataset a registered name (a no-op for names already known)."""
        from bench.core.registry import DATASETS
        from bench.data.datasets import BenchmarkSet

        for d in self.datasets:
            if d.folder is None or d.name in DATASETS:
                continue
            folder = self.root() / d.folder
            hint = f"the {self.title or self.name} test data: set {self.data_root_env} or put it under {self.root()}"

            def factory(_d: SuiteDataset = d, _folder: Path = folder, _hint: str = hint, **_: Any) -> BenchmarkSet:
                return BenchmarkSet(_d.name, _folder, None, _d.images, title=_d.name, download_hint=_hint)

            DATASETS.add(d.name, factory, has_gt=False, expected_count=d.images,
                         description=f"{self.name}: {d.folder} under {self.data_root_env or 'the data root'}")

    def check_files(self) -> list[str]:
        """Each suite-local folder that lacks official files or holds others, one line each (none without a list)."""
        if self.files is None:
            return []
        return check_folders(self.files, {d.folder: (d.name, self.root() / d.folder)
                                          for d in self.datasets if d.folder is not None})

    def all_metrics(self) -> list[str]:
        """The listed metrics plus any the score or the gate needs, in order, once each."""
        names = list(self.metrics)
        extra = list(self.score.variables.values()) if self.score else []
        extra += [self.gate.metric] if self.gate else []
        for m in extra:
            if m not in names:
                names.append(m)
        return names

    def run_config(self) -> RunConfig:
        """The suite as a run configuration (command-line options then override it)."""
        self.register_datasets()
        kwargs = dict(self.run)
        kwargs.update(datasets=[d.name for d in self.datasets], metrics=self.all_metrics(), suite=self.path or self.name)
        if self.methods:
            kwargs["methods"] = list(self.methods)
        known = {f.name for f in dataclasses.fields(RunConfig)}
        unknown = set(kwargs) - known
        if unknown:
            raise UserError(f"suite {self.name}: unknown run settings {sorted(unknown)}; known: {sorted(known)}")
        return RunConfig(**kwargs)

    def thresholds(self) -> dict[str, float]:
        return {d.name: d.threshold for d in self.datasets if d.threshold is not None}

    def weights(self) -> dict[str, int]:
        return {d.name: d.images for d in self.datasets if d.images}


#: run settings a suite may not make: where results go is the user's choice, and the suite's own keys
_RUN_REFUSED = {"out": "a suite does not choose where results go: give --out on the command line",
                "datasets": "list them under the suite's datasets", "metrics": "list them under the suite's metrics",
                "methods": "list them under the suite's methods", "suite": "a suite cannot name another suite"}


def _text(value: Any, where: str, what: str, required: bool = False) -> str:
    """A scalar as text; a list or mapping where text belongs is one UserError."""
    if value is None or value == "":
        if required:
            raise UserError(f"{where}: '{what}' is required")
        return ""
    if isinstance(value, (list, dict, set, tuple)) or (isinstance(value, float) and not math.isfinite(value)):
        raise UserError(f"{where}: {what} must be text, got {_short(value)}")
    return str(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _int(value: Any, where: str, what: str, lo: int, hi: int) -> int:
    """A whole number in [lo, hi] (2025 or 2025.0); inf, nan, text and booleans are refused."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value, ok = int(value), True
    if not ok or not lo <= value <= hi:
        raise UserError(f"{where}: {what} must be a whole number from {lo} to {hi}, got {_short(value)}")
    return int(value)


def _float(value: Any, where: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise UserError(f"{where}: {what} must be a finite number, got {_short(value)}")
    return float(value)


def _mapping(value: Any, where: str, what: str, keys: set[str]) -> dict:
    if not isinstance(value, dict):
        raise UserError(f"{where}: {what} must be a mapping with keys {sorted(keys)}, got {_short(value)}")
    extra = {str(k) for k in value} - keys
    if extra:
        raise UserError(f"{where}: {what}: unknown keys {sorted(extra)}; known: {sorted(keys)}")
    return value


def _list(value: Any, where: str, what: str) -> list:
    if not isinstance(value, list):
        raise UserError(f"{where}: {what} must be a list (- NAME per line, or [A, B]), got {_short(value)}")
    return value


def _dataset(item: Any, where: str) -> SuiteDataset:
    if isinstance(item, str):
        return SuiteDataset(name=_text(item, where, "a dataset", required=True))
    if not isinstance(item, dict) or "name" not in item:
        raise UserError(f"{where}: a dataset is a name or {{name, folder, images, threshold}}, got {_short(item)}")
    name = _text(item["name"], where, "a dataset's name", required=True)
    _mapping(item, where, f"dataset {name}", {"name", "folder", "images", "threshold"})
    at = f"{where}: dataset {name}"
    return SuiteDataset(name=name, folder=_text(item["folder"], at, "folder") or None if "folder" in item else None,
                        images=_int(item["images"], at, "images", 1, 10**8) if item.get("images") is not None
                        else None,
                        threshold=_float(item["threshold"], at, "threshold") if item.get("threshold") is not None
                        else None)


def _check_run(run: Any, where: str) -> dict[str, Any]:
    """The suite's run settings, each checked against RunConfig's field type; never ``out`` (nor a suite's keys)."""
    if run is None:
        return {}
    run = _mapping(run, where, "run", {f.name for f in dataclasses.fields(RunConfig)})
    for key in run:
        if str(key) in _RUN_REFUSED:
            raise UserError(f"{where}: run.{key} is not allowed: {_RUN_REFUSED[str(key)]}")
    return check_settings(run, where, prefix="run.")


def _score(raw: Any, where: str) -> ScoreSpec:
    s = _mapping(raw, where, "score", {"label", "formula", "variables"})
    formula = _text(s.get("formula"), where, "score.formula", required=True)
    variables = {_text(k, where, "a score variable", required=True): spec_label(v, "options", "metric")
                 for k, v in _mapping(s.get("variables") or {}, where, "score.variables",
                                      {str(k) for k in s.get("variables") or {}}).items()}
    score = ScoreSpec(label=_text(s.get("label", "score"), where, "score.label") or "score", formula=formula,
                      variables=variables)
    missing = [v for v in score.parsed().variables if v not in variables]
    if missing:
        raise UserError(f"{where}: score formula uses {missing}, which score.variables does not map to metrics")
    return score


def parse_suite(data: Any, path: str = "") -> Suite:
    """A suite from its YAML mapping; every problem is one UserError naming the file and the key, before any work."""
    where = path or "suite"
    if not isinstance(data, dict):
        raise UserError(f"{where}: a suite file is a YAML mapping")
    unknown = {str(k) for k in data} - _TOP
    if unknown:
        raise UserError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(_TOP)}")
    for key in ("name", "datasets", "metrics"):
        if not data.get(key):
            raise UserError(f"{where}: '{key}' is required")
    score = _score(data["score"], where) if data.get("score") else None
    gate = None
    if data.get("gate"):
        g = _mapping(data["gate"], where, "gate", {"label", "metric", "max_below"})
        if "metric" not in g or "max_below" not in g:
            raise UserError(f"{where}: gate needs metric and max_below")
        gate = GateSpec(label=_text(g.get("label", "identity gate"), where, "gate.label") or "identity gate",
                        metric=spec_label(g["metric"], "options", "metric"),
                        max_below=_int(g["max_below"], where, "gate.max_below", 0, 10**8))
    datasets = [_dataset(d, where) for d in _list(data["datasets"], where, "datasets")]
    if len({d.name for d in datasets}) != len(datasets):
        raise UserError(f"{where}: a dataset is listed twice: {[d.name for d in datasets]}")
    if gate and not any(d.threshold is not None for d in datasets):
        raise UserError(f"{where}: the gate needs a threshold on at least one dataset")
    data_cfg = _mapping(data.get("data") or {}, where, "data", {"root", "root_env"})
    return Suite(
        name=_text(data["name"], where, "name", required=True),
        title=_text(data.get("title"), where, "title"),
        year=_int(data["year"], where, "year", 1900, 9999) if data.get("year") is not None else None,
        source=_text(data.get("source"), where, "source"),
        description=_text(data.get("description"), where, "description"),
        datasets=datasets,
        methods=[spec_label(m, "params", "method") for m in _list(data.get("methods") or [], where, "methods")],
        metrics=[spec_label(m, "options", "metric") for m in _list(data["metrics"], where, "metrics")],
        data_root=_text(data_cfg.get("root"), where, "data.root") or None,
        data_root_env=_text(data_cfg.get("root_env"), where, "data.root_env") or None,
        score=score,
        gate=gate,
        run=_check_run(data.get("run"), where),
        path=path,
        files=parse_files(data["files"], where, Path(path).parent if path else BUILTIN_DIR)
        if data.get("files") is not None else None,
    )


def builtin_suites() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def load_suite(name_or_path: str) -> Suite:
    """A built-in suite by name (``ntire2025-rwfr``) or any suite file."""
    from bench.core.options import read_yaml_file

    path = Path(name_or_path).expanduser()
    if not path.is_file():
        builtin = BUILTIN_DIR / f"{name_or_path}.yaml"
        if not builtin.is_file():
            raise UserError(f"suite {name_or_path!r}: no such file and no built-in suite of that name "
                            f"(built-in: {', '.join(builtin_suites())})")
        path = builtin
    data = read_yaml_file(path, "suite")
    suite = parse_suite(data, str(path))
    suite.path = str(path)
    return suite


__all__ = ["Suite", "SuiteDataset", "ScoreSpec", "GateSpec", "parse_suite", "load_suite", "builtin_suites",
           "BUILTIN_DIR"]
