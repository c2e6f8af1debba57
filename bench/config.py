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

from bench.core.errors import UnknownNameError, UserError
from bench.core.options import format_spec, parse_options, parse_value, read_yaml_file, split_spec

DEFAULT_DATASETS = ["demo"]
DEFAULT_METHODS = ["lq", "classical"]


@dataclass(frozen=True)
class MethodSpec:
    """A method name with parameter overrides; ``label`` is how tables name it."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()
    weights: str | None = None
    #: the label tables use instead of ``name[:params]`` (an output folder's LABEL)
    alias: str | None = None

    @classmethod
    def parse(cls, spec: str, weights: str | None = None) -> MethodSpec:
        if ":" in spec:  # a resolver's name (``outputs:LABEL=DIR``) is read by its resolver, not as options
            from bench.core import plugins
            from bench.core.registry import METHODS

            plugins.load_all()
            if METHODS.resolves(spec):
                entry = METHODS.resolve(spec)
                return cls(name=entry.name, weights=weights, alias=entry.meta.get("label") or entry.name)
        name, rest = spec.partition(":")[0].strip(), spec.partition(":")[2]
        if rest and "=" not in rest:
            raise UserError(f"bad method spec {spec!r}: expected NAME:key=value[,key=value]")
        raw = parse_options(rest, where=f"method spec {spec!r}", raw=True) if rest else {}
        name, params = typed_options("method", name, raw)
        return cls(name=name, params=tuple(sorted(params.items())), weights=weights)

    @property
    def label(self) -> str:
        if self.alias:
            return self.alias
        return format_spec(self.name, dict(self.params))

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
    #: DataLoader worker processes; None: sized to the machine
    workers: int | None = None
    save_images: bool = False
    seed: int = 0
    #: method name or label -> weights path (or "random" for stand-in weights)
    weights: dict[str, str] = field(default_factory=dict)
    #: cap the images per dataset (quick looks); None: all
    limit: int | None = None
    #: mixed precision for methods on GPU: "fp32" | "fp16" | "bf16"
    dtype: str = "fp32"
    #: torch.compile the methods (falls back to eager, with a note, where compiling fails)
    compile: bool = False
    #: channels_last memory format for the methods: "auto" (on for CUDA), "on" or "off"
    channels_last: str = "auto"
    quiet: bool = False
    report: bool = True
    #: output folders (``outputs:DIR``): refuse wrong-size images instead of resizing them
    strict: bool = False
    #: let methods that run the user's own Python code (``ntire:PATH``, a challenge team folder) run
    allow_code: bool = False
    #: the suite this run follows (built-in name or file): its score and gate are added after the run
    suite: str | None = None

    def __post_init__(self) -> None:
        """Every field checked against its type and range; YAML may give a metric or method as
        ``{name: ..., options: {...}}``: each is kept as its label."""
        for key, value in check_settings(dataclasses.asdict(self), "run config").items():
            setattr(self, key, value)
        self.methods = [spec_label(m, "params", "method") for m in self.methods]
        if self.metrics is not None:
            self.metrics = [spec_label(m, "options", "metric") for m in self.metrics]

    def validate(self, where: str = "run config") -> None:
        """Check the fields again after they were set one by one (command-line overrides, the API)."""
        for key, value in check_settings(dataclasses.asdict(self), where).items():
            setattr(self, key, value)

    def work_settings(self) -> dict[str, Any]:
        """The settings that shape a run's work (every torchrun rank must agree on them); not where
        results go, the local device, loader processes or how much is printed."""
        local = {"out", "device", "workers", "quiet", "report"}
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in local}

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunConfig:
        data = read_yaml_file(path, "run config")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise UserError(f"{path}: a run config is a YAML mapping of settings, got {_short(data)}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = {str(k) for k in data} - known
        if unknown:
            raise UserError(f"{path}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**check_settings(data, str(path)))

    def check_code_allowed(self) -> None:
        """Refuse, in one line, a method that runs the user's own code (``ntire:PATH``) unless ``allow_code``."""
        if self.allow_code:
            return
        from bench.core import plugins
        from bench.core.registry import METHODS

        plugins.load_all()
        for s in self.methods:
            if METHODS.resolves(s) and METHODS.resolve(s).meta.get("runs_user_code"):
                raise UserError(f"method {s} runs the Python code in its folder; refused without --allow-code",
                                fix="add --allow-code (allow_code: true in a run config) if you trust that code")

    def method_specs(self) -> list[MethodSpec]:
        specs = []
        for s in self.methods:
            spec = MethodSpec.parse(s)
            w = self.weights.get(spec.label, self.weights.get(spec.name))
            spec = dataclasses.replace(spec, weights=w)
            params = dict(spec.params)
            if spec.alias and self.strict:  # an output folder refusing wrong sizes
                params["strict"] = True
            if spec.alias and _runs_user_code(spec.name):  # a team folder's own code: only when allowed
                self.check_code_allowed()
                params["allow_code"] = True
            spec = dataclasses.replace(spec, params=tuple(sorted(params.items())))
            specs.append(spec)
        labels = [s.label for s in specs]
        if len(set(labels)) != len(labels):
            raise UserError(f"a method is listed twice: {labels}")
        return specs


def _runs_user_code(name: str) -> bool:
    """True for a method entry marked ``runs_user_code`` (it imports and calls code from the user's folder)."""
    from bench.core.registry import METHODS

    return METHODS.resolves(name) and bool(METHODS.resolve(name).meta.get("runs_user_code", False))


