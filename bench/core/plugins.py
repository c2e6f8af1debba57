"""Import every module that registers entries, once, on first use of a registry.

Built-in entries come from the submodules of :data:`PLUGIN_PACKAGES`; third-party methods and
metrics from the ``bfrbench.plugins`` entry point group (``[project.entry-points."bfrbench.plugins"]
mine = "my_pkg.bfr"`` in their pyproject: the module is imported, and its ``@METHODS.register`` /
``@METRICS.register`` classes join the registries; an entry point naming a function is called).
A folder of the user's named like one of bfrbench's top-level packages (``methods/``, ``bench/``,
``reports/``) that comes first on ``sys.path`` would be imported instead of them and empty the
registries; :func:`check_shadowing` names it in one line first.
"""
from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import warnings
from pathlib import Path

from bench.core.errors import UserError

_LOADED = False
_THIRD_PARTY_LOADED = False
#: packages whose every submodule is imported (recursively) to fill the registries
PLUGIN_PACKAGES = ("bench.metrics", "bench.data", "methods")
#: bfrbench's top-level packages (a user folder of one of these names must not take their place)
TOP_LEVEL = ("bench", "methods", "reports")
#: the entry point group third-party packages register their plugin modules under
ENTRY_POINT_GROUP = "bfrbench.plugins"


def _install_root() -> Path:
    """The folder that holds bfrbench's top-level packages (the repository, or site-packages)."""
    return Path(__file__).resolve().parents[2]


def check_shadowing() -> None:
    """Raise one :class:`UserError` when a top-level name resolves outside bfrbench (a user folder shadows it).

    Uses ``find_spec`` on the top-level names, so nothing is imported.
    """
    root = _install_root()
    for name in TOP_LEVEL:
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue
        if spec.origin and spec.origin != "namespace":
            where = Path(spec.origin).parent
        else:  # a folder without __init__.py: a namespace package
            where = Path(next(iter(spec.submodule_search_locations or ["."])))
        if where.resolve().parent != root:
            raise UserError(
                f"the folder {where} shadows bfrbench's package {name!r} (it comes first on sys.path, so Python "
                "imports it instead and bfrbench finds no methods or metrics)",
                f"rename that folder or run bfrbench from another directory; bfrbench's own is in {root / name}",
            )


def load_all(third_party: bool = True) -> None:
    """Import registration modules (built-in, then ``bfrbench.plugins`` entry points). Heavy libraries stay lazy."""
    global _LOADED, _THIRD_PARTY_LOADED
    if not _LOADED:
        check_shadowing()
        _LOADED = True
        for pkg_name in PLUGIN_PACKAGES:
            pkg = importlib.import_module(pkg_name)
            for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{pkg_name}."):
                leaf = info.name.rsplit(".", 1)[-1]
                if leaf.startswith("_") or leaf in ("tests", "conftest"):
                    continue
                try:
                    importlib.import_module(info.name)
                except ImportError as exc:  # an optional dependency missing: skip that plugin only
                    warnings.warn(f"bfrbench: {info.name} not loaded ({exc})", stacklevel=2)
    if third_party and not _THIRD_PARTY_LOADED:
        _THIRD_PARTY_LOADED = True
        load_entry_points()


def entry_points() -> list:
    """The installed ``bfrbench.plugins`` entry points (metadata only: nothing is imported)."""
    from importlib.metadata import entry_points as _eps

    return sorted(_eps(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def load_entry_points() -> list[str]:
    """Import each third-party plugin (calling it when it names a function); one that fails is a warning."""
    loaded = []
    for ep in entry_points():
        try:
            obj = ep.load()
            if callable(obj) and not isinstance(obj, type):
                obj()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not take the built-ins down
            warnings.warn(f"bfrbench: plugin {ep.name} ({ep.value}) not loaded: {type(exc).__name__}: {exc}",
                          stacklevel=2)
            continue
        loaded.append(ep.name)
    return loaded
