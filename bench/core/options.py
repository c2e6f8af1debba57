"""The one parser of ``key=value`` options: method specs, metric specs, ``--param`` and ``--set``.

A spec is ``NAME`` or ``NAME:key=value[,key=value...]``. NAME may itself hold colons
(``pyiqa:musiq``, ``outputs:DIR``): the options start at the first colon followed by
``identifier=``. Values are read as YAML scalars (``4``, ``1e-4``, ``true``, ``[1, 2]``),
``none`` as None, anything else as the string.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

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


def yaml_load(text: str) -> Any:
    """``yaml.safe_load`` that also reads ``1e-4`` as a float (YAML 1.1 wants ``1.0e-4``)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


def read_yaml_file(path: str | os.PathLike[str], what: str = "file") -> Any:
    """A YAML file's data (via :func:`yaml_load`); an unreadable or invalid file is one UserError naming it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from exc
    try:
        return yaml_load(text)
    except Exception as exc:  # yaml.YAMLError and friends
        raise UserError(f"{path}: not valid YAML ({exc})") from exc


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


def parse_options(text: str, where: str = "options") -> dict[str, Any]:
    """``"k=v,k2=v2"`` -> ``{"k": v, "k2": v2}`` (a comma only splits before ``identifier=``)."""
    out: dict[str, Any] = {}
    if not text.strip():
        return out
    for item in _ITEM_SPLIT.split(text):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise UserError(f"{where}: bad option {item!r}; expected key=value[,key=value]")
        out[key] = parse_value(value)
    return out


def split_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"psnr:crop_border=4"`` -> ``("psnr", {"crop_border": 4})``; ``"pyiqa:musiq"`` -> no options."""
    m = _OPTIONS_START.match(spec.strip())
    if not m:
        return spec.strip(), {}
    return m.group("name").strip(), parse_options(m.group("opts"), where=f"spec {spec!r}")


def format_value(value: Any) -> str:
    """How a value is written back into a label (``True`` -> ``true``, floats with repr)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
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


__all__ = ["yaml_load", "parse_value", "parse_options", "split_spec", "format_value", "format_spec",
           "parse_assignments"]