#: the whole-number settings' ranges: the one place (run configs, suites' run settings, the command line)
INT_RANGES = {"batch_size": (1, 1 << 16), "workers": (0, 1024), "limit": (1, (1 << 31) - 1),
              "seed": (0, (1 << 32) - 1)}
#: the settings with a fixed set of values
CHOICES = {"dtype": ("fp32", "fp16", "bf16"), "channels_last": ("auto", "on", "off")}
#: the list settings whose items may be ``{name: ..., options: {...}}`` mappings
_SPEC_LISTS = ("methods", "metrics")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_settings(data: dict[str, Any], where: str, *, flags: bool = False, prefix: str = "") -> dict[str, Any]:
    """Run settings checked against :class:`RunConfig`'s field types and :data:`INT_RANGES` / :data:`CHOICES`.

    Returns them typed (``4.0`` -> 4); a wrong type or value is one :class:`UserError` naming
    ``where`` and the setting (``--batch-size`` with ``flags``, else ``prefix + name``).
    """
    import math

    fields = {f.name: str(f.type).replace(" ", "") for f in dataclasses.fields(RunConfig)}
    out: dict[str, Any] = {}
    for key, value in data.items():
        key = str(key)
        if key not in fields:
            raise UserError(f"{where}: unknown setting {key!r}; known: {sorted(fields)}")
        kind, at = fields[key], (f"--{key.replace('_', '-')}" if flags else prefix + key)
        if value is None and "None" in kind:
            out[key] = None
        elif kind.startswith("bool"):
            if not isinstance(value, bool):
                raise UserError(f"{where}: {at} must be true or false, got {_short(value)}")
            out[key] = value
        elif kind.startswith("int"):
            lo, hi = INT_RANGES.get(key, (0, 1 << 31))
            ok = isinstance(value, int) and not isinstance(value, bool)
            if isinstance(value, float) and math.isfinite(value) and value.is_integer():
                value, ok = int(value), True
            if not ok or not lo <= value <= hi:
                raise UserError(f"{where}: {at} must be a whole number from {lo} to {hi}, got {_short(value)}")
            out[key] = int(value)
        elif kind.startswith("dict"):
            if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) and k and v
                                                      for k, v in value.items()):
                raise UserError(f"{where}: {at} must be a mapping of names to paths, got {_short(value)}")
            out[key] = dict(value)
        elif kind.startswith("list"):
            items_ok = all(isinstance(v, str) and v.strip() or (key in _SPEC_LISTS and isinstance(v, dict))
                           for v in value) if isinstance(value, list) else False
            if not items_ok or not value:
                raise UserError(f"{where}: {at} must be a non-empty list of names, got {_short(value)}")
            out[key] = list(value)
        else:
            if not isinstance(value, str) or not value.strip():
                raise UserError(f"{where}: {at} must be text, got {_short(value)}")
            if key in CHOICES and value not in CHOICES[key]:
                raise UserError(f"{where}: {at} must be one of {', '.join(CHOICES[key])}, got {_short(value)}")
            out[key] = value
    return out


def typed_options(kind: str, name: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A registered ``name`` with ``options`` (text or typed) read once into its factory's types, as its
    canonical (name, options): defaults dropped, a preset's short name used (``psnr-y``). Options of a name
    no registry knows are read as YAML and kept; the run names the unknown name."""
    if not options:  # nothing to type: no registry needed (a suite is read without importing torch)
        return name, {}
    from bench.core import plugins
    from bench.core.registry import METHODS, METRICS

    plugins.load_all()
    registry = METRICS if kind == "metric" else METHODS
    try:
        base = registry.entry(name)
    except UnknownNameError:
        return name, {k: parse_value(v) if isinstance(v, str) else v for k, v in options.items()}
    entry = registry.bind(base, options)
    return entry.meta.get("option_base", entry.name), dict(entry.meta.get("options", {}))


def spec_label(item: Any, options_key: str, kind: str) -> str:
    """A metric or method named as a string, ``{name: X, options: {...}}`` or ``{X: {...}}`` -> its label."""
    if isinstance(item, str):
        if kind == "method":
            return item  # MethodSpec.parse reads it (an outputs:DIR folder is no NAME:options spec)
        name, options = split_spec(item, raw=True)
        return format_spec(*typed_options(kind, name, options))
    if isinstance(item, dict):
        if "name" in item:
            extra = set(item) - {"name", options_key}
            if extra:
                raise UserError(f"{kind} {item!r}: unknown keys {sorted(extra)} (use name and {options_key})")
            opts = item.get(options_key) or {}
            name = str(item["name"])
        elif len(item) == 1:
            name, opts = next(iter(item.items()))
            opts = opts or {}
        else:
            raise UserError(f"{kind} {item!r}: expected NAME, {{name: NAME, {options_key}: {{...}}}} or {{NAME: {{...}}}}")
        if not isinstance(opts, dict):
            raise UserError(f"{kind} {name}: {options_key} must be a mapping, got {opts!r}")
        return format_spec(*typed_options(kind, name, opts))
    raise UserError(f"{kind} {item!r}: expected a name or a mapping")


def content_hash(obj: Any, n: int = 16) -> str:
    """A stable short hash of a JSON-able object (sorted keys)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:n]
