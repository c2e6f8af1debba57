"""Name-driven registries (in the style of timm's ``register_model`` and pyiqa's ``create_metric``).

A registry maps a name to a factory plus metadata. Prefix resolvers handle open-ended
names such as ``folder:PATH`` or ``pyiqa:musiq``.
"""
from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from bench.core.errors import UnknownNameError

T = TypeVar("T")


@dataclass
class Entry(Generic[T]):
    """One registered name: the factory that builds it and its metadata."""

    name: str
    factory: Callable[..., T]
    meta: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, key: str) -> Any:
        try:
            return self.meta[key]
        except KeyError as exc:
            raise AttributeError(key) from exc


class Registry(Generic[T]):
    """A named collection of factories with metadata, plus prefix resolvers."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self._resolvers: dict[str, Callable[[str], Entry[T]]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: ``@METRICS.register("psnr", higher_better=True, ...)``."""

        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            self.add(name, factory, **meta)
            return factory

        return deco

    def add(self, name: str, factory: Callable[..., T], **meta: Any) -> None:
        key = name.lower()
        if key in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[key] = Entry(name=name, factory=factory, meta=meta)

    def add_resolver(self, prefix: str, resolver: Callable[[str], Entry[T]]) -> None:
        """Handle every name ``prefix:REST``; the resolver gets REST and returns an Entry."""
        self._resolvers[prefix.lower()] = resolver

    def entry(self, name: str) -> Entry[T]:
        """The entry for ``name``; ``NAME:key=value,...`` binds options (see :mod:`bench.core.options`)."""
        key = name.lower()
        if key in self._entries:
            return self._entries[key]
        from bench.core.options import split_spec

        base_name, options = split_spec(name)
        if options:
            return with_options(self.entry(base_name), options)
        if ":" in name:
            prefix, rest = name.split(":", 1)
            if prefix.lower() in self._resolvers:
                return self._resolvers[prefix.lower()](rest)
        close = difflib.get_close_matches(key, list(self._entries), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        prefixes = "".join(f", {p}:..." for p in self._resolvers)
        raise UnknownNameError(
            f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(sorted(self._entries))}{prefixes}"
        )

    def create(self, name: str, **kwargs: Any) -> T:
        return self.entry(name).factory(**kwargs)

    def names(self) -> list[str]:
        return sorted(e.name for e in self._entries.values())

    def __contains__(self, name: str) -> bool:
        try:
            self.entry(name)
        except UnknownNameError:
            return False
        return True

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))


def with_options(base: Entry[T], options: dict[str, Any]) -> Entry[T]:
    """``base`` with ``options`` bound: its factory gets them, its label and protocol name them.

    A built object whose protocol is still the base protocol gets ``[key=value,...]`` appended,
    so a number made with options never carries the label of the default protocol.
    """
    from bench.core.options import format_spec

    label = format_spec(base.name, options)
    suffix = label[len(base.name) + 1 :]
    base_protocol = base.meta.get("protocol")

    def factory(**kwargs: Any) -> T:
        obj = base.factory(**{**options, **kwargs})
        if base_protocol and getattr(obj, "protocol", None) == base_protocol:
            obj.protocol = f"{base_protocol}[{suffix}]"
        return obj

    meta = dict(base.meta, options=dict(options), option_base=base.name)
    if base_protocol:
        meta["protocol"] = f"{base_protocol}[{suffix}]"
    return Entry(name=label, factory=factory, meta=meta)


METRICS: Registry[Any] = Registry("metric")
METHODS: Registry[Any] = Registry("method")
DATASETS: Registry[Any] = Registry("dataset")
