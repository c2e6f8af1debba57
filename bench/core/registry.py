"""Name-driven registries (in the style of timm's ``register_model`` and pyiqa's ``create_metric``).

A registry maps a name to a factory plus metadata. The one idiom for code is a decorator on the
class: ``@METRICS.register`` reads every fact (name, direction, needs_gt, protocol, weights, ...)
from the class's typed attributes, checks the class against the registry's base class, and reads
the defaults from the factory's signature. Table-driven entries (datasets, named NR-IQA specs)
are added from their one table with :meth:`Registry.add`. Prefix resolvers handle open-ended
names such as ``folder:PATH`` or ``pyiqa:musiq``.
"""
from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from bench.core.errors import UnknownNameError, UserError

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

    def __init__(self, kind: str, fields: tuple[str, ...] = ()) -> None:
        self.kind = kind
        #: the class attributes a registered class's entry is read from (its one source of truth)
        self.fields = fields
        #: registered classes must subclass this; set by the package that defines it (see :meth:`bind_base`)
        self.base: type | None = None
        self._entries: dict[str, Entry[T]] = {}
        self._resolvers: dict[str, Callable[[str], Entry[T]]] = {}

    def bind_base(self, base: type) -> None:
        """Name the base class every registered class must subclass (its package calls this once)."""
        self.base = base

    def register(self, cls: type[T], /, *args: Any, **kwargs: Any) -> type[T]:
        """Class decorator: ``@METRICS.register`` above ``class PSNR(Metric): name = "psnr" ...``.

        The entry's metadata are the class's own attributes named in ``fields``; the factory is the
        class's ``create`` classmethod when it has one, else the class; ``defaults`` come from the
        factory's signature. A class that does not subclass the registry's base is refused.
        """
        if not isinstance(cls, type) or args or kwargs:
            raise TypeError(
                f"@{self.kind.upper()}S.register decorates a class and takes no arguments (got {cls!r}): "
                "set name, protocol, weights ... as class attributes (docs/design.md, 'Adding a metric')"
            )
        if self.base is not None and not issubclass(cls, self.base):
            raise TypeError(f"{self.kind} {cls.__name__} must subclass {self.base.__name__}")
        name = getattr(cls, "name", "")
        if not name:
            raise ValueError(f"{self.kind} {cls.__name__} has no name (set the class attribute `name`)")
        factory = getattr(cls, "create", cls)
        meta: dict[str, Any] = {}
        for key in self.fields:
            if hasattr(cls, key):
                value = getattr(cls, key)
                meta[key] = list(value) if isinstance(value, tuple) else value
        meta["defaults"] = factory_defaults(factory)
        meta["cls"] = cls
        self.add(name, factory, **meta)
        return cls

    def add(self, name: str, factory: Callable[..., T], *, replace: bool = False, **meta: Any) -> None:
        """Register ``factory`` under ``name``; ``defaults`` are read from its signature unless given.

        ``replace=True`` swaps an existing entry (tests re-pointing a name); otherwise a second add is an error.
        """
        meta.setdefault("defaults", factory_defaults(factory))
        key = name.lower()
        if key in self._entries and not replace:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[key] = Entry(name=name, factory=factory, meta=meta)

    def add_resolver(self, prefix: str, resolver: Callable[[str], Entry[T]]) -> None:
        """Handle every name ``prefix:REST``; the resolver gets REST and returns an Entry."""
        self._resolvers[prefix.lower()] = resolver

    def resolves(self, name: str) -> bool:
        """Whether ``name`` is ``PREFIX:REST`` for a registered resolver (REST is then the resolver's to read)."""
        prefix, sep, _ = name.strip().partition(":")
        return bool(sep) and prefix.lower() in self._resolvers

    def resolve(self, name: str) -> Entry[T]:
        """The resolver's entry for ``PREFIX:REST`` (see :meth:`resolves`); its meta may carry a ``label``."""
        prefix, _, rest = name.strip().partition(":")
        return self._resolvers[prefix.lower()](rest)

    def entry(self, name: str) -> Entry[T]:
        """The entry for ``name``; ``NAME:key=value,...`` binds options, typed once against the factory
        (see :meth:`bind`). The entry's ``name`` is the canonical label."""
        key = name.lower()
        if key in self._entries:
            return self._entries[key]
        from bench.core.options import split_spec

        base_name, options = split_spec(name, raw=True)
        if options:
            return self.bind(self.entry(base_name), options)
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

    def bind(self, base: Entry[T], options: dict[str, Any]) -> Entry[T]:
        """``base`` with ``options`` (text or typed values) read into its factory's types, under its canonical
        label: an option equal to its default is dropped, and a named preset (``alias_of``, e.g. ``psnr-y`` for
        ``psnr:test_y_channel=true``) is used wherever its options are given. A bad option is one UserError."""
        from bench.core.options import coerce_options

        check_factory_options(self.kind, base.name, base.factory, options)  # an unknown key, with a did-you-mean
        typed = coerce_options(options, base.factory, f"{self.kind} {base.name}",
                               f"see `bfrbench list {self.kind}s --verbose` for {base.name}'s options")
        root, full = base, typed
        alias = base.meta.get("alias_of")
        if alias and alias[0].lower() in self._entries:
            root, full = self._entries[alias[0].lower()], {**alias[1], **typed}
        defaults = root.meta.get("defaults", {})
        full = {k: v for k, v in full.items() if not (k in defaults and _same(defaults[k], v))}
        target, rest = root, full
        for e in self._entries.values():  # the preset of ``root`` that names most of the given options
            preset = e.meta.get("alias_of")
            if (preset and preset[0].lower() == root.name.lower() and len(preset[1]) > len(full) - len(rest)
                    and all(k in full and _same(full[k], v) for k, v in preset[1].items())):
                target, rest = e, {k: v for k, v in full.items() if k not in preset[1]}
        return with_options(target, rest, self.kind) if rest else target

    def canonical(self, spec: str) -> str:
        """The one label of ``spec`` (``psnr:test_y_channel=true`` -> ``psnr-y``); an unknown name is kept as given."""
        try:
            return self.entry(spec).name
        except UnknownNameError:
            return spec.strip()

    def create(self, name: str, **kwargs: Any) -> T:
        """Build ``name`` with ``kwargs``; an option its factory lacks is a one-line error with a did-you-mean."""
        entry = self.entry(name)
        check_factory_options(self.kind, entry.name, entry.factory, kwargs)
        return entry.factory(**kwargs)

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


