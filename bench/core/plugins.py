"""Import every module that registers entries, once, on first use of a registry."""
from __future__ import annotations

import importlib
import pkgutil
import warnings

_LOADED = False
#: packages whose every submodule is imported (recursively) to fill the registries
PLUGIN_PACKAGES = ("bench.metrics", "bench.data", "methods")


def load_all() -> None:
    """Import registration modules. Heavy libraries stay lazy inside factories."""
    global _LOADED
    if _LOADED:
        return
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
