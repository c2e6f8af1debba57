"""The one parser of ``key=value`` options: method specs, metric specs, ``--param`` and ``--set``.

A spec is ``NAME`` or ``NAME:key=value[,key=value...]``. NAME may itself hold colons
(``pyiqa:musiq``, ``outputs:DIR``): the options start at the first colon followed by
``identifier=``. A spec's values stay text (:func:`split_spec`) until the registry knows the
factory they go to; :func:`coerce_options` then reads each once into the type its parameter
declares (bool, int, float, str, a ``Literal`` choice; YAML for an untyped one) or refuses it in
one line naming the option and the values it accepts. :func:`format_spec` is the one label
formatter (``true``, not ``True``). Untyped values (``--param``, ``--set``) are YAML scalars.
"""
from __future__ import annotations

import inspect
import math
import os
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Union

from bench.core.errors import UserError

#: YAML 1.1 floats plus ``1e-4`` (which plain YAML reads as a string)
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_OPTIONS_START = re.compile(r"^(?P<name>.+?):(?P<opts>[A-Za-z_][A-Za-z0-9_]*=.*)$", re.S)
_ITEM_SPLIT = re.compile(r",(?=\s*[A-Za-z_][A-Za-z0-9_]*=)")


#: bounds of every YAML document bfrbench reads (configs, suites, paper tables, option values): a
#: config is a few KiB; aliases may not expand it past MAX_YAML_NODES values (the "billion laughs")
MAX_YAML_BYTES = 1 << 20
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 64


class YamlBoundError(UserError):
    """A YAML document over the size, expansion or nesting bounds."""


def _yaml_error_line(exc: Exception) -> str:
    """A YAML error as one line: the problem and where (PyYAML's own text spans several)."""
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None)
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if problem:
        return f"{problem}" + (f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "")
    return " ".join(str(exc).split())[:200]


