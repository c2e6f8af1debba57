"""Run configuration: a plain dataclass, loadable from YAML, with method specs parsed from strings.

A method spec is ``NAME`` or ``NAME:key=value,key=value`` (e.g. ``codeformer:fidelity=0.7``);
its label (the spec string) names it in every table.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.errors import UserError

DEFAULT_DATASETS = ["demo"]
DEFAULT_METHODS = ["lq", "classical"]


def _coerce(value: str) -> Any:
    """'0.5' -> 0.5, 'true' -> True, 'none' -> None, else the string."""
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


@dataclass(frozen=True)
class MethodSpec:
    """A method name with parameter overrides; ``label`` is how tables name it."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()
    weights: str | None = None

    @classmethod
    def parse(cls, spec: str, weights: str | None = None) -> MethodSpec:
        name, _, rest = spec.partition(":")
        params: dict[str, Any] = {}
        if rest:
            for item in rest.split(","):
                key, eq, value = item.partition("=")
                if not eq or not key.strip():
                    raise UserError(f"bad method spec {spec!r}: expected NAME:key=value[,key=value]")
                params[key.strip()] = _coerce(value.strip())
        return cls(name=name.strip(), params=tuple(sorted(params.items())), weights=weights)

    @property
    def label(self) -> str:
        if not self.params:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v}" for k, v in self.params)

    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)


@dataclass
class RunConfig:
    """Everything that defines a benchmark run."""

    datasets: list[str] = field(default_factory=lambda: list(DEFAULT_DATASETS))
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    #: None: the default set for each dataset (full-reference metrics only where GT exists)
    metrics: list[str] | None = None
    out: str | None = None
    device: str = "auto"
    batch_size: int = 4
    workers: int = 2
    save_images: bool = False
    seed: int = 0
    #: method name or label -> weights path (or "random" for stand-in weights)
    weights: dict[str, str] = field(default_factory=dict)
    #: cap the images per dataset (quick looks); None: all
    limit: int | None = None
    #: mixed precision for methods on GPU: "fp32" | "fp16" | "bf16"
    dtype: str = "fp32"
    quiet: bool = False
    report: bool = True

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunConfig:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise UserError(f"{path}: cannot read run config ({exc})") from exc
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise UserError(f"{path}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)

    def method_specs(self) -> list[MethodSpec]:
        specs = []
        for s in self.methods:
            spec = MethodSpec.parse(s)
            w = self.weights.get(spec.label, self.weights.get(spec.name))
            specs.append(dataclasses.replace(spec, weights=w))
        labels = [s.label for s in specs]
        if len(set(labels)) != len(labels):
            raise UserError(f"a method is listed twice: {labels}")
        return specs


def content_hash(obj: Any, n: int = 16) -> str:
    """A stable short hash of a JSON-able object (sorted keys)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:n]
