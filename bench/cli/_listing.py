"""The built-in methods and metrics as data, so ``bfrbench list`` answers without importing torch.

Registering a method or metric means importing its module, and every one of them imports torch
(a second or more). ``registry_listing.json`` beside this file holds what ``list`` shows of each
built-in entry (facts, defaults, options) and what its availability depends on (the weights that
must be present, the package that must be importable); availability itself is checked live, from
those, without torch. ``tests/bench/cli/test_fast_cli.py`` fails when the file differs from the
live registry; rewrite it with ``python -m bench.cli._listing``. Third-party entries
(``bfrbench.plugins`` entry points) are code, not data: ``list`` imports them when any is installed.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

LISTING = Path(__file__).with_name("registry_listing.json")


def check_of(entry: Any) -> dict[str, Any]:
    """What an entry's availability depends on: ``{"weights": [...], "module": NAME|None}``."""
    meta = entry.meta
    check = dict(meta["listing_check"]) if "listing_check" in meta else (  # a library fetches its weights itself
        {"weights": list(meta.get("weights") or []), "module": meta.get("requires")})
    if meta.get("install"):
        check["install"] = meta["install"]
    return check


#: in a stored protocol, stands for the installed pyiqa's version (``pyiqa-0.1.13:musiq``), read when listing
PYIQA_VERSION = "{pyiqa_version}"


def protocol_of(entry: Any) -> str:
    """The entry's protocol label, with the pyiqa version left as :data:`PYIQA_VERSION` (it is the machine's)."""
    meta = entry.meta
    if meta.get("pyiqa_name"):
        return f"pyiqa-{PYIQA_VERSION}:{meta['pyiqa_name']}"
    return meta.get("protocol", "")


def shown_protocol(row: dict[str, Any]) -> str:
    """A row's protocol with this machine's pyiqa version filled in (``?`` when pyiqa is not installed)."""
    if PYIQA_VERSION not in row["protocol"]:
        return row["protocol"]
    import importlib.metadata

    try:
        version = importlib.metadata.version("pyiqa")
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    return row["protocol"].replace(PYIQA_VERSION, version)


def method_row(entry: Any) -> dict[str, Any]:
    from bench.core.options import format_value  # the one label formatter: true, not True

    meta = entry.meta
    return {"name": entry.name, "takes_quality": bool(meta.get("takes_quality")),
            "defaults": ", ".join(f"{k}={format_value(v)}" for k, v in meta.get("defaults", {}).items()),
            "family": meta.get("family") or "", "description": meta.get("description", ""), "check": check_of(entry)}


def metric_row(entry: Any) -> dict[str, Any]:
    from bench.cli.list import metric_options

    meta = entry.meta
    return {"name": entry.name, "higher_better": bool(meta.get("higher_better", True)),
            "needs_gt": bool(meta.get("needs_gt")), "protocol": protocol_of(entry),
            "standard": bool(meta.get("standard", True)), "options": metric_options(entry),
            "description": meta.get("description", ""), "check": check_of(entry)}


def builtin(entry: Any) -> bool:
    """An entry bfrbench itself defines (not a third-party plugin's, nor one a test registered)."""
    module = getattr(entry.meta.get("cls") or entry.factory, "__module__", "") or ""
    return module.split(".")[0] in ("bench", "methods")


def snapshot(entries: tuple[Any, Any] | None = None) -> dict[str, list[dict[str, Any]]]:
    """The rows of the live registries (imports every plugin, and torch)."""
    if entries is None:
        from bench.core import plugins
        from bench.core.registry import METHODS, METRICS

        plugins.load_all(third_party=False)
        entries = ([e for e in METHODS if builtin(e)], [e for e in METRICS if builtin(e)])
    methods, metrics = entries
    return {"methods": [method_row(e) for e in methods], "metrics": [metric_row(e) for e in metrics]}


def load() -> dict[str, list[dict[str, Any]]]:
    """The rows of the built-in entries, from the file (no torch)."""
    return json.loads(LISTING.read_text(encoding="utf-8"))


def render(rows: dict[str, Any]) -> str:
    return json.dumps(rows, indent=1, sort_keys=True) + "\n"


def write() -> Path:
    """Rewrite the listing from the live registry (after adding or changing a built-in entry)."""
    from bench.core.atomic import atomic_write_text

    atomic_write_text(LISTING, render(snapshot()))
    return LISTING


if __name__ == "__main__":  # pragma: no cover - the maintainer's command
    print(write(), file=sys.stderr)