def check_yaml_bounds(data: Any, where: str = "YAML") -> Any:
    """``data`` unchanged when its alias-expanded size and its depth are within bounds; else YamlBoundError.

    Linear in the distinct containers: a shared (aliased) container is sized once and counted at
    each use, so a nested-alias bomb is refused after a few thousand steps, and a cycle is refused.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(x: Any, depth: int) -> int:
        if not isinstance(x, (list, tuple, dict, set, frozenset)):
            return 1
        if depth > MAX_YAML_DEPTH:
            raise YamlBoundError(f"{where}: nested deeper than {MAX_YAML_DEPTH} levels", fix="flatten the file")
        key = id(x)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise YamlBoundError(f"{where}: an alias refers to itself (a recursive structure)",
                                 fix="remove the self-referencing alias")
        active.add(key)
        total = 1
        for child in ([*x.keys(), *x.values()] if isinstance(x, dict) else x):
            total += size(child, depth + 1)
            if total > MAX_YAML_NODES:
                raise YamlBoundError(f"{where}: expands to more than {MAX_YAML_NODES} values (nested aliases?)",
                                     fix="write the values out, without aliases that multiply them")
        active.discard(key)
        sizes[key] = total
        return total

    size(data, 0)
    return data


def yaml_load(text: str, where: str = "YAML") -> Any:
    """``yaml.safe_load`` that also reads ``1e-4`` as a float, bounded in size, alias expansion and depth.

    Over a bound is one :class:`YamlBoundError`; invalid YAML raises ``yaml.YAMLError`` as before.
    """
    import yaml

    if len(text) > MAX_YAML_BYTES:
        raise YamlBoundError(f"{where}: {len(text)} characters, more than the {MAX_YAML_BYTES} a YAML file may have")

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
    try:
        data = yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError as exc:
        raise YamlBoundError(f"{where}: nested too deeply to read", fix="flatten the file") from exc
    return check_yaml_bounds(data, where)


def read_yaml_file(path: str | os.PathLike[str], what: str = "file") -> Any:
    """A YAML file's data (via :func:`yaml_load`); an unreadable, oversized or invalid file is one UserError."""
    import stat

    try:  # non-blocking open and a check after it: a FIFO or a device is refused, never waited on
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise UserError(f"{path}: the {what} is not a regular file")
            raw = fh.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise UserError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from exc
    if len(raw) > MAX_YAML_BYTES:
        raise YamlBoundError(f"{path}: the {what} is larger than {MAX_YAML_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: the {what} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        return yaml_load(text, str(path))
    except UserError:
        raise
    except Exception as exc:  # yaml.YAMLError and friends
        raise UserError(f"{path}: not valid YAML ({_yaml_error_line(exc)})") from exc


def parse_value(text: str) -> Any:
    """One option value: a YAML scalar or list (``4``, ``1e-4``, ``true``, ``[1, 2]``), ``none``, else the string."""
    import yaml

    stripped = text.strip()
    if stripped.lower() in ("none", "null", "~"):
        return None
    try:
        value = yaml_load(stripped)
    except yaml.YAMLError:
        return stripped
    if (isinstance(value, dict) and not stripped.startswith("{")) or (value is None and stripped):
        return stripped  # "a: b" is a string here; a mapping is written {a: b}
    return value


def parse_options(text: str, where: str = "options", raw: bool = False) -> dict[str, Any]:
    """``"k=v,k2=v2"`` -> ``{"k": v, "k2": v2}`` (a comma only splits before ``identifier=``).

    ``raw=True`` keeps each value as its stripped text, for :func:`coerce_options` to type once.
    """
    out: dict[str, Any] = {}
    if not text.strip():
        return out
    for item in _ITEM_SPLIT.split(text):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise UserError(f"{where}: bad option {item!r}; expected key=value[,key=value]")
        if key in out:
            raise UserError(f"{where}: option {key!r} is given twice")
        out[key] = value.strip() if raw else parse_value(value)
    return out


def split_spec(spec: str, raw: bool = False) -> tuple[str, dict[str, Any]]:
    """``"psnr:crop_border=4"`` -> ``("psnr", {"crop_border": 4})``; ``"pyiqa:musiq"`` -> no options.

    ``raw=True`` keeps the values as text (``{"crop_border": "4"}``) for :func:`coerce_options`.
    """
    m = _OPTIONS_START.match(spec.strip())
    if not m:
        return spec.strip(), {}
    return m.group("name").strip(), parse_options(m.group("opts"), where=f"spec {spec!r}", raw=raw)


_TRUE = ("true", "yes", "on")
_FALSE = ("false", "no", "off")
_NONE = ("none", "null", "~")


@dataclass(frozen=True)
class OptionType:
    """What one factory parameter accepts: ``kind`` is bool, int, float, str, choice or any."""

    kind: str
    choices: tuple[Any, ...] = ()
    optional: bool = False

    def accepted(self) -> str:
        """The accepted values in words, for the one-line error."""
        words = {"bool": "true or false", "int": "a whole number", "float": "a finite number",
                 "str": "text", "any": "a number, true, false, text or a list of them"}
        text = ", ".join(format_value(c) for c in self.choices) if self.kind == "choice" else words[self.kind]
        return text + (", or none" if self.optional else "")

    def coerce(self, value: Any) -> Any:
        """``value`` (text from a spec, or a typed value from YAML or Python) as this type; ValueError if not."""
        if isinstance(value, str) and self.kind not in ("str", "choice", "any"):
            value = self._from_text(value.strip())
        elif self.kind == "any":
            value = parse_value(value) if isinstance(value, str) else value
            if not _same_value(parse_value(format_value(value)), value):
                raise ValueError  # a value its label would not give back (a nested mapping, [null] ...)
            return value
        elif isinstance(value, str) and self.optional and value.strip().lower() in _NONE:
            value = None
        if value is None:
            if self.optional or self.kind == "any":
                return None
            raise ValueError
        return self._check(value)

    def _from_text(self, text: str) -> Any:
        low = text.lower()
        if self.optional and low in _NONE:
            return None
        if self.kind == "bool":
            if low in _TRUE or low in _FALSE:
                return low in _TRUE
            raise ValueError
        if self.kind == "int":
            if not re.fullmatch(r"[-+]?[0-9]+", text) or len(text) > 30:
                raise ValueError
            return int(text)
        return float(text) if re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text) else _bad()

    def _check(self, value: Any) -> Any:
        kind = self.kind
        if kind == "any":
            return value
        if kind == "bool":
            return value if isinstance(value, bool) else _bad()
        if isinstance(value, bool):
            return _bad() if kind != "choice" or value not in self.choices else value
        if kind == "int":
            return value if isinstance(value, int) else _bad()
        if kind == "float":
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                _bad()
            return float(value)
        if kind == "str":
            return str(value) if isinstance(value, (str, int, float)) else _bad()
        for choice in self.choices:  # a choice: compared as text, so 1.4 given as a number matches "1.4"
            if value == choice or (isinstance(value, (int, float)) and str(value) == str(choice)):
                return choice
        return _bad()


