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
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import RunConfig, spec_label
from bench.core.errors import UserError
from bench.suites.formula import Formula

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
_TOP = {"name", "title", "year", "source", "description", "data", "datasets", "methods", "metrics", "score", "gate",
        "run"}


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


def _dataset(item: Any, where: str) -> SuiteDataset:
    if isinstance(item, str):
        return SuiteDataset(name=item)
    if not isinstance(item, dict) or "name" not in item:
        raise UserError(f"{where}: a dataset is a name or {{name, folder, images, threshold}}, got {item!r}")
    extra = set(item) - {"name", "folder", "images", "threshold"}
    if extra:
        raise UserError(f"{where}: dataset {item['name']}: unknown keys {sorted(extra)}")
    return SuiteDataset(name=str(item["name"]), folder=item.get("folder"),
                        images=int(item["images"]) if item.get("images") is not None else None,
                        threshold=float(item["threshold"]) if item.get("threshold") is not None else None)


def parse_suite(data: Any, path: str = "") -> Suite:
    """A suite from its YAML mapping; every problem names the file and the key."""
    where = path or "suite"
    if not isinstance(data, dict):
        raise UserError(f"{where}: a suite file is a YAML mapping")
    unknown = set(data) - _TOP
    if unknown:
        raise UserError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(_TOP)}")
    for key in ("name", "datasets", "metrics"):
        if not data.get(key):
            raise UserError(f"{where}: '{key}' is required")
    score = gate = None
    if data.get("score"):
        s = data["score"]
        if not isinstance(s, dict) or "formula" not in s:
            raise UserError(f"{where}: score needs a formula (and variables: {{VAR: metric}})")
        variables = {str(k): spec_label(v, "options", "metric") for k, v in (s.get("variables") or {}).items()}
        score = ScoreSpec(label=str(s.get("label", "score")), formula=str(s["formula"]), variables=variables)
        missing = [v for v in score.parsed().variables if v not in variables]
        if missing:
            raise UserError(f"{where}: score formula uses {missing}, which score.variables does not map to metrics")
    if data.get("gate"):
        g = data["gate"]
        if not isinstance(g, dict) or "metric" not in g or "max_below" not in g:
            raise UserError(f"{where}: gate needs metric and max_below")
        gate = GateSpec(label=str(g.get("label", "identity gate")), metric=spec_label(g["metric"], "options", "metric"),
                        max_below=int(g["max_below"]))
    datasets = [_dataset(d, where) for d in data["datasets"]]
    if gate and not any(d.threshold is not None for d in datasets):
        raise UserError(f"{where}: the gate needs a threshold on at least one dataset")
    data_cfg = data.get("data") or {}
    return Suite(
        name=str(data["name"]),
        title=str(data.get("title", "")),
        year=int(data["year"]) if data.get("year") else None,
        source=str(data.get("source", "")),
        description=str(data.get("description", "")),
        datasets=datasets,
        methods=[spec_label(m, "params", "method") for m in data.get("methods") or []],
        metrics=[spec_label(m, "options", "metric") for m in data["metrics"]],
        data_root=data_cfg.get("root"),
        data_root_env=data_cfg.get("root_env"),
        score=score,
        gate=gate,
        run=dict(data.get("run") or {}),
        path=path,
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
