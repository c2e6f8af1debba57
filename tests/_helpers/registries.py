"""Registry snapshots: a test that registers a method, metric or dataset leaves no entry behind."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def restored_registries() -> Iterator[None]:
    """METRICS, METHODS and DATASETS (entries and prefix resolvers) as they were before the block, afterwards.

    The plugins are loaded first, so entries they register are part of the snapshot, not dropped with the test's.
    """
    from bench.core import plugins
    from bench.core.registry import DATASETS, METHODS, METRICS

    plugins.load_all()
    saved = [(r, dict(r._entries), dict(r._resolvers)) for r in (METRICS, METHODS, DATASETS)]
    try:
        yield
    finally:
        for registry, entries, resolvers in saved:
            registry._entries.clear()
            registry._entries.update(entries)
            registry._resolvers.clear()
            registry._resolvers.update(resolvers)