def _bad() -> Any:
    raise ValueError


def _same_value(a: Any, b: Any) -> bool:
    """Equal with the same types throughout (``1`` is not ``True``; NaN equals NaN)."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    return type(a) is type(b) and a == b


def option_type(annotation: Any, default: Any = inspect.Parameter.empty) -> OptionType:
    """The :class:`OptionType` of a parameter from its annotation, else from its default's type."""
    optional = default is None
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = optional or len(args) < len(typing.get_args(annotation))
        plain = [a for a in args if a in (bool, int, float, str) or typing.get_origin(a) is Literal]
        annotation = plain[0] if len(plain) == 1 or (plain and str in args and plain[0] is str) else Any
    if typing.get_origin(annotation) is Literal:
        return OptionType("choice", tuple(typing.get_args(annotation)), optional)
    for kind in (bool, int, float, str):
        if annotation is kind:
            return OptionType(kind.__name__, (), optional)
    if annotation in (inspect.Parameter.empty, Any) and default is not inspect.Parameter.empty and default is not None:
        for kind in (bool, int, float, str):
            if type(default) is kind:
                return OptionType(kind.__name__, (), optional)
    return OptionType("any", (), optional)


def option_types(factory: Callable[..., Any]) -> tuple[dict[str, OptionType], bool]:
    """Each keyword parameter of ``factory`` (a class's ``__init__`` or a function) with its type, and
    whether it also takes any other keyword (``**kwargs``)."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return {}, True
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # noqa: BLE001 - an annotation that cannot be evaluated here: fall back to defaults
        hints = {}
    out, open_ended = {}, False
    for p in params.values():
        if p.kind is p.VAR_KEYWORD:
            open_ended = True
        elif p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            out[p.name] = option_type(hints.get(p.name, p.annotation if not isinstance(p.annotation, str)
                                                else inspect.Parameter.empty), p.default)
    return out, open_ended


def coerce_options(options: dict[str, Any], factory: Callable[..., Any], where: str, fix: str = "") -> dict[str, Any]:
    """``options`` read once into the types ``factory`` declares; a bad key or value is one UserError naming
    ``where``, the option and what it accepts (``fix``: where the options are listed)."""
    types_, open_ended = option_types(factory)
    out: dict[str, Any] = {}
    for key, value in options.items():
        kind = types_.get(key)
        if kind is None:
            if not open_ended:
                from bench.core.registry import check_keywords  # the one unknown-option message

                check_keywords(where, [key], list(types_), fix)
            kind = OptionType("any")
        try:
            out[key] = kind.coerce(value)
        except (ValueError, TypeError, OverflowError):
            shown = value if isinstance(value, str) else format_value(value)
            raise UserError(f"{where}: option {key}={shown[:80]!r} is not accepted (accepted: {kind.accepted()})",
                            fix) from None
    return out


def format_value(value: Any) -> str:
    """How a value is written back into a label (``True`` -> ``true``, floats with repr)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else {"inf": ".inf", "-inf": "-.inf"}.get(repr(value), ".nan")
    return str(value)


def format_spec(name: str, options: dict[str, Any]) -> str:
    """The canonical label: ``name:key=value,...`` with keys sorted (``name`` alone without options)."""
    if not options:
        return name
    return name + ":" + ",".join(f"{k}={format_value(v)}" for k, v in sorted(options.items()))


def parse_assignments(items: list[str], flag: str) -> dict[str, Any]:
    """Repeated ``KEY=VALUE`` arguments (``--param``) into a dict; a bad one names the flag."""
    out: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UserError(f"{flag} {item!r}: expected KEY=VALUE")
        out[key.strip()] = parse_value(value)
    return out


__all__ = ["MAX_YAML_BYTES", "MAX_YAML_DEPTH", "MAX_YAML_NODES", "YamlBoundError", "check_yaml_bounds", "yaml_load",
           "read_yaml_file", "parse_value", "parse_options", "split_spec", "format_value", "format_spec",
           "parse_assignments", "OptionType", "option_type", "option_types", "coerce_options"]