def factory_defaults(factory: Callable[..., Any]) -> dict[str, Any]:
    """The keyword defaults of ``factory`` (a class's ``__init__`` or a function), except weights and device."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return {}
    skip = {"self", "weights", "device"}
    return {p.name: p.default for p in params
            if p.name not in skip and p.default is not p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


class UnknownOptionError(UserError):
    """A keyword that a metric, method or ``bench.run`` does not take (a typo such as ``crop_bordr``)."""


def check_keywords(where: str, given: Any, known: Any, fix: str = "") -> None:
    """Raise :class:`UnknownOptionError` for each key of ``given`` not in ``known``: one line, with a did-you-mean."""
    known = list(known)
    unknown = [k for k in given if k not in known]
    if not unknown:
        return
    parts = []
    for key in unknown:
        close = difflib.get_close_matches(key, known, n=1)
        parts.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise UnknownOptionError(
        f"{where} has no option {', '.join(parts)}; its options: {', '.join(known) or 'none'}", fix)


def factory_options(factory: Callable[..., Any]) -> list[str] | None:
    """The keyword names ``factory`` takes (following ``__wrapped__``), or None when it takes ``**kwargs``."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        params = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def check_factory_options(kind: str, name: str, factory: Callable[..., Any], given: Any) -> None:
    """:func:`check_keywords` against the options ``factory`` takes (nothing checked for a ``**kwargs`` factory)."""
    known = factory_options(factory)
    if known is not None:
        check_keywords(f"{kind} {name}", given, known, f"`bfrbench list {kind}s --verbose` lists each one's options")


def _same(a: Any, b: Any) -> bool:
    """Equal as option values (``True`` is not ``1``)."""
    return type(a) is type(b) and a == b


def with_options(base: Entry[T], options: dict[str, Any], kind: str = "entry") -> Entry[T]:
    """``base`` with typed ``options`` bound: its factory gets them, its label names them.

    The protocol is the built instance's (``Metric.info``), the one answer: the entry carries none. An
    instance whose protocol is still the base protocol gets ``[key=value,...]`` appended, so a number made
    with options never carries the label of the default protocol.
    """
    from bench.core.options import format_spec

    check_factory_options(kind, base.name, base.factory, options)
    label = format_spec(base.name, options)
    suffix = label[len(base.name) + 1 :]
    base_protocol = base.meta.get("protocol")

    def factory(**kwargs: Any) -> T:
        obj = base.factory(**{**options, **kwargs})
        if base_protocol and getattr(obj, "protocol", None) == base_protocol:
            obj.protocol = f"{base_protocol}[{suffix}]"
        return obj

    factory.__wrapped__ = base.factory  # type: ignore[attr-defined]  # its signature is the base's
    meta = dict(base.meta, options=dict(options), option_base=base.name)
    if base_protocol:
        meta["protocol"] = None  # known once built: the instance's (see Metric.info)
    return Entry(name=label, factory=factory, meta=meta)


#: metrics: subclasses of bench.metrics.base.Metric (bound there)
METRICS: Registry[Any] = Registry(
    "metric",
    fields=("higher_better", "needs_gt", "needs_lq", "protocol", "standard", "weights", "requires", "description",
            "option_help", "available", "alias_of", "listing_check"),
)
#: restoration methods: subclasses of methods.base.RestorationMethod (bound there)
METHODS: Registry[Any] = Registry("method", fields=("takes_quality", "weights", "family", "base", "description"))
#: benchmark sets, added from the dataset table (bench.data.datasets.SPECS) and the demo
DATASETS: Registry[Any] = Registry("dataset")
